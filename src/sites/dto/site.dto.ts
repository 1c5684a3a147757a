import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import {
  IsEmail,
  IsIn,
  IsInt,
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

registerEnumType(SiteStatus, {
  name: 'SiteStatus',
  description: 'Where a site is in its life',
  valuesMap: {
    PENDING: { description: 'Requested; its provisioning job has not started yet' },
    PROVISIONING: { description: 'Its provisioning job is building it' },
    RUNNING: { description: 'Up: it answered at its URL when its last job ended (health says whether it still does)' },
    STOPPED: { description: 'Stopped on request; its data stays' },
    FAILED: { description: 'A job failed for good; lastError says why' },
    DELETING: { description: 'A deletion job is removing it' },
    DELETED: { description: 'Deleted: its container, volume and database are gone; its backups may remain' },
    RESTORING: { description: "A restore job is putting back a backup's content (the site does not answer meanwhile)" },
  },
});
registerEnumType(Health, {
  name: 'Health',
  description: "A site's health as the monitor last saw it",
  valuesMap: {
    UNKNOWN: { description: 'Not known: not probed yet, or the site is not meant to be running' },
    UP: { description: 'It answers its probes, made the way customers reach it (through the edge)' },
    DOWN: { description: 'Its probes failed BERTH_PROBE_FAILURES times in a row, or its container died' },
  },
});

export const SITE_NAME_PATTERN = /^[a-z][a-z0-9-]{1,38}[a-z0-9]$/;
export const SITE_NAME_MESSAGE =
  'name must be 3 to 40 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen';
export const RESTART_POLICY_PATTERN = /^(no|always|unless-stopped|on-failure(:([1-9][0-9]{0,2}))?)$/;

@InputType({ description: "Limits of a site's WordPress container, each at most the tenant's ceiling" })
export class ResourcesInput {
  @Field(() => Int, { nullable: true, description: "Memory limit, MiB (at most the tenant's maxMemoryMb)" })
  @ApiPropertyOptional({ description: "Memory limit, MiB (at most the tenant's maxMemoryMb)", minimum: 32 })
  @IsOptional()
  // Not IsNumber({ maxDecimalPlaces: 0 }): it throws on a fraction written in exponent form
  // (5e-323.toString() has no '.'), a 500 instead of a 400; found by test/hostile-input.
  @IsInt()
  @Min(32)
  @Max(1_048_576)
  memoryMb?: number;

  @Field(() => Float, { nullable: true, description: "CPU limit (1.5 = one and a half cores; at most the tenant's maxCpus)" })
  @ApiPropertyOptional({ minimum: 0.05, description: "CPU limit (1.5 = one and a half cores; at most the tenant's maxCpus)" })
  @IsOptional()
  @IsNumber()
  @Min(0.05)
  @Max(256)
  cpus?: number;
}

@InputType('WordPressInput', { description: "How WordPress is installed for the site's owner" })
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

@ObjectType('WordPress', { description: "How WordPress is (or is to be) installed for the site's owner" })
export class WordPressView {
  @Field({ description: "The site's title" }) @ApiProperty({ description: "The site's title" }) title!: string;
  @Field({ description: "The administrator's login" }) @ApiProperty({ description: "The administrator's login" }) adminUser!: string;
  @Field({ description: "The administrator's email" }) @ApiProperty({ description: "The administrator's email" }) adminEmail!: string;
  @Field(() => String, { nullable: true, description: "WordPress locale, such as de_DE; null: none was asked for (WordPress's default)" })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: "WordPress locale, such as de_DE; null: none was asked for (WordPress's default)",
  })
  locale!: string | null;
  @Field(() => Date, { nullable: true, description: "When Berth's job installed WordPress; null until then" })
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: "When Berth's job installed WordPress; null until then",
  })
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

const RestartPolicyField = (description: string, defaultValue?: string) =>
  applyDecorators(
    Field({ nullable: true, description, ...(defaultValue ? { defaultValue } : {}) }),
    ApiPropertyOptional({ default: defaultValue, example: 'on-failure:5', description }),
    IsOmittable(),
    IsString(),
    Matches(RESTART_POLICY_PATTERN, { message: 'restartPolicy must be no, always, unless-stopped or on-failure[:N] (N from 1 to 999)' }),
  );

const ResourcesField = (description: string) =>
  applyDecorators(
    Field(() => ResourcesInput, { nullable: true, description }),
    ApiPropertyOptional({ type: ResourcesInput, description }),
    IsOptional(),
    ValidateNested(),
    Type(() => ResourcesInput),
  );

@InputType({ description: 'A new site' })
export class CreateSiteInput {
  @Field({
    description:
      "The site's name, unique among the tenant's live sites: 3 to 40 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen",
  })
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

  @RestartPolicyField('Docker restart policy of the WordPress container: no, always, unless-stopped or on-failure[:N]', 'unless-stopped')
  restartPolicy?: string;

