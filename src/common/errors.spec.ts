import { ErrorCode, httpStatusOf } from './errors';

describe('httpStatusOf', () => {
  it('maps every code to a status, 4xx for client errors', () => {
    for (const code of Object.values(ErrorCode)) {
      const status = httpStatusOf(code);
      expect(status).toBeGreaterThanOrEqual(400);
      // Server-side only: a fault, an outage, or a feature this engine lacks (501).
      const server = [ErrorCode.INTERNAL, ErrorCode.UNAVAILABLE, ErrorCode.NOT_SUPPORTED].includes(code);
      expect(status).toBeLessThan(server ? 600 : 500);
    }
    expect(httpStatusOf(ErrorCode.SITE_NOT_FOUND)).toBe(404);
    expect(httpStatusOf(ErrorCode.UNAUTHENTICATED)).toBe(401);
    expect(httpStatusOf(ErrorCode.DOCKER_OBJECT_CLASH)).toBe(409);
  });
});
