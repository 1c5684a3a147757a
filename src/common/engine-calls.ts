import { AsyncLocalStorage } from 'node:async_hooks';

/** Docker Engine API calls by endpoint ("POST /containers/create", "GET /containers/{id}/json"). */
export type EngineCalls = Record<string, number>;

const counting = new AsyncLocalStorage<EngineCalls>();

/** Collections whose second path segment names one object (an id or a name), not an action. */
const OBJECTS = /^\/(containers|networks|volumes|exec|services|secrets|nodes|tasks|configs|plugins)\/([^/]+)(\/.*)?$/;
const COLLECTION_ACTIONS = new Set(['json', 'create', 'prune']);

/**
 * The endpoint an Engine API call is made to, with object ids and names replaced by
 * `{id}` (images by `{name}`, which may hold slashes), without the API version and query.
 */
export function endpointOf(method: string, path: string): string {
  const p = path.split('?')[0].replace(/^\/v\d+(\.\d+)?(?=\/)/, '');
  const verb = method.toUpperCase();
  const object = OBJECTS.exec(p);
  if (object && !COLLECTION_ACTIONS.has(object[2])) return `${verb} /${object[1]}/{id}${object[3] ?? ''}`;
  const image = /^\/images\/(.+?)(\/(json|history|push|tag|get))?$/.exec(p);
  if (image && !['json', 'create', 'load', 'search', 'prune', 'get'].includes(image[1])) return `${verb} /images/{name}${image[2] ?? ''}`;
  return `${verb} ${p}`;
}

/** Counts one call, in the count that `countEngineCalls` opened around the caller (if any). */
export function noteEngineCall(method: string, path: string): void {
  const calls = counting.getStore();
  if (!calls) return;
  const key = endpointOf(method, path);
  calls[key] = (calls[key] ?? 0) + 1;
}

/**
 * Runs fn with a count of the Engine API calls made on its behalf (through DockerService,
 * in fn's own asynchronous context): `calls` fills in as fn runs, so a step that fails or
 * times out still says what it asked of the engine.
 */
export function countEngineCalls<T>(calls: EngineCalls, fn: () => T): T {
  return counting.run(calls, fn);
}
