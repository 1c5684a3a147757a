import { applyDecorators } from '@nestjs/common';
import { ApiExtension, ApiOperation } from '@nestjs/swagger';
import type { ErrorCode } from './errors';

/** The OpenAPI extension that carries an operation's own error codes to src/app/openapi.ts. */
export const ERRORS_EXTENSION = 'x-berth-errors';

export interface OperationSpec {
  /** One line, imperative, as a generated client shows it. */
  summary: string;
  /** What a caller must know beyond the summary (asynchronous work, who may call, side effects). */
  description?: string;
  /**
   * The codes this operation answers besides those every operation of its kind can
   * (authentication, rate limit, validation, internal: added by src/app/openapi.ts).
   */
  errors?: ErrorCode[];
}

/**
 * A REST operation's contract, beside its handler: the operationId a generated client uses
 * as its method name, a summary, and the error codes it can answer (each becomes a
 * problem+json response of its HTTP status in the OpenAPI document).
 */
export function Operation(operationId: string, spec: OperationSpec): MethodDecorator {
  return applyDecorators(
    ApiOperation({ operationId, summary: spec.summary, ...(spec.description ? { description: spec.description } : {}) }),
    ApiExtension(ERRORS_EXTENSION, spec.errors ?? []),
  );
}
