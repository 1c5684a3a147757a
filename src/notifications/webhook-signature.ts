import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'berth-signature';
export const TIMESTAMP_HEADER = 'berth-timestamp';

/**
 * `sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>"). Binding the timestamp lets a
 * receiver reject replays older than a few minutes.
 */
export function sign(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function verify(secret: string, timestamp: number, body: string, signature: string): boolean {
  const expected = Buffer.from(sign(secret, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
