import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { ERRORS_EXTENSION } from '../common/api-operation';
import { ErrorCode, httpStatusOf } from '../common/errors';
import { PUBLIC_EXTENSION } from '../common/principal';

type Operation = {
  operationId?: string;
  parameters?: { in: string; name: string; description?: string }[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
  security?: Record<string, string[]>[];
  [extension: `x-${string}`]: unknown;
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;
const SECURITY = 'apiKey';

const REASON: Record<number, string> = {
  400: 'Bad request',
  401: 'No valid API key',
  403: 'Not allowed for this key',
  404: 'Not found',
  409: 'Conflict with the current state',
  413: 'Request body too large',
  422: 'Cannot be done as asked',
  429: 'Rate limit reached',
  500: 'Internal error',
  501: 'Not supported on this engine',
  503: 'A dependency is unavailable',
};

/**
 * Berth's OpenAPI document: what Nest reads off the controllers (paths, DTO schemas, and each
 * handler's @Operation), completed here in one place with what every operation shares:
 * the problem+json error responses (grouped by status, with the codes each can carry),
 * the API-key security requirement (global; @Public() routes are open), the server.
 */
export function openApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Berth')
    .setDescription(
      "WordPress sites on Docker, per tenant. Every request but /healthz, /readyz, /metrics (it has its own token) and the edge's ask carries an API key " +
        '(`Authorization: Bearer berth_...`). Work that takes time answers 202 with a job; follow it at /v1/jobs/{id}, ' +
        'over GraphQL subscriptions or /v1/events/stream. Errors are RFC 9457 problem+json with a stable `code`. ' +
        '/v1 only grows: see the versioning policy in the README.',
    )
    .setVersion('1')
    .setLicense('MIT', 'https://opensource.org/licenses/MIT')
    .addServer('/', 'This Berth')
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'opaque API key',
        description: 'An opaque API key (berth_...), issued by POST /v1/tenants/{id}/api-keys',
      },
      SECURITY,
    )
    .addSecurityRequirements(SECURITY)
    .build();
  return complete(SwaggerModule.createDocument(app, config));
}

/** Adds the shared parts to a document Nest generated. */
function complete(doc: OpenAPIObject): OpenAPIObject {
  doc.components ??= {};
  doc.components.schemas ??= {};
  doc.components.schemas.Problem = PROBLEM_SCHEMA;
  doc.components.headers = RATE_LIMIT_HEADER_DEFINITIONS;
  // The answers most operations share are written once and referred to.
  doc.components.responses = Object.fromEntries(Object.entries(SHARED).map(([name, code]) => [name, answer(httpStatusOf(code), [code])]));
  for (const item of Object.values(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method] as Operation | undefined;
      if (!op) continue;
      const open = op[PUBLIC_EXTENSION] === true;
      if (open) op.security = [];
      else delete op.security; // the global requirement applies
      op.parameters = dedupeHeaders(op.parameters);
      const codes = new Set<ErrorCode>((op[ERRORS_EXTENSION] as ErrorCode[] | undefined) ?? []);
      if (!open) [ErrorCode.UNAUTHENTICATED, ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED].forEach((c) => codes.add(c));
      if (op.parameters?.length || op.requestBody) codes.add(ErrorCode.VALIDATION_FAILED);
      if (op.requestBody) codes.add(ErrorCode.PAYLOAD_TOO_LARGE);
      codes.add(ErrorCode.INTERNAL);
      Object.assign(op.responses, errorResponses([...codes], doc.components.responses));
      // Every answer to a key says where the key stands against its rate limit.
      if (!open)
        for (const [status, response] of Object.entries(op.responses))
          if (Number(status) < 300) (response as { headers?: Record<string, unknown> }).headers = { ...RATE_LIMIT_HEADERS };
      delete op[ERRORS_EXTENSION];
      delete op[PUBLIC_EXTENSION];
    }
  }
  return doc;
}

/** Header names are case-insensitive: @Headers('idempotency-key') and @ApiHeader('Idempotency-Key') are one. */
function dedupeHeaders(params: Operation['parameters']): Operation['parameters'] {
  if (!params) return params;
  const out: NonNullable<Operation['parameters']> = [];
  for (const p of params) {
    if (p.in !== 'header') {
      out.push(p);
      continue;
    }
    const key = p.name.toLowerCase();
    const seen = out.findIndex((q) => q.in === 'header' && q.name.toLowerCase() === key);
    if (seen < 0) out.push(p);
    else if (!out[seen].description && p.description) out[seen] = p;
  }
  return out;
}

