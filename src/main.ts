import 'reflect-metadata';
import { ConfigError, loadConfig } from './config/config';
import { startBerth } from './app/bootstrap';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const berth = await startBerth(config);
  if (berth.url) {
    process.stdout.write(
      `Berth (${config.BERTH_ROLE}) listening on ${berth.url}\n  REST docs: ${berth.url}/docs\n  GraphQL:   ${berth.url}/graphql\n`,
    );
  } else {
    process.stdout.write(`Berth (${config.BERTH_ROLE}) started\n`);
  }
  if (berth.generatedAdminKey) {
    process.stdout.write(`  Admin API key (shown once, store it now): ${berth.generatedAdminKey}\n`);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: finishing running jobs and closing connections\n`);
    berth.stop().then(
      () => process.exit(0),
      (e: Error) => {
        process.stderr.write(`shutdown failed: ${e.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e: Error) => {
  process.stderr.write(`Berth failed to start: ${e.message}\n`);
  process.exit(1);
});
