import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArgsType, Field, ID, ObjectType } from '@nestjs/graphql';
import { GraphQLJSONObject } from '../../common/json.scalar';
import { Type } from 'class-transformer';
import { IsDate, IsOptional, IsString, IsUUID, Matches, MinDate } from 'class-validator';
import { PageArgs } from '../../common/page.dto';
import { IsOmittable } from '../../common/omittable';

@ArgsType()
export class EventFilterArgs extends PageArgs {
  @Field(() => ID, { nullable: true, description: "Only this site's events" })
  @ApiPropertyOptional({ description: "Only this site's events" })
  @IsOptional()
  @IsUUID('all', { message: 'siteId must be a site id (UUID)' })
  siteId?: string;

  @Field({ nullable: true, description: 'Exact event type, such as site.down' })
  @ApiPropertyOptional({ example: 'site.down', description: 'Exact event type, such as site.down' })
  @IsOmittable()
  @IsString()
  @Matches(/^[a-z_]+(\.[a-z_]+)*$/, { message: 'type looks like site.down' })
  type?: string;

  @Field({ nullable: true, description: 'Only events older than this (for paging back)' })
  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'Only events older than this (for paging back)' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'before must be an ISO date-time' })
  // Earlier dates (year 0 and before) are outside what PostgreSQL stores; no event is that old.
  @MinDate(new Date(0), { message: 'before must be after 1970-01-01' })
  before?: Date;
}

@ObjectType('Event', {
  description: 'Something that happened to a tenant, a site or the installation: the audit trail, and what notifications are made of',
})
export class EventView {
  @Field(() => ID, { description: "The event's id" }) @ApiProperty({ description: "The event's id" }) id!: string;
  @Field(() => ID, {
    nullable: true,
    description: 'The tenant it concerns; null for an event of the installation itself (a node cordoned, an orphan removed)',
  })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'The tenant it concerns; null for an event of the installation itself (a node cordoned, an orphan removed)',
  })
  tenantId!: string | null;
  @Field(() => ID, { nullable: true, description: 'The site it concerns; null when it concerns no one site' })
  @ApiPropertyOptional({ type: String, nullable: true, description: 'The site it concerns; null when it concerns no one site' })
  siteId!: string | null;
  @Field({ description: 'What happened, such as site.down, job.failed or backup.succeeded' })
  @ApiProperty({ description: 'What happened, such as site.down, job.failed or backup.succeeded' })
  type!: string;
  @Field({ description: 'What happened, in a sentence for people' })
  @ApiProperty({ description: 'What happened, in a sentence for people' })
  message!: string;
  @Field(() => GraphQLJSONObject, { description: 'Details that depend on the type, such as jobId or backupId' })
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'Details that depend on the type, such as jobId or backupId' })
  data!: object;
  @Field(() => ID, { nullable: true, description: 'The API key whose request caused it (audit trail); null for what Berth did on its own' })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'The API key whose request caused it (audit trail); null for what Berth did on its own',
  })
  actorKeyId!: string | null;
  @Field({ description: 'When it was recorded' }) @ApiProperty({ description: 'When it was recorded' }) createdAt!: Date;
}
