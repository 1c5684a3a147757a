import { DesiredState, SiteStatus } from '../generated/prisma/enums';
import { driftOf, type Observed } from './drift';

const healthy: Observed = { wordpress: { state: 'running', specHash: 'h1' }, dbRunning: true, networkExists: true };
const running = { status: SiteStatus.RUNNING, desiredState: DesiredState.RUNNING };

describe('driftOf', () => {
  it('finds nothing when the engine matches the plan', () => {
    expect(driftOf(running, 'h1', healthy)).toBeUndefined();
    expect(
      driftOf({ status: SiteStatus.STOPPED, desiredState: DesiredState.STOPPED }, 'h1', {
        ...healthy,
        wordpress: { state: 'exited', specHash: 'h1' },
      }),
    ).toBeUndefined();
  });

  it.each([
    ['a removed container', { ...healthy, wordpress: undefined }, /missing/],
    ['a stopped container that should run', { ...healthy, wordpress: { state: 'exited', specHash: 'h1' } }, /should be running/],
    ['changed settings', { ...healthy, wordpress: { state: 'running', specHash: 'other' } }, /differ/],
    ['a stopped database server', { ...healthy, dbRunning: false }, /database server/],
    ['a removed network', { ...healthy, networkExists: false }, /network/],
  ])('finds %s', (_what, seen, reason) => {
    expect(driftOf(running, 'h1', seen as Observed)).toMatch(reason);
  });

  it('finishes sites left in a transitional state without a job', () => {
    expect(driftOf({ status: SiteStatus.PROVISIONING, desiredState: DesiredState.RUNNING }, 'h1', healthy)).toMatch(/PROVISIONING/);
    expect(driftOf({ status: SiteStatus.DELETING, desiredState: DesiredState.ABSENT }, 'h1', healthy)).toMatch(/deletion/);
  });

  it('leaves FAILED and DELETED sites alone', () => {
    expect(
      driftOf({ status: SiteStatus.FAILED, desiredState: DesiredState.RUNNING }, 'h1', { ...healthy, wordpress: undefined }),
    ).toBeUndefined();
    expect(driftOf({ status: SiteStatus.DELETED, desiredState: DesiredState.ABSENT }, 'h1', healthy)).toBeUndefined();
  });
});
