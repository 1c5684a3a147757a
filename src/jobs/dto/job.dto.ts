import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, ID, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { JobKind, JobStatus } from '../../generated/prisma/enums';
import { GraphQLJSONObject } from '../../common/json.scalar';

registerEnumType(JobKind, {
  name: 'JobKind',
  description: 'What a job does',
  valuesMap: {
    PROVISION: { description: "Builds a new site (a fresh WordPress, or a clone's copy of a backup) and brings it up" },
    START: { description: 'Starts the site' },
    STOP: { description: "Stops the site's WordPress container; its data stays" },
    RESTART: { description: 'Restarts the site' },
    DELETE: { description: 'Deletes the site: its container, volume, database and user (its backups stay BERTH_BACKUP_KEEP_DELETED_DAYS)' },
    UPDATE: { description: 'Replaces the WordPress container with new settings; rolls back if the new one does not answer' },
    REPAIR: { description: 'Started by Berth: brings the site back to its desired state, or moves it to a new primary domain' },
    DELETE_TENANT: { description: 'Deletes a whole tenant and everything of it; its siteId is null' },
    BACKUP: { description: "Takes a backup of the site's database and files" },
    RESTORE: { description: 'Puts a backup back into the site (restoreSite, pushSite), after a checkpoint backup' },
    MOVE_TENANT: {
      description: 'Moves a whole tenant to another Swarm node through backup and restore (evacuateNode); its siteId is null',
    },
  },
});
registerEnumType(JobStatus, {
  name: 'JobStatus',
  description: 'Where a job is',
  valuesMap: {
    QUEUED: { description: 'Waiting to run, or waiting for another attempt after a failed one' },
    RUNNING: { description: 'A worker is running its steps' },
    SUCCEEDED: { description: 'Done (also when a newer request overtook it: its last step, superseded, says so)' },
    FAILED: { description: 'Failed for good; error says why' },
    CANCELLED: { description: 'Cancelled: taken off the queue before it ran, or stopped at a step boundary' },
  },
});

@ObjectType('JobStep', { description: "One step of a job's latest attempt" })
export class JobStepView {
  @Field({ description: 'What the step does, such as route through the edge' })
  @ApiProperty({ description: 'What the step does, such as route through the edge' })
  name!: string;
  @Field({ description: 'running, succeeded or failed' })
  @ApiProperty({ enum: ['running', 'succeeded', 'failed'], description: 'running, succeeded or failed' })
  status!: string;
  @Field({ description: 'When it started (ISO 8601)' }) @ApiProperty({ description: 'When it started (ISO 8601)' }) startedAt!: string;
  @Field(() => String, { nullable: true, description: 'When it ended (ISO 8601); null while it runs' })
  @ApiPropertyOptional({ description: 'When it ended (ISO 8601); absent while it runs' })
  finishedAt?: string;
  @Field(() => String, { nullable: true, description: 'What it found or did, such as served at <url>; null if it said nothing' })
  @ApiPropertyOptional({ description: 'What it found or did, such as served at <url>; absent if it said nothing' })
  detail?: string;
  @Field(() => String, { nullable: true, description: 'Why it failed (at most 1000 characters); null unless it failed' })
  @ApiPropertyOptional({ description: 'Why it failed (at most 1000 characters); absent unless it failed' })
  error?: string;
  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description:
      'The Docker Engine API calls it made, by endpoint with ids left out (such as "POST /containers/create": 1); null if it made none',
  })
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'integer' },
    example: { 'POST /containers/create': 1, 'POST /containers/{id}/start': 1 },
    description: 'The Docker Engine API calls it made, by endpoint with ids left out; absent if it made none',
  })
  engineCalls?: Record<string, number>;
}

@ObjectType('Job', {
  description: 'Work Berth does in the background on a site or a tenant (provision, start, backup, ...): follow it to its end',
})
export class JobView {
  @Field(() => ID, { description: "The job's id" }) @ApiProperty({ description: "The job's id" }) id!: string;
  @Field(() => ID, { description: 'The tenant it belongs to' }) @ApiProperty({ description: 'The tenant it belongs to' }) tenantId!: string;
  @Field(() => ID, { nullable: true, description: 'The site it applies to; null for a job of a whole tenant (DELETE_TENANT, MOVE_TENANT)' })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'The site it applies to; null for a job of a whole tenant (DELETE_TENANT, MOVE_TENANT)',
  })
  siteId!: string | null;
  @Field(() => JobKind, { description: 'What it does' }) @ApiProperty({ enum: JobKind, description: 'What it does' }) kind!: JobKind;
  @Field(() => JobStatus, { description: 'Where it is' }) @ApiProperty({ enum: JobStatus, description: 'Where it is' }) status!: JobStatus;
  @Field(() => [JobStepView], { description: 'The steps of its latest attempt, in the order they ran' })
  @ApiProperty({ type: [JobStepView], description: 'The steps of its latest attempt, in the order they ran' })
  steps!: JobStepView[];
  @Field(() => Int, { description: 'Percent done' }) @ApiProperty({ description: 'Percent done' }) progress!: number;
  @Field(() => Int, { description: 'Attempts started so far (a failed attempt is retried with backoff)' })
  @ApiProperty({ description: 'Attempts started so far (a failed attempt is retried with backoff)' })
  attempts!: number;
  @Field(() => String, {
    nullable: true,
    description: 'Why it failed or was cancelled, or why its last attempt failed while it waits for another; null otherwise',
  })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Why it failed or was cancelled, or why its last attempt failed while it waits for another; null otherwise',
  })
  error!: string | null;
  @Field({ description: 'When it was requested' }) @ApiProperty({ description: 'When it was requested' }) createdAt!: Date;
  @Field(() => Date, { nullable: true, description: 'When its latest attempt started; null until it first runs' })
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When its latest attempt started; null until it first runs',
  })
  startedAt!: Date | null;
  @Field(() => Date, { nullable: true, description: 'When it ended (succeeded, failed or cancelled); null until then' })
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When it ended (succeeded, failed or cancelled); null until then',
  })
  finishedAt!: Date | null;
}

/** REST's answer to an action that runs as a job (start, stop, update, delete, restore...): { job }. */
export class JobAcceptedView {
  @ApiProperty({ type: JobView, description: 'Follow it at /v1/jobs/{id}, /v1/events/stream or the jobUpdated subscription' })
  job!: JobView;
}
