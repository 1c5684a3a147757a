import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArgsType, Field, ID, InputType, Int, ObjectType } from '@nestjs/graphql';
import { ArrayMaxSize, IsArray, IsBoolean, IsOptional, IsString, IsUrl, IsUUID, Length, Matches, MaxLength } from 'class-validator';
import { DeliveryStatus } from '../../generated/prisma/enums';
import { PageArgs } from '../../common/page.dto';
import { IsOmittable } from '../../common/omittable';
import { registerEnumType } from '@nestjs/graphql';

registerEnumType(DeliveryStatus, { name: 'DeliveryStatus' });

const URL_OPTIONS = { protocols: ['http', 'https'], require_protocol: true, require_tld: false, allow_underscores: true };
const EVENT_TYPE = /^[a-z_]+(\.[a-z_]+)*$/;

const UrlChecks = () => applyDecorators(IsUrl(URL_OPTIONS, { message: 'url must be an http:// or https:// URL' }), MaxLength(2000));
const EventTypesField = () =>
  applyDecorators(
    Field(() => [String], { nullable: true, description: 'Event types to deliver; all when empty' }),
    ApiPropertyOptional({ type: [String], example: ['site.down', 'site.up'], description: 'Event types to deliver; all when empty' }),
    IsOmittable(),
    IsArray(),
    ArrayMaxSize(50),
    Matches(EVENT_TYPE, { each: true, message: 'each event type looks like site.down' }),
  );
const DescriptionField = () => applyDecorators(Field({ nullable: true }), ApiPropertyOptional(), IsOptional(), IsString(), MaxLength(200));

@InputType()
export class CreateWebhookInput {
  @Field()
  @ApiProperty({ example: 'https://hooks.example.com/berth' })
  @UrlChecks()
  url!: string;

  @Field(() => ID, { nullable: true, description: 'Required with an admin key' })
  @ApiPropertyOptional({ description: 'Required with an admin key' })
  @IsOptional()
  @IsUUID('all', { message: 'tenantId must be a tenant id (UUID)' })
  tenantId?: string;

  @Field({ nullable: true, description: 'HMAC secret; generated and shown once when omitted' })
  @ApiPropertyOptional({ description: 'HMAC secret; generated and shown once when omitted' })
  @IsOptional()
  @IsString()
  @Length(16, 200)
  secret?: string;

  @EventTypesField()
  events?: string[];

  @DescriptionField()
  description?: string;
}

@InputType()
export class UpdateWebhookInput {
  @Field({ nullable: true })
  @ApiPropertyOptional()
  @IsOmittable()
  @UrlChecks()
  url?: string;

  @EventTypesField()
  events?: string[];

  @Field({ nullable: true })
  @ApiPropertyOptional()
  @IsOmittable()
  @IsBoolean()
  active?: boolean;

  @DescriptionField()
  description?: string;
}

@ObjectType('Webhook')
export class WebhookView {
  @Field(() => ID) @ApiProperty() id!: string;
  @Field(() => ID) @ApiProperty() tenantId!: string;
  @Field() @ApiProperty() url!: string;
  @Field(() => [String]) @ApiProperty({ type: [String] }) events!: string[];
  @Field() @ApiProperty() active!: boolean;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() description!: string | null;
  @Field() @ApiProperty() createdAt!: Date;
  @Field(() => String, { nullable: true, description: 'Only in the answer to createWebhook, when Berth generated it' })
  @ApiPropertyOptional({ description: 'Only in the answer to the creation, when Berth generated it' })
  secret?: string;
}

@ObjectType('WebhookDelivery')
export class WebhookDeliveryView {
  @Field(() => ID) @ApiProperty() id!: string;
  @Field(() => ID) @ApiProperty() eventId!: string;
  @Field() @ApiProperty() eventType!: string;
  @Field(() => DeliveryStatus) @ApiProperty({ enum: DeliveryStatus }) status!: DeliveryStatus;
  @Field(() => Int) @ApiProperty() attempts!: number;
  @Field(() => Int, { nullable: true }) @ApiPropertyOptional() responseStatus!: number | null;
  @Field(() => String, { nullable: true }) @ApiPropertyOptional() error!: string | null;
  @Field() @ApiProperty() createdAt!: Date;
  @Field(() => Date, { nullable: true }) @ApiPropertyOptional() lastAttemptAt!: Date | null;
  @Field(() => Date, { nullable: true }) @ApiPropertyOptional() deliveredAt!: Date | null;
}

/** webhookDeliveries(id, limit, offset): the id and the page are validated together. */
@ArgsType()
export class WebhookDeliveriesArgs extends PageArgs {
  @Field(() => ID)
  @IsString()
  id!: string;
}
