import { HttpException, Logger } from '@nestjs/common';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { randomUUID } from 'node:crypto';
import { BerthError, ErrorCode } from './errors';

const logger = new Logger('GraphQL');

/** Apollo Server's codes for requests it refuses (the client's mistake, not ours). */
const APOLLO_CLIENT_ERRORS = new Set([
  'GRAPHQL_VALIDATION_FAILED',
  'GRAPHQL_PARSE_FAILED',
  'BAD_USER_INPUT',
  'OPERATION_RESOLUTION_FAILURE',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
]);

/** Maps errors to `extensions.code`; unknown errors become INTERNAL with a request id, no stack. */
export function formatGraphQLError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const original = error instanceof GraphQLError ? error.originalError : error;
  const base = { message: formatted.message, locations: formatted.locations, path: formatted.path };
  if (original instanceof BerthError) {
    return {
      ...base,
      message: original.message,
      extensions: { code: original.code, ...(original.details ? { details: original.details } : {}) },
    };
  }
  if (original instanceof HttpException && original.getStatus() < 500) {
    return {
      ...base,
      message: original.message,
      extensions: { code: original.getStatus() === 413 ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.VALIDATION_FAILED },
    };
  }
  const code = formatted.extensions?.code;
  const own =
    (original as GraphQLError | undefined)?.extensions?.code ?? (error instanceof GraphQLError ? error.extensions?.code : undefined);
  if (typeof own === 'string' && own in ErrorCode) return { ...base, extensions: { code: own } };
  // graphql-js' own errors (syntax, validation, variable coercion) are the client's mistakes.
  if (!original || original instanceof GraphQLError || (typeof code === 'string' && APOLLO_CLIENT_ERRORS.has(code))) {
    return { ...base, extensions: { code: ErrorCode.VALIDATION_FAILED } };
  }
  const requestId = randomUUID();
  logger.error(`request ${requestId} failed`, original instanceof Error ? original.stack : String(original));
  return { ...base, message: 'Internal error; quote the request id to the operator', extensions: { code: ErrorCode.INTERNAL, requestId } };
}
