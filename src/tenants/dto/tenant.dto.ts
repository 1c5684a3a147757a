import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { Transform } from 'class-transformer';
import { IsBoolean, IsEmail, IsInt, IsNumber, IsString, Length, Matches, Max, MaxLength, Min } from 'class-validator';
import { ApiKeyRole, TenantStatus } from '../../generated/prisma/enums';
import { IsOmittable } from '../../common/omittable';

registerEnumType(TenantStatus, {
  name: 'TenantStatus',
  description: 'Where a tenant is in its life',
  valuesMap: {
    ACTIVE: { description: 'In service' },
    SUSPENDED: { description: 'Suspended by an admin: it can create no new site (TENANT_SUSPENDED); its existing sites keep running' },
    DELETING: { description: 'A deletion job is removing the tenant: no new site, key or change' },
  },
});

export const SLUG_PATTERN = /^[a-z][a-z0-9-]{2,39}$/;
const SLUG_MESSAGE = 'slug must be 3 to 40 lowercase letters, digits or hyphens, starting with a letter';

const CONTACT_EMAIL =
  "Where Berth emails the tenant's notices (a site down or up, a failed backup); also its sites' default WordPress admin email";

/** Quota fields, the same on creation and update: GraphQL, OpenAPI and validation at once. */
const MaxSitesField = (description: string) =>
  applyDecorators(
    Field(() => Int, { nullable: true, description }),
    ApiPropertyOptional({ description }),
    IsOmittable(),
    IsInt(),
    Min(0),
    Max(10_000),
  );
const MaxMemoryMbField = (description: string) =>
  applyDecorators(
    Field(() => Int, { nullable: true, description }),
    ApiPropertyOptional({ description }),
    IsOmittable(),
    IsInt(),
    Min(64),
    Max(1_048_576),
  );
const MaxCpusField = (description: string) =>
  applyDecorators(
    Field(() => Float, { nullable: true, description }),
    ApiPropertyOptional({ description }),
    IsOmittable(),
    IsNumber(),
    Min(0.1),
    Max(256),
  );

/** One class per input, shared by REST (class-validator + OpenAPI) and GraphQL. */
@InputType({ description: 'A new tenant (admin keys only)' })
export class CreateTenantInput {
  @Field({
    description:
      "Short unique name, part of the tenant's sites' platform hostnames: 3 to 40 lowercase letters, digits or hyphens, starting with a letter",
  })
  @ApiProperty({ example: 'acme', description: SLUG_MESSAGE })
  @IsString()
  @Matches(SLUG_PATTERN, { message: SLUG_MESSAGE })
  slug!: string;

  @Field({ description: 'Display name (1 to 200 characters)' })
  @ApiProperty({ example: 'Acme Ltd', description: 'Display name (1 to 200 characters)' })
  @IsString()
  @Length(1, 200)
  name!: string;

  @Field({ description: CONTACT_EMAIL })
  @ApiProperty({ example: 'ops@acme.example', description: CONTACT_EMAIL })
  @IsEmail({}, { message: 'contactEmail must be an email address' })
  @MaxLength(254)
  contactEmail!: string;

  @MaxSitesField('Sites the tenant may have at once, deleted ones not counted (default 10)')
  maxSites?: number;

  @MaxMemoryMbField('Memory ceiling of one site, MiB (default 2048)')
  maxMemoryMb?: number;

  @MaxCpusField('CPU ceiling of one site, in cores (default 2)')
  maxCpus?: number;
}

@InputType({ description: 'Changes to a tenant; fields left out stay as they are' })
export class UpdateTenantInput {
  @Field({ nullable: true, description: 'New display name (1 to 200 characters)' })
  @ApiPropertyOptional({ description: 'New display name (1 to 200 characters)' })
  @IsOmittable()
  @IsString()
  @Length(1, 200)
  name?: string;

