/** Every error a client can see carries one of these codes. */
export enum ErrorCode {
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  FORBIDDEN = 'FORBIDDEN',
  VALIDATION_FAILED = 'VALIDATION_FAILED',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  NOT_FOUND = 'NOT_FOUND',
  TENANT_NOT_FOUND = 'TENANT_NOT_FOUND',
  TENANT_SLUG_TAKEN = 'TENANT_SLUG_TAKEN',
  TENANT_SUSPENDED = 'TENANT_SUSPENDED',
  TENANT_HAS_SITES = 'TENANT_HAS_SITES',
  TENANT_DELETING = 'TENANT_DELETING',
  API_KEY_NOT_FOUND = 'API_KEY_NOT_FOUND',
  SITE_NOT_FOUND = 'SITE_NOT_FOUND',
  SITE_NAME_TAKEN = 'SITE_NAME_TAKEN',
  SITE_DELETED = 'SITE_DELETED',
  JOB_NOT_FOUND = 'JOB_NOT_FOUND',
  DOMAIN_NOT_FOUND = 'DOMAIN_NOT_FOUND',
  BACKUP_NOT_FOUND = 'BACKUP_NOT_FOUND',
  /** The backup is not (or no longer) one that can be restored or downloaded: pending, failed or deleted. */
  BACKUP_NOT_AVAILABLE = 'BACKUP_NOT_AVAILABLE',
  /** The hostname is another site's (whose is not said). */
  DOMAIN_TAKEN = 'DOMAIN_TAKEN',
  JOB_FINISHED = 'JOB_FINISHED',
  JOB_NOT_CANCELLABLE = 'JOB_NOT_CANCELLABLE',
  SITE_BUSY = 'SITE_BUSY',
  QUOTA_EXCEEDED = 'QUOTA_EXCEEDED',
  IDEMPOTENCY_KEY_REUSED = 'IDEMPOTENCY_KEY_REUSED',
  RATE_LIMITED = 'RATE_LIMITED',
  QUERY_TOO_COMPLEX = 'QUERY_TOO_COMPLEX',
  /** A container's image is not on the Docker Engine and could not be pulled. */
  IMAGE_UNAVAILABLE = 'IMAGE_UNAVAILABLE',
  /** A Docker object under one of this instance's names belongs to someone else (another instance, or not Berth). */
  DOCKER_OBJECT_CLASH = 'DOCKER_OBJECT_CLASH',
  /** No node of the cluster has room (memory, CPUs) for what was asked, or none may take it. */
  NO_CAPACITY = 'NO_CAPACITY',
  /** The operation needs BERTH_ENGINE=swarm (a cluster of nodes). */
  NOT_A_CLUSTER = 'NOT_A_CLUSTER',
  NODE_NOT_FOUND = 'NODE_NOT_FOUND',
  /** The node is not ready (down, or unreachable): what was asked needs it up. */
  NODE_NOT_READY = 'NODE_NOT_READY',
  /** The node is ready: what was asked is only for a node that is down (an evacuation from backups). */
  NODE_READY = 'NODE_READY',
  /** What was asked is not (yet) done on this engine (BERTH_ENGINE); the message says what is. */
  NOT_SUPPORTED = 'NOT_SUPPORTED',
  UNAVAILABLE = 'UNAVAILABLE',
  INTERNAL = 'INTERNAL',
}

export class BerthError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'BerthError';
  }
}

/** HTTP status for each code; the switch is exhaustive so a new code cannot be forgotten. */
export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.UNAUTHENTICATED:
      return 401;
    case ErrorCode.FORBIDDEN:
      return 403;
    case ErrorCode.VALIDATION_FAILED:
      return 400;
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return 413;
    case ErrorCode.NOT_FOUND:
    case ErrorCode.TENANT_NOT_FOUND:
    case ErrorCode.API_KEY_NOT_FOUND:
    case ErrorCode.SITE_NOT_FOUND:
    case ErrorCode.JOB_NOT_FOUND:
    case ErrorCode.DOMAIN_NOT_FOUND:
    case ErrorCode.BACKUP_NOT_FOUND:
    case ErrorCode.NODE_NOT_FOUND:
      return 404;
    case ErrorCode.TENANT_SLUG_TAKEN:
    case ErrorCode.SITE_NAME_TAKEN:
    case ErrorCode.DOMAIN_TAKEN:
    case ErrorCode.SITE_DELETED:
    case ErrorCode.IDEMPOTENCY_KEY_REUSED:
    case ErrorCode.JOB_FINISHED:
    case ErrorCode.SITE_BUSY:
    case ErrorCode.DOCKER_OBJECT_CLASH:
    case ErrorCode.TENANT_HAS_SITES:
    case ErrorCode.TENANT_DELETING:
    case ErrorCode.JOB_NOT_CANCELLABLE:
    case ErrorCode.BACKUP_NOT_AVAILABLE:
    case ErrorCode.NO_CAPACITY:
    case ErrorCode.NOT_A_CLUSTER:
    case ErrorCode.NODE_NOT_READY:
    case ErrorCode.NODE_READY:
      return 409;
    case ErrorCode.TENANT_SUSPENDED:
      return 403;
    case ErrorCode.QUOTA_EXCEEDED:
    case ErrorCode.IMAGE_UNAVAILABLE:
      return 422;
    case ErrorCode.RATE_LIMITED:
      return 429;
    case ErrorCode.QUERY_TOO_COMPLEX:
      return 400;
    case ErrorCode.UNAVAILABLE:
      return 503;
    case ErrorCode.INTERNAL:
      return 500;
    case ErrorCode.NOT_SUPPORTED:
      return 501;
    default: {
      const never: never = code;
      return never;
    }
  }
}

export const notFound = (code: ErrorCode, what: string, id: string) => new BerthError(code, `${what} ${id} was not found`);
