import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArgsType, Field, ID, InputType, Int, ObjectType } from '@nestjs/graphql';
import { ArrayMaxSize, IsArray, IsBoolean, IsOptional, IsString, IsUrl, IsUUID, Length, Matches, MaxLength } from 'class-validator';
import { DeliveryStatus } from '../../generated/prisma/enums';
import { PageArgs } from '../../common/page.dto';
import { IsOmittable } from '../../common/omittable';
import { registerEnumType } from '@nestjs/graphql';

registerEnumType(DeliveryStatus, {
  name: 'DeliveryStatus',
  description: 'Where the delivery of one event to a webhook is',
  valuesMap: {
    PENDING: { description: 'Not made yet, or failed and waiting to be retried' },
    SUCCEEDED: { description: 'The webhook answered with a 2xx status' },
    FAILED: { description: 'Given up: every attempt failed, or the destination is one Berth refuses to call' },
  },
});

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
const DESCRIPTION = "A note for the tenant's own use (at most 200 characters)";
const DescriptionField = () =>
  applyDecorators(
    Field({ nullable: true, description: DESCRIPTION }),
    ApiPropertyOptional({ description: DESCRIPTION }),
    IsOptional(),
    IsString(),
    MaxLength(200),
  );

@InputType({ description: "A new webhook: an endpoint that receives the tenant's events" })
export class CreateWebhookInput {
  @Field({ description: 'The http:// or https:// URL Berth POSTs each event to' })
  @ApiProperty({ example: 'https://hooks.example.com/berth', description: 'The http:// or https:// URL Berth POSTs each event to' })
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

@InputType({ description: 'Changes to a webhook; fields left out stay as they are' })
export class UpdateWebhookInput {
  @Field({ nullable: true, description: 'The new http:// or https:// URL' })
  @ApiPropertyOptional({ description: 'The new http:// or https:// URL' })
  @IsOmittable()
  @UrlChecks()
  url?: string;

  @EventTypesField()
  events?: string[];

  @Field({ nullable: true, description: 'false stops deliveries to it; true starts them again (events in between are not delivered)' })
  @ApiPropertyOptional({ description: 'false stops deliveries to it; true starts them again (events in between are not delivered)' })
  @IsOmittable()
  @IsBoolean()
  active?: boolean;

  @DescriptionField()
  description?: string;
}

@ObjectType('Webhook', { description: "An HTTP(S) endpoint of a tenant that receives its events, signed with the webhook's secret" })
export class WebhookView {
  @Field(() => ID, { description: "The webhook's id" }) @ApiProperty({ description: "The webhook's id" }) id!: string;
  @Field(() => ID, { description: 'The tenant whose events it receives' })
  @ApiProperty({ description: 'The tenant whose events it receives' })
  tenantId!: string;
  @Field({ description: 'Where Berth POSTs each event' }) @ApiProperty({ description: 'Where Berth POSTs each event' }) url!: string;
  @Field(() => [String], { description: 'Event types delivered; all when empty' })
  @ApiProperty({ type: [String], description: 'Event types delivered; all when empty' })
  events!: string[];
  @Field({ description: 'Whether events are delivered to it' })
  @ApiProperty({ description: 'Whether events are delivered to it' })
  active!: boolean;
  @Field(() => String, { nullable: true, description: "A note for the tenant's own use; null if none" })
  @ApiPropertyOptional({ type: String, nullable: true, description: "A note for the tenant's own use; null if none" })
  description!: string | null;
  @Field({ description: 'When it was added' }) @ApiProperty({ description: 'When it was added' }) createdAt!: Date;
  @Field(() => String, { nullable: true, description: 'Only in the answer to createWebhook, when Berth generated it' })
  @ApiPropertyOptional({ description: 'Only in the answer to the creation, when Berth generated it' })
  secret?: string;
}

@ObjectType('WebhookDelivery', { description: 'One event sent, or being sent, to a webhook, with the answer to its last attempt' })
export class WebhookDeliveryView {
  @Field(() => ID, { description: "The delivery's id, sent as the Berth-Delivery header" })
  @ApiProperty({ description: "The delivery's id, sent as the Berth-Delivery header" })
  id!: string;
  @Field(() => ID, { description: 'The event delivered' }) @ApiProperty({ description: 'The event delivered' }) eventId!: string;
  @Field({ description: "The event's type, sent as the Berth-Event header" })
  @ApiProperty({ description: "The event's type, sent as the Berth-Event header" })
  eventType!: string;
  @Field(() => DeliveryStatus, { description: 'Where the delivery is' })
  @ApiProperty({ enum: DeliveryStatus, description: 'Where the delivery is' })
  status!: DeliveryStatus;
  @Field(() => Int, { description: 'Attempts made so far' }) @ApiProperty({ description: 'Attempts made so far' }) attempts!: number;
  @Field(() => Int, { nullable: true, description: "HTTP status of the last attempt's answer; null when none came (or no attempt yet)" })
  @ApiPropertyOptional({
    type: Number,
    nullable: true,
    description: "HTTP status of the last attempt's answer; null when none came (or no attempt yet)",
  })
  responseStatus!: number | null;
  @Field(() => String, {
    nullable: true,
    description: 'Why the last attempt failed (a non-2xx status or a connection error); null if it did not',
  })
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Why the last attempt failed (a non-2xx status or a connection error); null if it did not',
  })
  error!: string | null;
  @Field({ description: 'When the delivery was queued' }) @ApiProperty({ description: 'When the delivery was queued' }) createdAt!: Date;
  @Field(() => Date, { nullable: true, description: 'When the last attempt was made; null before the first' })
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the last attempt was made; null before the first',
  })
  lastAttemptAt!: Date | null;
  @Field(() => Date, { nullable: true, description: 'When the webhook answered with a 2xx status; null until then' })
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When the webhook answered with a 2xx status; null until then',
  })
  deliveredAt!: Date | null;
}

/** webhookDeliveries(id, limit, offset): the id and the page are validated together. */
@ArgsType()
export class WebhookDeliveriesArgs extends PageArgs {
  @Field(() => ID, { description: 'The webhook' })
  @IsString()
  id!: string;
}