  @Field({ nullable: true, description: 'New contact address for notices' })
  @ApiPropertyOptional({ description: 'New contact address for notices' })
  @IsOmittable()
  @IsEmail({}, { message: 'contactEmail must be an email address' })
  @MaxLength(254)
  contactEmail?: string;

  @MaxSitesField('New number of sites the tenant may have at once (admin keys only)')
  maxSites?: number;

  @MaxMemoryMbField('New memory ceiling of one site, MiB (admin keys only)')
  maxMemoryMb?: number;

  @MaxCpusField('New CPU ceiling of one site, in cores (admin keys only)')
  maxCpus?: number;

  @Field({ nullable: true, description: 'true suspends the tenant, false resumes it (admin keys only)' })
  @ApiPropertyOptional({ description: 'true suspends the tenant, false resumes it (admin keys only)' })
  @IsOmittable()
  @IsBoolean()
  suspended?: boolean;
}

/** `?force=true` of DELETE /v1/tenants/{id}: only "true" or "false", anything else is a 400. */
export class DeleteTenantArgs {
  @ApiPropertyOptional({
    default: false,
    description: "Delete the tenant's sites too (otherwise a tenant with sites answers 409 TENANT_HAS_SITES)",
  })
  @IsOmittable()
  @Transform(({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'force must be true or false' })
  force?: boolean;
}

@ObjectType('Tenant', { description: 'A hosting customer: it owns sites, API keys and webhooks, within its quotas' })
export class TenantView {
  @Field(() => ID, { description: "The tenant's id" }) @ApiProperty({ description: "The tenant's id" }) id!: string;
  @Field({ description: "Short unique name, part of the tenant's sites' platform hostnames" })
  @ApiProperty({ description: "Short unique name, part of the tenant's sites' platform hostnames" })
  slug!: string;
  @Field({ description: 'Display name' }) @ApiProperty({ description: 'Display name' }) name!: string;
  @Field({ description: CONTACT_EMAIL }) @ApiProperty({ description: CONTACT_EMAIL }) contactEmail!: string;
  @Field(() => TenantStatus, { description: 'Active, suspended or being deleted' })
  @ApiProperty({ enum: TenantStatus, description: 'Active, suspended or being deleted' })
  status!: TenantStatus;
  @Field(() => Int, { description: 'Sites the tenant may have at once, deleted ones not counted' })
  @ApiProperty({ description: 'Sites the tenant may have at once, deleted ones not counted' })
  maxSites!: number;
  @Field(() => Int, { description: "Memory ceiling of one site, MiB: a site's own limit may not exceed it, and applies where it has none" })
  @ApiProperty({ description: "Memory ceiling of one site, MiB: a site's own limit may not exceed it, and applies where it has none" })
  maxMemoryMb!: number;
  @Field(() => Float, {
    description: "CPU ceiling of one site, in cores: a site's own limit may not exceed it, and applies where it has none",
  })
  @ApiProperty({ description: "CPU ceiling of one site, in cores: a site's own limit may not exceed it, and applies where it has none" })
  maxCpus!: number;
  @Field({ description: 'When the tenant was created' }) @ApiProperty({ description: 'When the tenant was created' }) createdAt!: Date;
  @Field({ description: 'When the tenant last changed' }) @ApiProperty({ description: 'When the tenant last changed' }) updatedAt!: Date;
}

@ObjectType('Me', { description: 'The API key a request is made with' })
export class MeView {
  @Field(() => ID, { description: "The key's id" }) @ApiProperty({ description: "The key's id" }) keyId!: string;
  @Field(() => ApiKeyRole, { description: 'What the key may do' })
  @ApiProperty({ enum: ApiKeyRole, description: 'What the key may do' })
  role!: ApiKeyRole;
  @Field(() => TenantView, { nullable: true, description: "The key's tenant; null for an admin key" })
  @ApiPropertyOptional({ type: TenantView, description: "The key's tenant; null for an admin key" })
  tenant!: TenantView | null;
}
