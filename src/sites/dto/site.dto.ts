import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import {
  IsEmail,
  IsIn,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { ADMIN_USER_PATTERN, LOCALE_PATTERN } from '../wordpress-install';
import { GraphQLJSONObject } from '../../common/json.scalar';
import { Health, SiteStatus } from '../../generated/prisma/enums';

import { PageArgs } from '../../common/page.dto';
import { IsOmittable } from '../../common/omittable';
import { ArgsType } from '@nestjs/graphql';
import { JobView } from '../../jobs/dto/job.dto';

registerEnumType(SiteStatus, { name: 'SiteStatus' });
registerEnumType(Health, { name: 'Health' });

export const SITE_NAME_PATTERN = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;
export const SITE_NAME_MESSAGE =
  'name must be 3 to 40 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen';
export const RESTART_POLICY_PATTERN = /^(no|always|unless-stopped|on-failure(:([1-9][0-9]{0,2}))?)$/;

@InputType()
export class ResourcesInput {
  @Field(() => Int, { nullable: true, description: 'Memory limit, MiB' })
  @ApiPropertyOptional({ description: 'Memory limit, MiB', minimum: 32 })
  @IsOptional()
  @IsNumber({ maxDecimalPlaces: 0 })
  @Min(32)
  @Max(1_048_576)
  memoryMb?: number;

  @Field(() => Float, { nullable: true, description: 'CPU limit (1.5 = one and a half cores)' })
  @ApiPropertyOptional({ minimum: 0.05 })
  @IsOptional()
  @IsNumber()
  @Min(0.05)
  @Max(256)
  cpus?: number;
}

@InputType('WordPressInput')
export class WordPressInput {
  @Field({ nullable: true, description: "The site's title; defaults to the site's name" })
  @ApiPropertyOptional({ description: "The site's title; defaults to the site's name", example: 'My Blog' })
  @IsOptional()
  @IsString()
  @Length(1, 200, { message: 'wordpress.title must be 1 to 200 characters' })
  title?: string;

  @Field({ nullable: true, description: "The administrator's login; defaults to the mailbox part of adminEmail" })
  @ApiPropertyOptional({ example: 'jane' })
  @IsOptional()
  @IsString()
  @Matches(ADMIN_USER_PATTERN, {
    message: 'wordpress.adminUser must be 1 to 60 letters, digits or . _ @ -, starting with a letter or digit',
  })
  adminUser?: string;

  @Field({ nullable: true, description: "The administrator's email; defaults to the tenant's contact email" })
  @ApiPropertyOptional({ example: 'jane@example.com' })
  @IsOptional()
  @IsEmail({}, { message: 'wordpress.adminEmail must be an email address' })
  @Length(3, 100, { message: 'wordpress.adminEmail must be at most 100 characters' })
  adminEmail?: string;

  @Field({
    nullable: true,
    description: "The administrator's password; never stored, logged or shown. Without it, a set-password link is emailed to adminEmail",
  })
  @ApiPropertyOptional({
    description: "The administrator's password; never stored, logged or shown. Without it, a set-password link is emailed to adminEmail",
    minLength: 12,
    maxLength: 128,
  })
  @IsOptional()
  @IsString()
  @Length(12, 128, { message: 'wordpress.adminPassword must be 12 to 128 characters' })
  adminPassword?: string;

  @Field({ nullable: true, description: 'WordPress locale, e.g. de_DE (the language pack must be in the image)' })
  @ApiPropertyOptional({ example: 'en_US' })
  @IsOptional()
  @IsString()
  @Matches(LOCALE_PATTERN, { message: 'wordpress.locale must look like en or de_DE' })
  locale?: string;
}

@ObjectType('WordPress')
export class WordPressView {
  @Field() @ApiProperty() title!: string;
  @Field() @ApiProperty() adminUser!: string;
  @Field() @ApiProperty() adminEmail!: string;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() locale!: string | null;
  @Field(() => Date, { nullable: true, description: "When Berth's job installed WordPress; null until then" })
  @ApiPropertyOptional({ description: "When Berth's job installed WordPress; null until then" })
  installedAt!: Date | null;
}

/** The fields create and update share, each one decorator for GraphQL, OpenAPI and validation. */
const EnvField = (description: string) =>
  applyDecorators(
    Field(() => GraphQLJSONObject, { nullable: true, description }),
    ApiPropertyOptional({ description, type: 'object', additionalProperties: { type: 'string' }, example: { WORDPRESS_DEBUG: '1' } }),
    IsOptional(),
    IsObject(),
  );

const RestartPolicyField = (defaultValue?: string) =>
  applyDecorators(
    Field({ nullable: true, ...(defaultValue ? { defaultValue } : {}) }),
    ApiPropertyOptional({ default: defaultValue, example: 'on-failure:5' }),
    IsOmittable(),
    IsString(),
    Matches(RESTART_POLICY_PATTERN, { message: 'restartPolicy must be no, always, unless-stopped or on-failure[:N] (N from 1 to 999)' }),
  );

const ResourcesField = () =>
  applyDecorators(
    Field(() => ResourcesInput, { nullable: true }),
    ApiPropertyOptional({ type: ResourcesInput }),
    IsOptional(),
    ValidateNested(),
    Type(() => ResourcesInput),
  );

@InputType()
export class CreateSiteInput {
  @Field()
  @ApiProperty({ example: 'blog', description: SITE_NAME_MESSAGE })
  @IsString()
  @Matches(SITE_NAME_PATTERN, { message: SITE_NAME_MESSAGE })
  name!: string;

  @Field(() => ID, { nullable: true, description: 'Required with an admin key; tenant keys use their own tenant' })
  @ApiPropertyOptional({ description: 'Required with an admin key; tenant keys use their own tenant' })
  @IsOptional()
  @IsUUID('all', { message: 'tenantId must be a tenant id (UUID)' })
  tenantId?: string;

  @EnvField('Extra environment variables for WordPress')
  env?: Record<string, string>;

  @RestartPolicyField('unless-stopped')
  restartPolicy?: string;

  @ResourcesField()
  resources?: ResourcesInput;

  @Field(() => WordPressInput, { nullable: true, description: "How WordPress is installed for the site's owner" })
  @ApiPropertyOptional({ type: WordPressInput, description: "How WordPress is installed for the site's owner" })
  @IsOptional()
  @ValidateNested()
  @Type(() => WordPressInput)
  wordpress?: WordPressInput;
}

const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

@InputType()
export class UpdateSiteInput {
  @EnvField('Replaces the extra environment variables')
  env?: Record<string, string>;

  @RestartPolicyField()
  restartPolicy?: string;

  @ResourcesField()
  resources?: ResourcesInput;

  @Field({ nullable: true, description: 'Tag of the configured WordPress image to run, e.g. 6.4-apache' })
  @ApiPropertyOptional({ example: '6.4-apache' })
  @IsOptional()
  @IsString()
  @Matches(IMAGE_TAG, { message: 'imageTag must be a Docker tag: letters, digits, _ . - (at most 128)' })
  imageTag?: string;
}

@ArgsType()
export class SiteFilterArgs extends PageArgs {
  @Field(() => ID, { nullable: true })
  @ApiPropertyOptional()
  @IsOmittable()
  @IsUUID('all', { message: 'tenantId must be a tenant id (UUID)' })
  tenantId?: string;

  @Field(() => SiteStatus, { nullable: true })
  @ApiPropertyOptional({ enum: SiteStatus })
  @IsOptional()
  @IsIn(Object.values(SiteStatus), { message: `status must be one of ${Object.values(SiteStatus).join(', ')}` })
  status?: SiteStatus;
}

@ObjectType('Container')
export class ContainerView {
  @Field() @ApiProperty() name!: string;
  @Field() @ApiProperty({ example: 'wordpress' }) role!: string;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() id!: string | null;
  @Field({ description: 'Docker state: running, exited, ... or missing' }) @ApiProperty() state!: string;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() health!: string | null;
  @Field(() => Int) @ApiProperty() restartCount!: number;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() startedAt!: string | null;
}

@ObjectType('Site')
export class SiteView {
  @Field(() => ID) @ApiProperty() id!: string;
  @Field(() => ID) @ApiProperty() tenantId!: string;
  @Field() @ApiProperty() name!: string;
  @Field(() => SiteStatus) @ApiProperty({ enum: SiteStatus }) status!: SiteStatus;
  @Field(() => Health) @ApiProperty({ enum: Health }) health!: Health;
  @Field(() => Date, { nullable: true }) @ApiPropertyOptional() healthChangedAt!: Date | null;
  @Field(() => Int, { nullable: true, description: 'Latency of a recent successful probe, ms' }) @ApiPropertyOptional() lastProbeMs!:
    number | null;
  @Field(() => String, { nullable: true, description: 'The site on its host port, without the edge: for diagnosis' })
  @ApiPropertyOptional({ description: 'The site on its host port, without the edge: for diagnosis' })
  url!: string | null;
  @Field(() => String, { nullable: true, description: 'The platform hostname, <site>-<tenant>.<base domain>' })
  @ApiPropertyOptional({ description: 'The platform hostname, <site>-<tenant>.<base domain>' })
  hostname!: string | null;
  @Field(() => String, { nullable: true, description: 'Where customers reach the site, through the edge' })
  @ApiPropertyOptional({ description: 'Where customers reach the site, through the edge' })
  publicUrl!: string | null;
  @Field() @ApiProperty() restartPolicy!: string;
  @Field(() => GraphQLJSONObject) @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) env!: Record<string, string>;
  @Field(() => Int, { nullable: true }) @ApiPropertyOptional() memoryMb!: number | null;
  @Field(() => Float, { nullable: true }) @ApiPropertyOptional() cpus!: number | null;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() imageTag!: string | null;
  @Field(() => Int) @ApiProperty() generation!: number;
  @Field(() => WordPressView) @ApiProperty({ type: WordPressView }) wordpress!: WordPressView;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() lastError!: string | null;
  @Field(() => [ContainerView], { nullable: true, description: 'Live from the Docker Engine (single-site queries only)' })
  @ApiPropertyOptional({ type: [ContainerView], description: 'Live from the Docker Engine (single-site reads only)' })
  containers?: ContainerView[];
  @Field(() => Int, { description: 'Restarts of the WordPress container by Docker (its restart policy)' })
  @ApiProperty()
  restartCount!: number;
  @Field() @ApiProperty() createdAt!: Date;
  @Field() @ApiProperty() updatedAt!: Date;
  @Field(() => Date, { nullable: true }) @ApiPropertyOptional() deletedAt!: Date | null;
}

@ObjectType('SiteAndJob')
export class SiteAndJobView {
  @Field(() => SiteView) @ApiProperty({ type: SiteView }) site!: SiteView;
  @Field(() => JobView) @ApiProperty({ type: JobView }) job!: JobView;
}
