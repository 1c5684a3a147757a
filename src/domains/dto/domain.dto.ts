import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, ID, InputType, ObjectType } from '@nestjs/graphql';
import { IsBoolean, IsString, MaxLength } from 'class-validator';
import { IsOmittable } from '../../common/omittable';

@InputType()
export class AddDomainInput {
  @Field({ description: 'A hostname the tenant controls, such as shop.example.com (internationalised names are encoded)' })
  @ApiProperty({ example: 'shop.example.com' })
  @IsString({ message: 'hostname must be a string' })
  @MaxLength(300, { message: 'hostname must be at most 253 characters' })
  hostname!: string;

  @Field({ nullable: true, description: 'Make it the primary domain: every other hostname of the site redirects to it' })
  @ApiPropertyOptional({ default: false })
  @IsOmittable()
  @IsBoolean({ message: 'primary must be true or false' })
  primary?: boolean;

  @Field({ nullable: true, description: 'Also add www.<hostname>, which redirects to the primary domain' })
  @ApiPropertyOptional({ default: false })
  @IsOmittable()
  @IsBoolean({ message: 'www must be true or false' })
  www?: boolean;
}

@ObjectType('DomainVerification')
export class DomainVerificationView {
  @Field({ description: 'Always TXT' }) @ApiProperty({ example: 'TXT' }) type!: string;
  @Field({ description: 'The record to create: _berth-challenge.<hostname>' }) @ApiProperty() name!: string;
  @Field({ description: 'The value it must hold' }) @ApiProperty() value!: string;
}

@ObjectType('Domain')
export class DomainView {
  @Field(() => ID) @ApiProperty() id!: string;
  @Field(() => ID) @ApiProperty() siteId!: string;
  @Field({ description: 'ASCII form (punycode), lowercase' }) @ApiProperty() hostname!: string;
  @Field({ description: 'The site answers on it; every other hostname of the site redirects here' }) @ApiProperty() primary!: boolean;
  @Field({ description: 'ACTIVE (routed) or PENDING (waiting for its TXT record)' })
  @ApiProperty({ enum: ['ACTIVE', 'PENDING'] })
  status!: 'ACTIVE' | 'PENDING';
  @Field(() => DomainVerificationView, { nullable: true, description: 'What shows control of the domain, while it is pending' })
  @ApiPropertyOptional({ type: DomainVerificationView })
  verification!: DomainVerificationView | null;
  @Field() @ApiProperty() createdAt!: Date;
}
