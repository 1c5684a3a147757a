/** The names Berth gives Docker objects, per instance, tenant and site. */

/** The instance installations ran as before names carried it; its objects keep their names. */
export const DEFAULT_INSTANCE = 'default';

/**
 * Instance `default` keeps the names Berth always used, so an upgrade neither orphans nor
 * recreates anything. Any other instance prefixes them with `berth-<instance>_`: no legacy
 * name starts with `berth-`, and an instance has no `_`, so the prefix ends at the first one
 * and two instances can never compute the same name.
 */
export const namePrefix = (instance: string) => (instance === DEFAULT_INSTANCE ? '' : `berth-${instance}_`);

/**
 * The names among `found` (objects labelled with `instance`) that this version would not give
 * them: objects an earlier version made for a non-default instance, before names carried it.
 */
export const outdatedNames = (instance: string, found: string[]): string[] => found.filter((n) => !n.startsWith(namePrefix(instance)));

export const names = {
  network: (i: string, t: string) => `${namePrefix(i)}berth_${t}`,
  dbContainer: (i: string, t: string) => `${namePrefix(i)}db_${t}`,
  dbVolume: (i: string, t: string) => `${namePrefix(i)}berth_${t}_db`,
  wpContainer: (i: string, t: string, s: string) => `${namePrefix(i)}wp_${t}_${s}`,
  siteVolume: (i: string, t: string, s: string) => `${namePrefix(i)}berth_${t}_${s}_data`,
};
