import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, ID, InputType, ObjectType, registerEnumType } from '@nestjs/graphql';
import { IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { ApiKeyRole } from '../../generated/prisma/enums';
import { IsOmittable } from '../../common/omittable';

registerEnumType(ApiKeyRole, { name: 'ApiKeyRole' });

@InputType()
export class CreateApiKeyInput {
  @Field(() => ApiKeyRole, { nullable: true })
  @ApiPropertyOptional({ enum: [ApiKeyRole.TENANT, ApiKeyRole.TENANT_READONLY], default: ApiKeyRole.TENANT })
  @IsOmittable()
  @Matches(/^(TENANT|TENANT_READONLY)$/, { message: 'role must be TENANT or TENANT_READONLY' })
  role?: ApiKeyRole;

  @Field({ nullable: true })
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  name?: string;
}

@ObjectType('ApiKey')
export class ApiKeyView {
  @Field(() => ID) @ApiProperty() id!: string;
  @Field(() => ID, { nullable: true }) @ApiPropertyOptional() tenantId!: string | null;
  @Field(() => ApiKeyRole) @ApiProperty({ enum: ApiKeyRole }) role!: ApiKeyRole;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() name!: string | null;
  @Field({ description: 'First characters of the key, to recognise it' }) @ApiProperty() prefix!: string;
  @Field() @ApiProperty() createdAt!: Date;
  @Field(() => Date, { nullable: true }) @ApiPropertyOptional() lastUsedAt!: Date | null;
  @Field(() => Date, { nullable: true }) @ApiPropertyOptional() revokedAt!: Date | null;
}

@ObjectType('IssuedApiKey')
export class IssuedApiKeyView {
  @Field(() => ID) @ApiProperty() id!: string;
  @Field({ description: 'The key itself: shown once, store it now' }) @ApiProperty() key!: string;
  @Field(() => ApiKeyRole) @ApiProperty({ enum: ApiKeyRole }) role!: ApiKeyRole;
  @Field(() => ID, { nullable: true }) @ApiPropertyOptional() tenantId!: string | null;
}
