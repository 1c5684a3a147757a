import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, ID, InputType, ObjectType, registerEnumType } from '@nestjs/graphql';
import { IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { ApiKeyRole } from '../../generated/prisma/enums';
import { IsOmittable } from '../../common/omittable';

registerEnumType(ApiKeyRole, {
  name: 'ApiKeyRole',
  description: 'What an API key may do',
  valuesMap: {
    ADMIN: { description: "Manages every tenant (creates, changes and deletes them) and the cluster's nodes" },
    TENANT: { description: 'Acts only within its own tenant; quotas, suspension and deletion stay with admin keys' },
    TENANT_READONLY: { description: "Reads its own tenant's objects; changes nothing" },
  },
});

@InputType({ description: 'A new API key of a tenant' })
export class CreateApiKeyInput {
  @Field(() => ApiKeyRole, { nullable: true, description: 'TENANT (the default) or TENANT_READONLY; ADMIN is refused' })
  @ApiPropertyOptional({
    enum: [ApiKeyRole.TENANT, ApiKeyRole.TENANT_READONLY],
    default: ApiKeyRole.TENANT,
    description: 'TENANT (the default) or TENANT_READONLY; ADMIN is refused',
  })
  @IsOmittable()
  @Matches(/^(TENANT|TENANT_READONLY)$/, { message: 'role must be TENANT or TENANT_READONLY' })
  role?: ApiKeyRole;

  @Field({ nullable: true, description: 'A label to recognise the key by (1 to 100 characters)' })
  @ApiPropertyOptional({ description: 'A label to recognise the key by (1 to 100 characters)' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  name?: string;
}

@ObjectType('ApiKey', { description: 'An API key, without the key itself (Berth keeps only its hash)' })
export class ApiKeyView {
  @Field(() => ID, { description: "The key's id (to revoke it)" }) @ApiProperty({ description: "The key's id (to revoke it)" }) id!: string;
  @Field(() => ID, { nullable: true, description: 'The tenant the key acts for; null for an admin key' })
  @ApiPropertyOptional({ type: String, nullable: true, description: 'The tenant the key acts for; null for an admin key' })
  tenantId!: string | null;
  @Field(() => ApiKeyRole, { description: 'What the key may do' })
  @ApiProperty({ enum: ApiKeyRole, description: 'What the key may do' })
  role!: ApiKeyRole;
  @Field(() => String, { nullable: true, description: 'The label given when it was issued; null if none' })
  @ApiPropertyOptional({ type: String, nullable: true, description: 'The label given when it was issued; null if none' })
  name!: string | null;
  @Field({ description: 'First characters of the key, to recognise it' })
  @ApiProperty({ description: 'First characters of the key, to recognise it' })
  prefix!: string;
  @Field({ description: 'When it was issued' }) @ApiProperty({ description: 'When it was issued' }) createdAt!: Date;
  @Field(() => Date, { nullable: true, description: 'When it last authenticated a request (noted at most once a minute); null if never' })
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When it last authenticated a request (noted at most once a minute); null if never',
  })
  lastUsedAt!: Date | null;
  @Field(() => Date, { nullable: true, description: 'When it was revoked; null while it works' })
  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true, description: 'When it was revoked; null while it works' })
  revokedAt!: Date | null;
}

@ObjectType('IssuedApiKey', { description: 'A newly issued API key, with the key itself: shown only this once' })
export class IssuedApiKeyView {
  @Field(() => ID, { description: "The key's id (to list or revoke it)" })
  @ApiProperty({ description: "The key's id (to list or revoke it)" })
  id!: string;
  @Field({ description: 'The key itself: shown once, store it now' })
  @ApiProperty({ description: 'The key itself: shown once, store it now' })
  key!: string;
  @Field(() => ApiKeyRole, { description: 'What the key may do' })
  @ApiProperty({ enum: ApiKeyRole, description: 'What the key may do' })
  role!: ApiKeyRole;
  @Field(() => ID, { nullable: true, description: 'The tenant the key acts for' })
  @ApiPropertyOptional({ type: String, nullable: true, description: 'The tenant the key acts for' })
  tenantId!: string | null;
}
