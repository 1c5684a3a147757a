import { Health } from '../generated/prisma/enums';

/**
 * The health a probe result leads to: DOWN only after `threshold` failures in a row (one
 * slow answer is not an outage), UP again after one success; otherwise unchanged.
 */
export function nextHealth(current: Health, ok: boolean, failuresInARow: number, threshold: number): Health {
  if (ok) return Health.UP;
  return failuresInARow >= threshold ? Health.DOWN : current;
}

/** The event a change of health is, if any: a first UP is not news, a recovery is. */
export function healthEvent(from: Health, to: Health): 'site.down' | 'site.up' | undefined {
  if (from === to) return undefined;
  if (to === Health.DOWN) return 'site.down';
  if (to === Health.UP && from === Health.DOWN) return 'site.up';
  return undefined;
}
