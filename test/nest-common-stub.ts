/**
 * What tests that load a service class directly need of @nestjs/common (an ES module Jest
 * does not load): its decorators as no-ops and a quiet Logger.
 * `jest.mock('@nestjs/common', () => jest.requireActual('./nest-common-stub'));`
 */
export const Injectable = () => () => undefined;
export const Inject = () => () => undefined;
export class Logger {
  log(): void {}
  warn(): void {}
}
