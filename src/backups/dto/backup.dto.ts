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

registerEnumType(BackupKind, { name: 'BackupKind' });
registerEnumType(BackupStatus, { name: 'BackupStatus' });

@ObjectType('Backup')
export class BackupView {
  @Field(() => ID) @ApiProperty() id!: string;
  @Field(() => ID) @ApiProperty() tenantId!: string;
  @Field(() => ID) @ApiProperty() siteId!: string;
  @Field(() => BackupKind)
  @ApiProperty({ enum: BackupKind, description: 'MANUAL: asked for; CHECKPOINT: taken by a restore before it changed anything' })
  kind!: BackupKind;
  @Field(() => BackupStatus) @ApiProperty({ enum: BackupStatus }) status!: BackupStatus;
  @Field(() => ID, { nullable: true }) @ApiPropertyOptional({ nullable: true }) jobId!: string | null;
  @Field(() => String, { nullable: true, description: "restic's snapshot id" })
  @ApiPropertyOptional({ nullable: true, description: "restic's snapshot id" })
  snapshotId!: string | null;
  @Field(() => Float, { nullable: true, description: 'Bytes of database dump and files read' })
  @ApiPropertyOptional({ nullable: true })
  sizeBytes!: number | null;
  @Field(() => Float, { nullable: true, description: 'Bytes the backup added to the repository (after deduplication)' })
  @ApiPropertyOptional({ nullable: true })
  addedBytes!: number | null;
  @Field(() => Int, { nullable: true }) @ApiPropertyOptional({ nullable: true }) durationMs!: number | null;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional({ nullable: true }) wordpressVersion!: string | null;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional({ nullable: true }) image!: string | null;
  @Field(() => String, { nullable: true, description: 'Where the site answered when the backup was taken' })
  @ApiPropertyOptional({ nullable: true })
  wordpressUrl!: string | null;
  @Field(() => Int, { nullable: true }) @ApiPropertyOptional({ nullable: true }) tables!: number | null;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional({ nullable: true }) error!: string | null;
  @Field() @ApiProperty() createdAt!: Date;
  @Field(() => Date, { nullable: true }) @ApiPropertyOptional({ nullable: true }) finishedAt!: Date | null;
  @Field(() => Date, {
    nullable: true,
    description:
      'When it is forgotten: its site was deleted, and it is kept BERTH_BACKUP_KEEP_DELETED_DAYS after; null while the site lives',
  })
  @ApiPropertyOptional({
    nullable: true,
    description:
      'When it is forgotten: its site was deleted, and it is kept BERTH_BACKUP_KEEP_DELETED_DAYS after; null while the site lives',
  })
  expiresAt!: Date | null;
}

@ObjectType('BackupAndJob')
export class BackupAndJobView {
  @Field(() => BackupView) @ApiProperty({ type: BackupView }) backup!: BackupView;
  @Field(() => JobView) @ApiProperty({ type: JobView }) job!: JobView;
}

@InputType()
export class RestoreInput {
  @Field(() => ID)
  @ApiProperty({ description: 'The backup to put back (one of this site)' })
  @IsUUID('all', { message: 'backupId must be a backup id' })
  backupId!: string;

  @Field(() => [String], { nullable: true, description: 'What to put back: database, files (default: both)' })
  @ApiPropertyOptional({ enum: BACKUP_PARTS, isArray: true, description: 'What to put back (default: both)' })
  @IsOptional()
  @IsIn(BACKUP_PARTS, { each: true, message: `parts must hold only ${BACKUP_PARTS.join(', ')}` })
  @ArrayUnique({ message: 'parts must not repeat a part' })
  parts?: BackupPart[];
}

@InputType()
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

@ObjectType('BackupPolicy')
export class BackupPolicyView {
  @Field(() => Int, { description: 'Hours between scheduled backups; 0: none' })
  @ApiProperty({ description: 'Hours between scheduled backups; 0: none' })
  intervalHours!: number;
  @Field(() => Int, { description: 'Scheduled backups kept: the newest of each of this many days' })
  @ApiProperty()
  keepDaily!: number;
  @Field(() => Int, { description: '... and of each of this many weeks' })
  @ApiProperty()
  keepWeekly!: number;
  @Field(() => Date, { nullable: true, description: 'When the next scheduled backup is due' })
  @ApiPropertyOptional({ nullable: true })
  nextBackupAt!: Date | null;
}

@InputType()
export class BackupPolicyInput {
  @Field(() => Int, { description: 'Hours between scheduled backups; 0: none' })
  @ApiProperty({ minimum: 0, maximum: 8760, description: 'Hours between scheduled backups; 0: none' })
  @IsInt({ message: 'intervalHours must be a whole number of hours' })
  @Min(0)
  @Max(8760)
  intervalHours!: number;

  @Field(() => Int)
  @ApiProperty({ minimum: 1 })
  @IsInt({ message: 'keepDaily must be a whole number' })
  @Min(1, { message: 'keepDaily must be at least 1: the newest backup is always kept' })
  keepDaily!: number;

  @Field(() => Int)
  @ApiProperty({ minimum: 0 })
  @IsInt({ message: 'keepWeekly must be a whole number' })
  @Min(0)
  keepWeekly!: number;
}

@InputType()
export class PushInput {
  @Field(() => ID, { description: "The site that gets this one's content (live, for a staging copy)" })
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
