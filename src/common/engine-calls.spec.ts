import { countEngineCalls, endpointOf, noteEngineCall, type EngineCalls } from './engine-calls';

describe('endpointOf', () => {
  it.each([
    ['POST', '/v1.41/containers/create?name=berth_x', 'POST /containers/create'],
    ['GET', '/containers/json?all=1&filters=x', 'GET /containers/json'],
    ['GET', '/v1.41/containers/berth_db_acme/json?', 'GET /containers/{id}/json'],
    ['POST', '/containers/abc123/start?', 'POST /containers/{id}/start'],
    ['POST', '/containers/abc123/exec', 'POST /containers/{id}/exec'],
    ['POST', '/exec/e1/start', 'POST /exec/{id}/start'],
    ['GET', '/exec/e1/json', 'GET /exec/{id}/json'],
    ['POST', '/networks/create', 'POST /networks/create'],
    ['GET', '/networks?filters=x', 'GET /networks'],
    ['DELETE', '/networks/n1', 'DELETE /networks/{id}'],
    ['GET', '/volumes/berth_site_v', 'GET /volumes/{id}'],
    ['POST', '/volumes/create', 'POST /volumes/create'],
    ['GET', '/images/berth/mariadb:10.11/json', 'GET /images/{name}/json'],
    ['POST', '/images/create?fromImage=x', 'POST /images/create'],
    ['GET', '/images/json', 'GET /images/json'],
    ['POST', '/services/s1/update?version=3', 'POST /services/{id}/update'],
    ['GET', '/_ping', 'GET /_ping'],
  ])('%s %s is %s', (method, path, endpoint) => {
    expect(endpointOf(method, path)).toBe(endpoint);
  });
});

describe('countEngineCalls', () => {
  it('counts the calls made in its own asynchronous context only', async () => {
    const a: EngineCalls = {};
    const b: EngineCalls = {};
    const call = async (path: string) => {
      await new Promise((r) => setTimeout(r, 5));
      noteEngineCall('GET', path);
    };
    await Promise.all([
      countEngineCalls(a, async () => {
        await call('/containers/x/json');
        await call('/containers/y/json');
      }),
      countEngineCalls(b, () => call('/networks')),
      call('/containers/z/json'), // outside any count
    ]);
    expect(a).toEqual({ 'GET /containers/{id}/json': 2 });
    expect(b).toEqual({ 'GET /networks': 1 });
  });
});
