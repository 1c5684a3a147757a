import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean } from 'class-validator';
import { IsOmittable } from '../../common/omittable';
import { Field, Float, ID, Int, ObjectType } from '@nestjs/graphql';
import { GraphQLJSONObject } from '../../common/json.scalar';
import { JobView } from '../../jobs/dto/job.dto';

@ObjectType('NodeRoom', { description: 'An amount of memory and CPU on a node' })
export class RoomView {
  @Field(() => Int, { description: 'Memory, MiB' })
  @ApiProperty({ description: 'MiB' })
  memoryMb!: number;

  @Field(() => Float, { description: 'CPUs, in cores' })
  @ApiProperty({ description: 'CPUs, in cores' })
  cpus!: number;
}

/** One node of the Swarm cluster, as Berth places tenants on it. */
@ObjectType('Node', { description: 'One node of the Swarm cluster, as Berth places tenants on it' })
export class NodeView {
  @Field(() => ID, { description: "Swarm's node ID" })
  @ApiProperty({ description: "Swarm's node ID" })
  id!: string;

  @Field({ description: "The node's hostname, as Swarm reports it" })
  @ApiProperty({ description: "The node's hostname, as Swarm reports it" })
  hostname!: string;

  @Field({ nullable: true, description: 'The address the node is reached at in the cluster; null when Swarm reports none' })
  @ApiPropertyOptional({ description: 'The address the node is reached at in the cluster' })
  address?: string;

  @Field({ description: "Swarm's role of the node: manager or worker" })
  @ApiProperty({ enum: ['manager', 'worker'], description: "Swarm's role of the node" })
  role!: string;

  @Field({ description: "Swarm's view of the node: ready, down, disconnected or unknown" })
  @ApiProperty({ enum: ['ready', 'down', 'disconnected', 'unknown'], description: "Swarm's view of the node" })
  state!: string;

  @Field({ description: "Swarm's availability of the node: active, pause or drain" })
  @ApiProperty({ enum: ['active', 'pause', 'drain'], description: "Swarm's availability of the node" })
  availability!: string;

  @Field({ description: 'Cordoned in Berth: takes no new tenant; its tenants stay and keep running' })
  @ApiProperty({ description: 'Cordoned in Berth: takes no new tenant; its tenants stay and keep running' })
  cordoned!: boolean;

  @Field({ description: 'Takes new tenants: ready, active and not cordoned' })
  @ApiProperty({ description: 'Takes new tenants: ready, active and not cordoned' })
  schedulable!: boolean;

  @Field(() => GraphQLJSONObject, {
    description: "The node's Swarm labels, Berth's own (berth.cordoned, berth.memory-mb, berth.cpus) among them",
  })
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: "The node's Swarm labels, Berth's own (berth.cordoned, berth.memory-mb, berth.cpus) among them",
  })
  labels!: Record<string, string>;

  @Field(() => RoomView, {
    description: 'What Berth may book on the node (the berth.memory-mb and berth.cpus labels, else what the engine reports)',
  })
  @ApiProperty({
    type: RoomView,
    description: 'What Berth may book on the node (the berth.memory-mb and berth.cpus labels, else what the engine reports)',
  })
  capacity!: RoomView;

  @Field(() => RoomView, { description: "Booked by the tenants placed on it: each one's database server and sites at their limits" })
  @ApiProperty({ type: RoomView, description: "Booked by the tenants placed on it: each one's database server and sites at their limits" })
  reserved!: RoomView;

  @Field(() => [ID], { description: 'Ids of the tenants that live on the node' })
  @ApiProperty({ type: [String], description: 'Ids of the tenants that live on the node' })
  tenants!: string[];

  @Field(() => Int, { description: 'Sites of those tenants (deleted ones not counted)' })
  @ApiProperty({ description: 'Sites of those tenants (deleted ones not counted)' })
  sites!: number;
}

/** What an evacuation started: the node (cordoned now) and one MOVE_TENANT job per tenant on it. */
@ObjectType('NodeEvacuation', { description: 'What an evacuation started: the node, cordoned, and a MOVE_TENANT job per tenant on it' })
export class NodeEvacuationView {
  @Field(() => NodeView, { description: 'The node, cordoned: it takes no new tenant' })
  @ApiProperty({ type: NodeView, description: 'The node, cordoned: it takes no new tenant' })
  node!: NodeView;

  @Field(() => [JobView], { description: 'One MOVE_TENANT job per tenant on the node (one already under way is reused)' })
  @ApiProperty({ type: [JobView], description: 'One MOVE_TENANT job per tenant on the node (one already under way is reused)' })
  jobs!: JobView[];
}

export const FROM_BACKUPS =
  "Only for a node that is down: each of its tenants is moved from its sites' latest backups, not from the node (what " +
  'changed since each backup is not moved, and a site without one is FAILED); what is left on the node is kept';

/** `?fromBackups=true` of POST /v1/nodes/{id}/evacuate: only "true" or "false", anything else is a 400. */
export class EvacuateNodeArgs {
  @ApiPropertyOptional({ default: false, description: FROM_BACKUPS })
  @IsOmittable()
  @Transform(({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'fromBackups must be true or false' })
  fromBackups?: boolean;
}
