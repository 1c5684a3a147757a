import { claimed, CLOCK_MARGIN_MS, type ClaimFacts } from './orphan-claims';

const t0 = new Date('2026-12-06T12:00:00Z');
const at = (ms: number) => new Date(t0.getTime() + ms).toISOString();
const facts = (over: Partial<ClaimFacts> = {}): ClaimFacts => ({
  liveSites: new Set(['site-1']),
  tenants: new Map([
    ['acme', { id: 'tenant-acme', nodeId: 'node-a', createdAt: t0 }],
    ['old', { id: 'tenant-old', nodeId: null, createdAt: t0 }],
  ]),
  tenantNodes: new Map([['tenant-acme', new Set(['node-a', 'node-moved-from'])]]),
  ...over,
});
const tenantLabels = (slug: string) => ({ 'berth.tenant': slug });

describe('claimed', () => {
  it('a site object by its live site, wherever it is; a deleted site claims nothing', () => {
    expect(
      claimed({ labels: { ...tenantLabels('acme'), 'berth.site-id': 'site-1' }, nodeId: 'node-x', createdAt: at(-1e9) }, facts()),
    ).toBe(true);
    expect(claimed({ labels: { ...tenantLabels('acme'), 'berth.site-id': 'site-gone' } }, facts())).toBe(false);
  });

  it('on one engine (no node), a tenant object by its slug alone', () => {
    expect(claimed({ labels: tenantLabels('acme') }, facts())).toBe(true);
    expect(claimed({ labels: tenantLabels('nobody') }, facts())).toBe(false);
  });

  it("on a node, by the tenant of its slug on the tenant's node and those its moves touched, whenever made", () => {
    expect(claimed({ labels: tenantLabels('acme'), nodeId: 'node-a', createdAt: at(-1e9) }, facts())).toBe(true);
    expect(claimed({ labels: tenantLabels('acme'), nodeId: 'node-moved-from', createdAt: at(-1e9) }, facts())).toBe(true);
  });

  it('elsewhere, only what was made since the tenant was (within the clock margin): older is a deleted namesake’s', () => {
    expect(claimed({ labels: tenantLabels('acme'), nodeId: 'node-x', createdAt: at(5_000) }, facts())).toBe(true);
    expect(claimed({ labels: tenantLabels('acme'), nodeId: 'node-x', createdAt: at(-CLOCK_MARGIN_MS + 1000) }, facts())).toBe(true);
    expect(claimed({ labels: tenantLabels('acme'), nodeId: 'node-x', createdAt: at(-CLOCK_MARGIN_MS - 1000) }, facts())).toBe(false);
    expect(claimed({ labels: tenantLabels('acme'), nodeId: 'node-x', createdAt: at(-86_400_000) }, facts())).toBe(false);
  });

  it('never removes on a guess: an unknown creation time is claimed; a tenant without a node claims by slug anywhere', () => {
    expect(claimed({ labels: tenantLabels('acme'), nodeId: 'node-x' }, facts())).toBe(true);
    expect(claimed({ labels: tenantLabels('acme'), nodeId: 'node-x', createdAt: 'garbage' }, facts())).toBe(true);
    expect(claimed({ labels: tenantLabels('old'), nodeId: 'node-x', createdAt: at(-86_400_000) }, facts())).toBe(true);
  });
});
