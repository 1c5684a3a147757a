import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger, PayloadTooLargeException } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { BerthError, ErrorCode, httpStatusOf } from './errors';

interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  instance?: string;
  requestId?: string;
  errors?: unknown;
}

/** Turns any error into RFC 9457 problem+json; unknown errors never leak their stack. */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(error: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw error;
    const req = host.switchToHttp().getRequest<Request>();
    const res = host.switchToHttp().getResponse<Response>();
    const problem = this.toProblem(error);
    problem.instance = req.originalUrl;
    if (res.headersSent) {
      res.end();
      return;
    }
    const retryAfter = error instanceof BerthError ? error.details?.retryAfterSeconds : undefined;
    if (typeof retryAfter === 'number') res.setHeader('Retry-After', String(retryAfter));
    res.status(problem.status).type('application/problem+json').json(problem);
  }

  private toProblem(error: unknown): Problem {
    if (error instanceof BerthError) {
      const status = httpStatusOf(error.code);
      return {
        type: 'about:blank',
        title: error.code,
        status,
        code: error.code,
        detail: error.message,
        ...(error.details ? { errors: error.details } : {}),
      };
    }
    if (error instanceof PayloadTooLargeException || isBodyParserError(error, 'entity.too.large')) {
      return problem(ErrorCode.PAYLOAD_TOO_LARGE, 'The request body is too large');
    }
    if (isBodyParserError(error, 'entity.parse.failed')) {
      return problem(ErrorCode.VALIDATION_FAILED, 'The request body is not valid JSON');
    }
    if (error instanceof HttpException) {
      const status = error.getStatus();
      const code =
        status === 404
          ? ErrorCode.NOT_FOUND
          : status === 401
            ? ErrorCode.UNAUTHENTICATED
            : status === 403
              ? ErrorCode.FORBIDDEN
              : status === 413
                ? ErrorCode.PAYLOAD_TOO_LARGE
                : status < 500
                  ? ErrorCode.VALIDATION_FAILED
                  : ErrorCode.INTERNAL;
      return { ...problem(code, error.message), status };
    }
    const requestId = randomUUID();
    this.logger.error(`request ${requestId} failed`, error instanceof Error ? error.stack : String(error));
    return { ...problem(ErrorCode.INTERNAL, 'Internal error; quote the request id to the operator'), requestId };
  }
}

function problem(code: ErrorCode, detail: string): Problem {
  return { type: 'about:blank', title: code, status: httpStatusOf(code), code, detail };
}

function isBodyParserError(error: unknown, type: string): boolean {
  return typeof error === 'object' && error !== null && (error as { type?: unknown }).type === type;
}
