import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArgsType, Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { Transform } from 'class-transformer';
import { PageArgs } from '../../common/page.dto';
import { IsOmittable } from '../../common/omittable';
import { ArrayUnique, IsBoolean, IsIn, IsInt, IsOptional, IsString, IsUUID, Matches, Max, Min } from 'class-validator';
import { SITE_NAME_MESSAGE, SITE_NAME_PATTERN } from '../../sites/dto/site.dto';
import { BackupKind, BackupStatus } from '../../generated/prisma/enums';
import { JobView } from '../../jobs/dto/job.dto';
import { BACKUP_PARTS, type BackupPart } from '../backup-engine';

registerEnumType(BackupKind, {
  name: 'BackupKind',
  description: 'Why a backup was taken',
  valuesMap: {
    MANUAL: { description: 'Asked for through the API (createBackup, pushSite); kept until deleted' },
    SCHEDULED: { description: "Taken on the site's schedule; the site's retention policy forgets the old ones" },
    CHECKPOINT: {
      description: 'Taken by a restore job before it changes anything, so the restore can be undone; the retention policy forgets old ones',
    },
  },
});
registerEnumType(BackupStatus, {
  name: 'BackupStatus',
  description: 'Where a backup is',
  valuesMap: {
    PENDING: { description: 'Requested; its job has not taken it yet' },
    SUCCEEDED: { description: 'Taken: it can be restored, cloned or downloaded' },
    FAILED: { description: 'Its job failed or was cancelled; error says why' },
    DELETED: { description: 'Its snapshot was forgotten; the row stays for the record' },
  },
});

@ObjectType('Backup', {
  description:
    "One restic snapshot of a site: its database dump and its files. It outlives its site (a deleted site's backups stay restorable)",
})
export class BackupView {
  @Field(() => ID, { description: "The backup's id" }) @ApiProperty({ description: "The backup's id" }) id!: string;
  @Field(() => ID, { description: 'The tenant of its site' }) @ApiProperty({ description: 'The tenant of its site' }) tenantId!: string;
  @Field(() => ID, { description: 'The site it was taken of (which may have been deleted since)' })
  @ApiProperty({ description: 'The site it was taken of (which may have been deleted since)' })
  siteId!: string;
  @Field(() => BackupKind, { description: 'Why it was taken: MANUAL, SCHEDULED, or CHECKPOINT (by a restore, before it changed anything)' })
  @ApiProperty({
    enum: BackupKind,
    description: 'Why it was taken: MANUAL, SCHEDULED, or CHECKPOINT (by a restore, before it changed anything)',
  })
  kind!: BackupKind;
  @Field(() => BackupStatus, { description: 'Where it is' })
  @ApiProperty({ enum: BackupStatus, description: 'Where it is' })
  status!: BackupStatus;
  @Field(() => ID, { nullable: true, description: 'The job that takes it (a BACKUP job, or the RESTORE job of a checkpoint)' })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'The job that takes it (a BACKUP job, or the RESTORE job of a checkpoint)',
  })
  jobId!: string | null;
  @Field(() => String, { nullable: true, description: "restic's snapshot id; null until it is taken" })
  @ApiPropertyOptional({ type: String, nullable: true, description: "restic's snapshot id; null until it is taken" })
  snapshotId!: string | null;
  @Field(() => Float, { nullable: true, description: 'Bytes of database dump and files read; null until it is taken' })
  @ApiPropertyOptional({ type: Number, nullable: true, description: 'Bytes of database dump and files read; null until it is taken' })
  sizeBytes!: number | null;
  @Field(() => Float, {
    nullable: true,
    description: 'Bytes the backup added to the repository (after deduplication); null until it is taken',
  })
  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    description: 'Bytes the backup added to the repository (after deduplication); null until it is taken',
  })
  addedBytes!: number | null;
  @Field(() => Int, { nullable: true, description: 'How long taking it took, ms; null until it is taken' })
  @ApiPropertyOptional({ type: Number, nullable: true, description: 'How long taking it took, ms; null until it is taken' })
  durationMs!: number | null;
  @Field(() => String, {
    nullable: true,
    description: "The WordPress version the site's files held; null until it is taken, or if they held none",
  })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: "The WordPress version the site's files held; null until it is taken, or if they held none",
  })
  wordpressVersion!: string | null;
  @Field(() => String, { nullable: true, description: "The Docker image the site's container ran; null until it is taken" })
  @ApiPropertyOptional({ type: String, nullable: true, description: "The Docker image the site's container ran; null until it is taken" })
  image!: string | null;
  @Field(() => String, {
    nullable: true,
    description: 'Where the site answered when the backup was taken; null until it is taken, or if Berth had not set it',
  })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Where the site answered when the backup was taken; null until it is taken, or if Berth had not set it',
  })
  wordpressUrl!: string | null;
  @Field(() => Int, {
    nullable: true,
    description: "Tables in the site's database (a restore checks it gets them all back); null until it is taken",
  })
  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    description: "Tables in the site's database (a restore checks it gets them all back); null until it is taken",
  })
  tables!: number | null;
  @Field(() => String, { nullable: true, description: 'Why it failed; null unless it did' })
  @ApiPropertyOptional({ type: String, nullable: true, description: 'Why it failed; null unless it did' })
  error!: string | null;
  @Field({ description: 'When it was requested' }) @ApiProperty({ description: 'When it was requested' }) createdAt!: Date;
  @Field(() => Date, { nullable: true, description: 'When it was taken or failed; null while PENDING' })
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When it was taken or failed; null while PENDING',
  })
  finishedAt!: Date | null;
  @Field(() => Date, {
    nullable: true,
    description:
      'When it is forgotten: its site was deleted, and it is kept BERTH_BACKUP_KEEP_DELETED_DAYS after; null while the site lives, or once DELETED',
  })
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description:
      'When it is forgotten: its site was deleted, and it is kept BERTH_BACKUP_KEEP_DELETED_DAYS after; null while the site lives, or once DELETED',
  })
  expiresAt!: Date | null;
}

