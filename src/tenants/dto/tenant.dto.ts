import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { Transform } from 'class-transformer';
import { IsBoolean, IsEmail, IsInt, IsNumber, IsString, Length, Matches, Max, MaxLength, Min } from 'class-validator';
import { ApiKeyRole, TenantStatus } from '../../generated/prisma/enums';
import { IsOmittable } from '../../common/omittable';

registerEnumType(TenantStatus, { name: 'TenantStatus' });

export const SLUG_PATTERN = /^[a-z][a-z0-9-]{2,39}$/;
const SLUG_MESSAGE = 'slug must be 3 to 40 lowercase letters, digits or hyphens, starting with a letter';

/** Quota fields, the same on creation and update: GraphQL, OpenAPI and validation at once. */
const MaxSitesField = () =>
  applyDecorators(
    Field(() => Int, { nullable: true }),
    ApiPropertyOptional({ description: 'Sites the tenant may have (default 10)' }),
    IsOmittable(),
    IsInt(),
    Min(0),
    Max(10_000),
  );
const MaxMemoryMbField = () =>
  applyDecorators(
    Field(() => Int, { nullable: true }),
    ApiPropertyOptional({ description: 'Memory ceiling of one site, MiB (default 2048)' }),
    IsOmittable(),
    IsInt(),
    Min(64),
    Max(1_048_576),
  );
const MaxCpusField = () =>
  applyDecorators(
    Field(() => Float, { nullable: true }),
    ApiPropertyOptional({ description: 'CPU ceiling of one site (default 2)' }),
    IsOmittable(),
    IsNumber(),
    Min(0.1),
    Max(256),
  );

/** One class per input, shared by REST (class-validator + OpenAPI) and GraphQL. */
@InputType()
export class CreateTenantInput {
  @Field()
  @ApiProperty({ example: 'acme', description: SLUG_MESSAGE })
  @IsString()
  @Matches(SLUG_PATTERN, { message: SLUG_MESSAGE })
  slug!: string;

  @Field()
  @ApiProperty({ example: 'Acme Ltd' })
  @IsString()
  @Length(1, 200)
  name!: string;

  @Field()
  @ApiProperty({ example: 'ops@acme.example' })
  @IsEmail({}, { message: 'contactEmail must be an email address' })
  @MaxLength(254)
  contactEmail!: string;

  @MaxSitesField()
  maxSites?: number;

  @MaxMemoryMbField()
  maxMemoryMb?: number;

  @MaxCpusField()
  maxCpus?: number;
}

@InputType()
export class UpdateTenantInput {
  @Field({ nullable: true })
  @ApiPropertyOptional()
  @IsOmittable()
  @IsString()
  @Length(1, 200)
  name?: string;

  @Field({ nullable: true })
  @ApiPropertyOptional()
  @IsOmittable()
  @IsEmail({}, { message: 'contactEmail must be an email address' })
  @MaxLength(254)
  contactEmail?: string;

  @MaxSitesField()
  maxSites?: number;

  @MaxMemoryMbField()
  maxMemoryMb?: number;

  @MaxCpusField()
  maxCpus?: number;

  @Field({ nullable: true, description: 'true suspends the tenant, false resumes it' })
  @ApiPropertyOptional({ description: 'true suspends the tenant, false resumes it' })
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

@ObjectType('Tenant')
export class TenantView {
  @Field(() => ID) @ApiProperty() id!: string;
  @Field() @ApiProperty() slug!: string;
  @Field() @ApiProperty() name!: string;
  @Field() @ApiProperty() contactEmail!: string;
  @Field(() => TenantStatus) @ApiProperty({ enum: TenantStatus }) status!: TenantStatus;
  @Field(() => Int) @ApiProperty() maxSites!: number;
  @Field(() => Int) @ApiProperty() maxMemoryMb!: number;
  @Field(() => Float) @ApiProperty() maxCpus!: number;
  @Field() @ApiProperty() createdAt!: Date;
  @Field() @ApiProperty() updatedAt!: Date;
}

@ObjectType('Me')
export class MeView {
  @Field(() => ID) @ApiProperty() keyId!: string;
  @Field(() => ApiKeyRole) @ApiProperty({ enum: ApiKeyRole }) role!: ApiKeyRole;
  @Field(() => TenantView, { nullable: true }) @ApiPropertyOptional({ type: TenantView }) tenant!: TenantView | null;
}
