import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, ID, InputType, ObjectType } from '@nestjs/graphql';
import { IsBoolean, IsString, MaxLength } from 'class-validator';
import { IsOmittable } from '../../common/omittable';

@InputType({ description: 'A custom domain to add to a site' })
export class AddDomainInput {
  @Field({ description: 'A hostname the tenant controls, such as shop.example.com (internationalised names are encoded)' })
  @ApiProperty({
    example: 'shop.example.com',
    description: 'A hostname the tenant controls, such as shop.example.com (internationalised names are encoded)',
  })
  @IsString({ message: 'hostname must be a string' })
  @MaxLength(300, { message: 'hostname must be at most 253 characters' })
  hostname!: string;

  @Field({ nullable: true, description: 'Make it the primary domain: every other hostname of the site redirects to it' })
  @ApiPropertyOptional({ default: false, description: 'Make it the primary domain: every other hostname of the site redirects to it' })
  @IsOmittable()
  @IsBoolean({ message: 'primary must be true or false' })
  primary?: boolean;

  @Field({ nullable: true, description: 'Also add www.<hostname>, which redirects to the primary domain' })
  @ApiPropertyOptional({ default: false, description: 'Also add www.<hostname>, which redirects to the primary domain' })
  @IsOmittable()
  @IsBoolean({ message: 'www must be true or false' })
  www?: boolean;
}

@ObjectType('DomainVerification', { description: 'The DNS record that shows control of a pending domain' })
export class DomainVerificationView {
  @Field({ description: 'Always TXT' }) @ApiProperty({ example: 'TXT', description: 'Always TXT' }) type!: string;
  @Field({ description: 'The record to create: _berth-challenge.<hostname>' })
  @ApiProperty({ description: 'The record to create: _berth-challenge.<hostname>' })
  name!: string;
  @Field({ description: 'The value it must hold' }) @ApiProperty({ description: 'The value it must hold' }) value!: string;
}

@ObjectType('Domain', {
  description: "A custom domain of a site. Hostnames are unique across all tenants; a site's deletion frees them",
})
export class DomainView {
  @Field(() => ID, { description: "The domain's id" }) @ApiProperty({ description: "The domain's id" }) id!: string;
  @Field(() => ID, { description: 'The site it belongs to' }) @ApiProperty({ description: 'The site it belongs to' }) siteId!: string;
  @Field({ description: 'ASCII form (punycode), lowercase' })
  @ApiProperty({ description: 'ASCII form (punycode), lowercase' })
  hostname!: string;
  @Field({ description: 'The site answers on it; every other hostname of the site redirects here' })
  @ApiProperty({ description: 'The site answers on it; every other hostname of the site redirects here' })
  primary!: boolean;
  @Field({ description: 'ACTIVE (routed) or PENDING (waiting for its TXT record)' })
  @ApiProperty({ enum: ['ACTIVE', 'PENDING'], description: 'ACTIVE (routed) or PENDING (waiting for its TXT record)' })
  status!: 'ACTIVE' | 'PENDING';
  @Field(() => DomainVerificationView, {
    nullable: true,
    description: 'What shows control of the domain, while it is pending; null once it is ACTIVE',
  })
  @ApiPropertyOptional({
    type: DomainVerificationView,
    description: 'What shows control of the domain, while it is pending; null once it is ACTIVE',
  })
  verification!: DomainVerificationView | null;
  @Field({ description: 'When it was added' }) @ApiProperty({ description: 'When it was added' }) createdAt!: Date;
}
