import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArgsType, Field, Int } from '@nestjs/graphql';
import { Type } from 'class-transformer';
import { IsInt, Max, Min } from 'class-validator';
import { IsOmittable } from './omittable';

@ArgsType()
export class PageArgs {
  @Field(() => Int, { nullable: true, defaultValue: 50 })
  @ApiPropertyOptional({ default: 50, minimum: 1, maximum: 200 })
  @IsOmittable()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit: number = 50;

  @Field(() => Int, { nullable: true, defaultValue: 0 })
  @ApiPropertyOptional({ default: 0, minimum: 0 })
  @IsOmittable()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  offset: number = 0;
}
