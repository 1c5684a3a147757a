import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { GqlExecutionContext } from '@nestjs/graphql';
import { selectionOf, type Selection } from './graphql-selection';

/**
 * The fields the query selects under the field being resolved. A custom decorator, not
 * `@Info()`: the input pipe would walk the whole resolve info (schema included) as input.
 */
export const Selected = createParamDecorator((_: unknown, ctx: ExecutionContext): Selection =>
  selectionOf(GqlExecutionContext.create(ctx).getInfo()),
);
