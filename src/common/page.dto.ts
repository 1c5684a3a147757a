import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArgsType, Field, Int } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsInt, Max, Min } from 'class-validator';
import { IsOmittable } from './omittable';

@ArgsType()
export class PageArgs {
  @Field(() => Int, { nullable: true, defaultValue: 50, description: 'How many to answer at most (1 to 200)' })
  @ApiPropertyOptional({ default: 50, minimum: 1, maximum: 200, description: 'How many to answer at most (1 to 200)' })
  @IsOmittable()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit: number = 50;

  @Field(() => Int, { nullable: true, defaultValue: 0, description: 'How many to skip, for paging' })
  @ApiPropertyOptional({ default: 0, minimum: 0, description: 'How many to skip, for paging' })
  @IsOmittable()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  offset: number = 0;
}