@ObjectType('BackupAndJob', { description: 'A backup and the job that acts on it' })
export class BackupAndJobView {
  @Field(() => BackupView, { description: 'The backup, PENDING until its job has taken it' })
  @ApiProperty({ type: BackupView, description: 'The backup, PENDING until its job has taken it' })
  backup!: BackupView;
  @Field(() => JobView, {
    description: "createBackup: the BACKUP job that takes it; pushSite: the target's RESTORE job, which puts it back there",
  })
  @ApiProperty({
    type: JobView,
    description: "createBackup: the BACKUP job that takes it; pushSite: the target's RESTORE job, which puts it back there",
  })
  job!: JobView;
}

@InputType({ description: 'What restoreSite puts back' })
export class RestoreInput {
  @Field(() => ID, { description: 'The backup to put back: a SUCCEEDED one of this site' })
  @ApiProperty({ description: 'The backup to put back: a SUCCEEDED one of this site' })
  @IsUUID('all', { message: 'backupId must be a backup id' })
  backupId!: string;

  @Field(() => [String], { nullable: true, description: 'What to put back: database, files (default: both)' })
  @ApiPropertyOptional({ enum: BACKUP_PARTS, isArray: true, description: 'What to put back (default: both)' })
  @IsOptional()
  @IsIn(BACKUP_PARTS, { each: true, message: `parts must hold only ${BACKUP_PARTS.join(', ')}` })
  @ArrayUnique({ message: 'parts must not repeat a part' })
  parts?: BackupPart[];
}

@InputType({ description: 'The new site cloneSite makes from a backup' })
export class CloneInput {
  @Field({ description: "The new site's name" })
  @ApiProperty({ example: 'shop-staging', description: SITE_NAME_MESSAGE })
  @IsString()
  @Matches(SITE_NAME_PATTERN, { message: SITE_NAME_MESSAGE })
  name!: string;

  @Field(() => ID, { nullable: true, description: "The new site's tenant: the source's by default; another only with an admin key" })
  @ApiPropertyOptional({ description: "The new site's tenant: the source's by default; another only with an admin key" })
  @IsOptional()
  @IsUUID('all', { message: 'tenantId must be a tenant id (UUID)' })
  tenantId?: string;

  @Field(() => String, {
    nullable: true,
    description: "The new site's primary domain (its URLs are moved there); by default its platform hostname",
  })
  @ApiPropertyOptional({
    example: 'staging.shop.example',
    description: "The new site's primary domain (its URLs are moved there); by default its platform hostname",
  })
  @IsOptional()
  @IsString()
  domain?: string;

  @Field(() => ID, { nullable: true, description: "The backup to copy: by default the source's latest" })
  @ApiPropertyOptional({ description: "The backup to copy: by default the source's latest" })
  @IsOptional()
  @IsUUID('all', { message: 'backupId must be a backup id' })
  backupId?: string;
}

const KEEP_DAILY = 'Keeps the newest scheduled backup or checkpoint of each of this many most recent days that have one';
const KEEP_WEEKLY = 'Keeps the newest scheduled backup or checkpoint of each of this many most recent ISO weeks that have one';

