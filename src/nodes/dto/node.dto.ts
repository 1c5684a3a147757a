import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Field, Float, ID, Int, ObjectType } from '@nestjs/graphql';
import { GraphQLJSONObject } from '../../common/json.scalar';

@ObjectType('NodeRoom')
export class RoomView {
  @Field(() => Int)
  @ApiProperty({ description: 'MiB' })
  memoryMb!: number;

  @Field(() => Float)
  @ApiProperty()
  cpus!: number;
}

/** One node of the Swarm cluster, as Berth places tenants on it. */
@ObjectType('Node')
export class NodeView {
  @Field(() => ID)
  @ApiProperty({ description: "Swarm's node ID" })
  id!: string;

  @Field()
  @ApiProperty()
  hostname!: string;

  @Field({ nullable: true })
  @ApiPropertyOptional({ description: 'The address the node is reached at in the cluster' })
  address?: string;

  @Field()
  @ApiProperty({ enum: ['manager', 'worker'] })
  role!: string;

  @Field()
  @ApiProperty({ enum: ['ready', 'down', 'disconnected', 'unknown'], description: "Swarm's view of the node" })
  state!: string;

  @Field()
  @ApiProperty({ enum: ['active', 'pause', 'drain'], description: "Swarm's availability of the node" })
  availability!: string;

  @Field()
  @ApiProperty({ description: 'Cordoned in Berth: takes no new tenant; its tenants stay and keep running' })
  cordoned!: boolean;

  @Field()
  @ApiProperty({ description: 'Takes new tenants: ready, active and not cordoned' })
  schedulable!: boolean;

  @Field(() => GraphQLJSONObject)
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } })
  labels!: Record<string, string>;

  @Field(() => RoomView)
  @ApiProperty({
    type: RoomView,
    description: 'What Berth may book on the node (the berth.memory-mb and berth.cpus labels, else what the engine reports)',
  })
  capacity!: RoomView;

  @Field(() => RoomView)
  @ApiProperty({ type: RoomView, description: "Booked by the tenants placed on it: each one's database server and sites at their limits" })
  reserved!: RoomView;

  @Field(() => [ID])
  @ApiProperty({ type: [String], description: 'Ids of the tenants that live on the node' })
  tenants!: string[];

  @Field(() => Int)
  @ApiProperty({ description: 'Sites of those tenants' })
  sites!: number;
}