  @ResourcesField("Limits of the WordPress container; a limit left out is the tenant's ceiling")
  resources?: ResourcesInput;

  @Field(() => WordPressInput, { nullable: true, description: "How WordPress is installed for the site's owner" })
  @ApiPropertyOptional({ type: WordPressInput, description: "How WordPress is installed for the site's owner" })
  @IsOptional()
  @ValidateNested()
  @Type(() => WordPressInput)
  wordpress?: WordPressInput;
}

const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

@InputType({ description: "Changes to a site's settings; fields left out stay as they are" })
export class UpdateSiteInput {
  @EnvField('Replaces the extra environment variables')
  env?: Record<string, string>;

  @RestartPolicyField('New Docker restart policy: no, always, unless-stopped or on-failure[:N]')
  restartPolicy?: string;

  @ResourcesField('New limits; a limit left out stays as it is')
  resources?: ResourcesInput;

  @Field({ nullable: true, description: 'Tag of the configured WordPress image to run, e.g. 6.4-apache' })
  @ApiPropertyOptional({ example: '6.4-apache', description: 'Tag of the configured WordPress image to run, e.g. 6.4-apache' })
  @IsOptional()
  @IsString()
  @Matches(IMAGE_TAG, { message: 'imageTag must be a Docker tag: letters, digits, _ . - (at most 128)' })
  imageTag?: string;
}

@ArgsType()
export class SiteFilterArgs extends PageArgs {
  @Field(() => ID, { nullable: true, description: "Only this tenant's sites (admin keys); a tenant key sees only its own" })
  @ApiPropertyOptional({ description: "Only this tenant's sites (admin keys); a tenant key sees only its own" })
  @IsOmittable()
  @IsUUID('all', { message: 'tenantId must be a tenant id (UUID)' })
  tenantId?: string;

  @Field(() => SiteStatus, { nullable: true, description: 'Only sites in this status; without it, every site but DELETED ones' })
  @ApiPropertyOptional({ enum: SiteStatus, description: 'Only sites in this status; without it, every site but DELETED ones' })
  @IsOptional()
  @IsIn(Object.values(SiteStatus), { message: `status must be one of ${Object.values(SiteStatus).join(', ')}` })
  status?: SiteStatus;
}

@ObjectType('Container', { description: 'One container of a site, as the Docker Engine reports it' })
export class ContainerView {
  @Field({ description: "The container's name on the Docker Engine" })
  @ApiProperty({ description: "The container's name on the Docker Engine" })
  name!: string;
  @Field({ description: "wordpress (the site's own) or db (its tenant's database server)" })
  @ApiProperty({ example: 'wordpress', description: "wordpress (the site's own) or db (its tenant's database server)" })
  role!: string;
  @Field(() => String, { nullable: true, description: "Docker's container id; null when the container is missing" })
  @ApiPropertyOptional({ type: String, nullable: true, description: "Docker's container id; null when the container is missing" })
  id!: string | null;
  @Field({ description: 'Docker state: running, exited, ... or missing' })
  @ApiProperty({ description: 'Docker state: running, exited, ... or missing' })
  state!: string;
  @Field(() => String, { nullable: true, description: "Docker's health check status (starting, healthy, unhealthy); null without one" })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: "Docker's health check status (starting, healthy, unhealthy); null without one",
  })
  health!: string | null;
  @Field(() => Int, { description: 'Restarts Docker made of it (its restart policy); 0 when missing' })
  @ApiProperty({ description: 'Restarts Docker made of it (its restart policy); 0 when missing' })
  restartCount!: number;
  @Field(() => String, { nullable: true, description: 'When it started (ISO 8601); null unless it is running' })
  @ApiPropertyOptional({ type: String, nullable: true, description: 'When it started (ISO 8601); null unless it is running' })
  startedAt!: string | null;
}

