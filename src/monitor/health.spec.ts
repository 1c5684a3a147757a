import { Health } from '../generated/prisma/enums';
import { healthEvent, nextHealth } from './health';

describe('nextHealth', () => {
  it('stays UP through fewer failures than the threshold, then goes DOWN', () => {
    expect(nextHealth(Health.UP, false, 1, 3)).toBe(Health.UP);
    expect(nextHealth(Health.UP, false, 2, 3)).toBe(Health.UP);
    expect(nextHealth(Health.UP, false, 3, 3)).toBe(Health.DOWN);
  });

  it('comes back UP after one success, from DOWN or UNKNOWN', () => {
    expect(nextHealth(Health.DOWN, true, 0, 3)).toBe(Health.UP);
    expect(nextHealth(Health.UNKNOWN, true, 0, 3)).toBe(Health.UP);
  });

  it('leaves UNKNOWN alone until the threshold', () => {
    expect(nextHealth(Health.UNKNOWN, false, 1, 2)).toBe(Health.UNKNOWN);
    expect(nextHealth(Health.UNKNOWN, false, 2, 2)).toBe(Health.DOWN);
  });
});

describe('healthEvent', () => {
  it('reports going down from any state, and coming back only after being down', () => {
    expect(healthEvent(Health.UP, Health.DOWN)).toBe('site.down');
    expect(healthEvent(Health.UNKNOWN, Health.DOWN)).toBe('site.down');
    expect(healthEvent(Health.DOWN, Health.UP)).toBe('site.up');
    expect(healthEvent(Health.UNKNOWN, Health.UP)).toBeUndefined();
    expect(healthEvent(Health.UP, Health.UP)).toBeUndefined();
    expect(healthEvent(Health.DOWN, Health.DOWN)).toBeUndefined();
  });
});
