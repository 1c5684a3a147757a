import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, ID, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { JobKind, JobStatus } from '../../generated/prisma/enums';

registerEnumType(JobKind, { name: 'JobKind' });
registerEnumType(JobStatus, { name: 'JobStatus' });

@ObjectType('JobStep')
export class JobStepView {
  @Field() @ApiProperty() name!: string;
  @Field() @ApiProperty({ enum: ['running', 'succeeded', 'failed'] }) status!: string;
  @Field() @ApiProperty() startedAt!: string;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() finishedAt?: string;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() detail?: string;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() error?: string;
}

@ObjectType('Job')
export class JobView {
  @Field(() => ID) @ApiProperty() id!: string;
  @Field(() => ID) @ApiProperty() tenantId!: string;
  @Field(() => ID, { nullable: true, description: 'null for a job of a whole tenant (DELETE_TENANT)' }) @ApiPropertyOptional() siteId!:
    string | null;
  @Field(() => JobKind) @ApiProperty({ enum: JobKind }) kind!: JobKind;
  @Field(() => JobStatus) @ApiProperty({ enum: JobStatus }) status!: JobStatus;
  @Field(() => [JobStepView]) @ApiProperty({ type: [JobStepView] }) steps!: JobStepView[];
  @Field(() => Int, { description: 'Percent done' }) @ApiProperty() progress!: number;
  @Field(() => Int) @ApiProperty() attempts!: number;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() error!: string | null;
  @Field() @ApiProperty() createdAt!: Date;
  @Field(() => Date, { nullable: true }) @ApiPropertyOptional() startedAt!: Date | null;
  @Field(() => Date, { nullable: true }) @ApiPropertyOptional() finishedAt!: Date | null;
}

/** REST's answer to an action that runs as a job (start, stop, update, delete, restore...): { job }. */
export class JobAcceptedView {
  @ApiProperty({ type: JobView, description: 'Follow it at /v1/jobs/{id}, /v1/events/stream or the jobUpdated subscription' })
  job!: JobView;
}