/** Answers that one code makes alone, shared through components.responses. */
const SHARED: Record<string, ErrorCode> = {
  Unauthenticated: ErrorCode.UNAUTHENTICATED,
  Forbidden: ErrorCode.FORBIDDEN,
  ValidationFailed: ErrorCode.VALIDATION_FAILED,
  PayloadTooLarge: ErrorCode.PAYLOAD_TOO_LARGE,
  RateLimited: ErrorCode.RATE_LIMITED,
  Internal: ErrorCode.INTERNAL,
};

function errorResponses(codes: ErrorCode[], shared?: Record<string, unknown>): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes.sort()) {
    const status = httpStatusOf(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, statusCodes]) => {
      const alone = statusCodes.length === 1 ? Object.keys(SHARED).find((name) => SHARED[name] === statusCodes[0]) : undefined;
      if (shared && alone) return [String(status), { $ref: `#/components/responses/${alone}` }];
      return [String(status), answer(status, statusCodes)];
    }),
  );
}

function answer(status: number, statusCodes: ErrorCode[]) {
  return {
    description: `${REASON[status] ?? 'Error'}: ${statusCodes.join(', ')}`,
    ...(status === 429
      ? {
          headers: {
            'Retry-After': {
              description: 'Seconds to wait before trying again',
              schema: { type: 'integer', minimum: 1 },
            },
          },
        }
      : {}),
    content: {
      'application/problem+json': {
        schema: {
          allOf: [
            { $ref: '#/components/schemas/Problem' },
            { type: 'object', properties: { code: { type: 'string', enum: statusCodes } } },
          ],
        },
        example: {
          type: 'about:blank',
          title: statusCodes[0],
          status,
          code: statusCodes[0],
          detail: EXAMPLE_DETAIL[statusCodes[0]] ?? `The request was refused: ${statusCodes[0]}`,
        },
      },
    },
  };
}

const EXAMPLE_DETAIL: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.UNAUTHENTICATED]: 'A valid API key is required (Authorization: Bearer berth_...)',
  [ErrorCode.FORBIDDEN]: 'This key may not do that',
  [ErrorCode.VALIDATION_FAILED]: 'name must be 1-40 lowercase letters, digits or dashes',
  [ErrorCode.RATE_LIMITED]: 'Too many requests; retry after 2 s',
  [ErrorCode.INTERNAL]: 'Internal error; quote the request id to the operator',
};

/** The rate-limit headers of answers to a key (BERTH_RATE_LIMIT_PER_MINUTE, BERTH_RATE_LIMIT_BURST; absent when the limit is off). */
const RATE_LIMIT_HEADER_DEFINITIONS = {
  'RateLimit-Limit': {
    description: 'Requests this key may make at once (the burst); the sustained rate is in RateLimit-Policy',
    schema: { type: 'integer' },
  },
  'RateLimit-Remaining': { description: 'Requests this key may still make at once', schema: { type: 'integer' } },
  'RateLimit-Reset': { description: "Seconds until the key's whole burst is available again", schema: { type: 'integer' } },
  'RateLimit-Policy': {
    description: '`<burst>;w=<seconds>`: the burst, refilled evenly over w seconds',
    schema: { type: 'string', example: '1200;w=60' },
  },
};
const RATE_LIMIT_HEADERS = Object.fromEntries(
  Object.keys(RATE_LIMIT_HEADER_DEFINITIONS).map((name) => [name, { $ref: `#/components/headers/${name}` }]),
);

const PROBLEM_SCHEMA = {
  type: 'object',
  description: 'An error (RFC 9457 problem details). `code` is stable; `detail` is for people and may change.',
  required: ['type', 'title', 'status', 'code', 'detail'],
  properties: {
    type: { type: 'string', example: 'about:blank' },
    title: { type: 'string', description: 'The code again (type is about:blank)', example: 'SITE_NOT_FOUND' },
    status: { type: 'integer', example: 404 },
    code: { type: 'string', enum: Object.values(ErrorCode), example: 'SITE_NOT_FOUND' },
    detail: { type: 'string', example: 'site 6f1c... was not found' },
    instance: { type: 'string', description: 'The request path', example: '/v1/sites/6f1c...' },
    requestId: { type: 'string', description: 'On 500 only: quote it to the operator, who finds the cause in the log' },
    errors: {
      type: 'object',
      additionalProperties: true,
      description: 'Details: the fields that failed validation, retryAfterSeconds, ...',
    },
  },
};
