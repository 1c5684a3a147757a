import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArgsType, Field, ID, ObjectType } from '@nestjs/graphql';
import { GraphQLJSONObject } from '../../common/json.scalar';
import { Type } from 'class-transformer';
import { IsDate, IsOptional, IsString, IsUUID, Matches, MinDate } from 'class-validator';
import { PageArgs } from '../../common/page.dto';
import { IsOmittable } from '../../common/omittable';

@ArgsType()
export class EventFilterArgs extends PageArgs {
  @Field(() => ID, { nullable: true })
  @ApiPropertyOptional()
  @IsOptional()
  @IsUUID('all', { message: 'siteId must be a site id (UUID)' })
  siteId?: string;

  @Field({ nullable: true, description: 'Exact event type, such as site.down' })
  @ApiPropertyOptional({ example: 'site.down' })
  @IsOmittable()
  @IsString()
  @Matches(/^[a-z_]+(\.[a-z_]+)*$/, { message: 'type looks like site.down' })
  type?: string;

  @Field({ nullable: true, description: 'Only events older than this (for paging back)' })
  @ApiPropertyOptional({ type: String, format: 'date-time' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'before must be an ISO date-time' })
  // Earlier dates (year 0 and before) are outside what PostgreSQL stores; no event is that old.
  @MinDate(new Date(0), { message: 'before must be after 1970-01-01' })
  before?: Date;
}

@ObjectType('Event')
export class EventView {
  @Field(() => ID) @ApiProperty() id!: string;
  @Field(() => ID, { nullable: true }) @ApiPropertyOptional() tenantId!: string | null;
  @Field(() => ID, { nullable: true }) @ApiPropertyOptional() siteId!: string | null;
  @Field() @ApiProperty() type!: string;
  @Field() @ApiProperty() message!: string;
  @Field(() => GraphQLJSONObject) @ApiProperty({ type: 'object', additionalProperties: true }) data!: object;
  @Field(() => ID, { nullable: true }) @ApiPropertyOptional() actorKeyId!: string | null;
  @Field() @ApiProperty() createdAt!: Date;
}
