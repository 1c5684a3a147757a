import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArgsType, Field, ID } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsDate, IsOptional, IsString, IsUUID, Matches } from 'class-validator';
import { PageArgs } from '../../common/page.dto';

@ArgsType()
export class EventFilterArgs extends PageArgs {
  @Field(() => ID, { nullable: true })
  @ApiPropertyOptional()
  @IsOptional()
  @IsUUID('all', { message: 'siteId must be a site id (UUID)' })
  siteId?: string;

  @Field({ nullable: true, description: 'Exact event type, such as site.down' })
  @ApiPropertyOptional({ example: 'site.down' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z_]+(\.[a-z_]+)*$/, { message: 'type looks like site.down' })
  type?: string;

  @Field({ nullable: true, description: 'Only events older than this (for paging back)' })
  @ApiPropertyOptional({ type: String, format: 'date-time' })
  @IsOptional()
  @Type(() => Date)
  @IsDate({ message: 'before must be an ISO date-time' })
  before?: Date;
}
