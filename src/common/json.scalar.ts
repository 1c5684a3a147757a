import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';

function literal(node: ValueNode): unknown {
  switch (node.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return node.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return node.values.map(literal);
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((f) => [f.name.value, literal(f.value)]));
    default:
      throw new GraphQLError('JSONObject literals cannot contain variables', { extensions: { code: 'VALIDATION_FAILED' } });
  }
}

function object(value: unknown): object {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GraphQLError('Expected a JSON object', { extensions: { code: 'VALIDATION_FAILED' } });
  }
  return value;
}

/** A JSON object (string-keyed map); small enough not to warrant graphql-type-json. */
export const GraphQLJSONObject = new GraphQLScalarType({
  name: 'JSONObject',
  description: 'A JSON object',
  serialize: object,
  parseValue: object,
  parseLiteral: (node) => object(literal(node)),
});