@ObjectType('BackupPolicy', { description: "A site's scheduled backups and how many are kept" })
export class BackupPolicyView {
  @Field(() => Int, { description: 'Hours between scheduled backups; 0: none' })
  @ApiProperty({ description: 'Hours between scheduled backups; 0: none' })
  intervalHours!: number;
  @Field(() => Int, { description: KEEP_DAILY })
  @ApiProperty({ description: KEEP_DAILY })
  keepDaily!: number;
  @Field(() => Int, { description: KEEP_WEEKLY })
  @ApiProperty({ description: KEEP_WEEKLY })
  keepWeekly!: number;
  @Field(() => Date, {
    nullable: true,
    description: 'When the next scheduled backup is due; null without a schedule, or until the scheduler first places the site on it',
  })
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the next scheduled backup is due; null without a schedule, or until the scheduler first places the site on it',
  })
  nextBackupAt!: Date | null;
}

@InputType({ description: "A site's backup schedule and retention, within the limits the operator set" })
export class BackupPolicyInput {
  @Field(() => Int, { description: 'Hours between scheduled backups; 0: none, else at least BERTH_BACKUP_MIN_INTERVAL_HOURS' })
  @ApiProperty({
    minimum: 0,
    maximum: 8760,
    description: 'Hours between scheduled backups; 0: none, else at least BERTH_BACKUP_MIN_INTERVAL_HOURS',
  })
  @IsInt({ message: 'intervalHours must be a whole number of hours' })
  @Min(0)
  @Max(8760)
  intervalHours!: number;

  @Field(() => Int, { description: `${KEEP_DAILY} (at least 1; at most BERTH_BACKUP_MAX_KEEP_DAILY)` })
  @ApiProperty({ minimum: 1, description: `${KEEP_DAILY} (at least 1; at most BERTH_BACKUP_MAX_KEEP_DAILY)` })
  @IsInt({ message: 'keepDaily must be a whole number' })
  @Min(1, { message: 'keepDaily must be at least 1: the newest backup is always kept' })
  keepDaily!: number;

  @Field(() => Int, { description: `${KEEP_WEEKLY} (at most BERTH_BACKUP_MAX_KEEP_WEEKLY)` })
  @ApiProperty({ minimum: 0, description: `${KEEP_WEEKLY} (at most BERTH_BACKUP_MAX_KEEP_WEEKLY)` })
  @IsInt({ message: 'keepWeekly must be a whole number' })
  @Min(0)
  keepWeekly!: number;
}

@InputType({ description: 'What pushSite copies, and onto which site' })
export class PushInput {
  @Field(() => ID, { description: "The site that gets this one's content (live, for a staging copy); of the same tenant" })
  @ApiProperty({ description: "The site that gets this one's content (live, for a staging copy); of the same tenant" })
  @IsUUID('all', { message: 'targetSiteId must be a site id' })
  targetSiteId!: string;

  @Field(() => [String], { nullable: true, description: 'What to copy: database, files (default: both)' })
  @ApiPropertyOptional({ enum: BACKUP_PARTS, isArray: true, description: 'What to copy (default: both)' })
  @IsOptional()
  @IsIn(BACKUP_PARTS, { each: true, message: `parts must hold only ${BACKUP_PARTS.join(', ')}` })
  @ArrayUnique({ message: 'parts must not repeat a part' })
  parts?: BackupPart[];
}

/** GET /v1/backups: a tenant's backups, its deleted sites' among them. */
@ArgsType()
export class BackupFilterArgs extends PageArgs {
  @Field(() => ID, { nullable: true, description: 'The tenant (admin keys); a tenant key sees its own' })
  @ApiPropertyOptional({ description: 'The tenant (admin keys); a tenant key sees its own' })
  @IsOmittable()
  @IsUUID('all', { message: 'tenantId must be a tenant id (UUID)' })
  tenantId?: string;

  @Field(() => ID, { nullable: true, description: 'One site (a deleted one too)' })
  @ApiPropertyOptional({ description: 'One site (a deleted one too)' })
  @IsOmittable()
  @IsUUID('all', { message: 'siteId must be a site id (UUID)' })
  siteId?: string;

  @Field(() => Boolean, { nullable: true, description: 'Only the backups of deleted sites (what can still bring them back)' })
  @ApiPropertyOptional({ default: false, description: 'Only the backups of deleted sites (what can still bring them back)' })
  @IsOmittable()
  @Transform(({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'deletedSites must be true or false' })
  deletedSites?: boolean;
}