@ObjectType('Site', { description: "A tenant's WordPress site: its settings, its state and where it answers" })
export class SiteView {
  @Field(() => ID, { description: "The site's id" }) @ApiProperty({ description: "The site's id" }) id!: string;
  @Field(() => ID, { description: 'The tenant that owns it' }) @ApiProperty({ description: 'The tenant that owns it' }) tenantId!: string;
  @Field({ description: "The site's name, unique among its tenant's live sites" })
  @ApiProperty({ description: "The site's name, unique among its tenant's live sites" })
  name!: string;
  @Field(() => SiteStatus, { description: 'Where the site is in its life' })
  @ApiProperty({ enum: SiteStatus, description: 'Where the site is in its life' })
  status!: SiteStatus;
  @Field(() => Health, { description: 'Whether it answers, as the monitor last saw it' })
  @ApiProperty({ enum: Health, description: 'Whether it answers, as the monitor last saw it' })
  health!: Health;
  @Field(() => Date, { nullable: true, description: 'When health last changed; null if it never has' })
  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true, description: 'When health last changed; null if it never has' })
  healthChangedAt!: Date | null;
  @Field(() => Int, { nullable: true, description: 'Latency of a recent successful probe, ms; null before the first' })
  @ApiPropertyOptional({ type: Number, nullable: true, description: 'Latency of a recent successful probe, ms; null before the first' })
  lastProbeMs!: number | null;
  @Field(() => String, {
    nullable: true,
    description: 'The site on its host port, without the edge: for diagnosis; null before it has a port, and once deleted',
  })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'The site on its host port, without the edge: for diagnosis; null before it has a port, and once deleted',
  })
  url!: string | null;
  @Field(() => String, {
    nullable: true,
    description: 'The platform hostname, <site>-<tenant>.<base domain>; null without an edge (BERTH_EDGE=none), and once deleted',
  })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'The platform hostname, <site>-<tenant>.<base domain>; null without an edge (BERTH_EDGE=none), and once deleted',
  })
  hostname!: string | null;
  @Field(() => String, {
    nullable: true,
    description:
      'Where customers reach the site, through the edge (its primary domain, else its platform hostname); null without an edge, and once deleted',
  })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description:
      'Where customers reach the site, through the edge (its primary domain, else its platform hostname); null without an edge, and once deleted',
  })
  publicUrl!: string | null;
  @Field({ description: 'Docker restart policy of the WordPress container: no, always, unless-stopped or on-failure[:N]' })
  @ApiProperty({ description: 'Docker restart policy of the WordPress container: no, always, unless-stopped or on-failure[:N]' })
  restartPolicy!: string;
  @Field(() => GraphQLJSONObject, { description: 'Extra environment variables for WordPress, name to value' })
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'Extra environment variables for WordPress, name to value',
  })
  env!: Record<string, string>;
  @Field(() => Int, { nullable: true, description: "Memory limit of the WordPress container, MiB; null: the tenant's maxMemoryMb" })
  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    description: "Memory limit of the WordPress container, MiB; null: the tenant's maxMemoryMb",
  })
  memoryMb!: number | null;
  @Field(() => Float, { nullable: true, description: "CPU limit of the WordPress container, in cores; null: the tenant's maxCpus" })
  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    description: "CPU limit of the WordPress container, in cores; null: the tenant's maxCpus",
  })
  cpus!: number | null;
  @Field(() => String, {
    nullable: true,
    description: "Tag of the WordPress image to run instead of the configured one's; null: the configured image",
  })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: "Tag of the WordPress image to run instead of the configured one's; null: the configured image",
  })
  imageTag!: string | null;
  @Field(() => Int, { description: 'Bumped on every change of desired state or settings; a job applies one generation' })
  @ApiProperty({ description: 'Bumped on every change of desired state or settings; a job applies one generation' })
  generation!: number;
  @Field(() => WordPressView, { description: "How WordPress is installed for the site's owner" })
  @ApiProperty({ type: WordPressView, description: "How WordPress is installed for the site's owner" })
  wordpress!: WordPressView;
  @Field(() => String, {
    nullable: true,
    description: 'The last problem recorded on the site (a failed job, a rolled-back update, a failed repair); null when there is none',
  })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'The last problem recorded on the site (a failed job, a rolled-back update, a failed repair); null when there is none',
  })
  lastError!: string | null;
  @Field(() => [ContainerView], { nullable: true, description: 'Live from the Docker Engine (single-site queries only; null in lists)' })
  @ApiPropertyOptional({ type: [ContainerView], description: 'Live from the Docker Engine (single-site reads only)' })
  containers?: ContainerView[];
  @Field(() => Int, { description: 'Restarts of the WordPress container by Docker (its restart policy)' })
  @ApiProperty({ description: 'Restarts of the WordPress container by Docker (its restart policy)' })
  restartCount!: number;
  @Field({ description: 'When the site was requested' }) @ApiProperty({ description: 'When the site was requested' }) createdAt!: Date;
  @Field({ description: "When the site's record last changed" })
  @ApiProperty({ description: "When the site's record last changed" })
  updatedAt!: Date;
  @Field(() => Date, { nullable: true, description: 'When the site was deleted; null while it exists' })
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the site was deleted; null while it exists',
  })
  deletedAt!: Date | null;
}

@ObjectType('SiteAndJob', { description: 'A new site and the job that provisions it' })
export class SiteAndJobView {
  @Field(() => SiteView, { description: 'The new site (PENDING when just requested)' })
  @ApiProperty({ type: SiteView, description: 'The new site (PENDING when just requested)' })
  site!: SiteView;
  @Field(() => JobView, { description: 'Its PROVISION job: follow it with job(id) or the jobUpdated subscription' })
  @ApiProperty({ type: JobView, description: 'Its PROVISION job: follow it at /v1/jobs/{id} or with the jobUpdated subscription' })
  job!: JobView;
}
