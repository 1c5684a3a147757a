import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The shell scripts a new user runs first, run for real with stand-ins for what they start.
const root = join(__dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'berth-scripts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A directory of commands that only record that they were called (and fail). */
function recorderBin(names: string[]): { bin: string; calls: () => string[] } {
  const bin = mkdtempSync(join(tmp, 'bin-'));
  const log = join(bin, 'calls.log');
  for (const name of names) {
    writeFileSync(join(bin, name), `#!/bin/sh\necho "${name} $*" >>"${log}"\nexit 1\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return { bin, calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) };
}

/** The environment without the variables a test sets itself. */
function envWithout(...names: string[]): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const n of names) delete env[n];
  return env;
}

describe('scripts/services.sh', () => {
  // Quotes, spaces and shell syntax that a single-quoted eval line would break or run.
  const given = {
    DATABASE_URL: `postgresql://berth:it's a "pass" $(touch pwned) \`touch pwned\`@127.0.0.1:5432/db name`,
    REDIS_URL: "redis://:o'clock $HOME@127.0.0.1:6379/0",
    DOCKER_HOST: "unix:///run/it's here/docker.sock",
  };

  it('uses variables already set as given, installs nothing, and prints export lines that eval gives back exactly', () => {
    const cwd = mkdtempSync(join(tmp, 'services-'));
    const installers = recorderBin([
      'apt-get',
      'dpkg-query',
      'sudo',
      'runuser',
      'docker',
      'dockerd',
      'pg_ctlcluster',
      'pg_createcluster',
      'pg_isready',
      'psql',
      'redis-server',
      'redis-cli',
      'pgrep',
      'ip',
    ]);
    const run = spawnSync('bash', [join(root, 'scripts/services.sh')], {
      cwd,
      encoding: 'utf8',
      env: {
        ...envWithout('DATABASE_URL', 'REDIS_URL', 'DOCKER_HOST'),
        ...given,
        BERTH_EDGE: 'none',
        PATH: `${installers.bin}:${process.env.PATH}`,
      },
    });
    expect(run.stderr).toMatch(/postgres: using DATABASE_URL from the environment/);
    expect(run.stderr).toMatch(/redis: using REDIS_URL from the environment/);
    expect(run.stderr).toMatch(/docker: using DOCKER_HOST from the environment/);
    expect(run.stderr).toMatch(/edge: BERTH_EDGE=none, not started/);
    expect(run.status).toBe(0);
    expect(installers.calls()).toEqual([]);
    expect(run.stdout.trim().split('\n')).toHaveLength(3);

    // As scripts/test.sh, up.sh and bench/run.sh use it: eval in bash, in a shell without the variables.
    const evaluated = execFileSync('bash', ['-c', 'eval "$(cat)"; printf "%s\\0" "$DATABASE_URL" "$REDIS_URL" "$DOCKER_HOST"'], {
      cwd,
      input: run.stdout,
      encoding: 'utf8',
      env: envWithout('DATABASE_URL', 'REDIS_URL', 'DOCKER_HOST'),
    });
    expect(evaluated.split('\0').slice(0, 3)).toEqual([given.DATABASE_URL, given.REDIS_URL, given.DOCKER_HOST]);
    expect(existsSync(join(cwd, 'pwned'))).toBe(false);
  });
});

describe('scripts/up.sh keys (the environment wins over .berth/env)', () => {
  const KEY_RE = /^Admin API key: (\S+)/m;

  /**
   * A copy of the project's scripts where everything but the key handling is a stand-in:
   * prepare.sh and services.sh do nothing, the images exist, and `node dist/main.js` prints
   * the keys Berth would have started with.
   */
  function project(): string {
    const dir = mkdtempSync(join(tmp, 'up-'));
    mkdirSync(join(dir, 'scripts'));
    for (const f of ['up.sh', 'berth-env.sh'])
      if (existsSync(join(root, 'scripts', f))) copyFileSync(join(root, 'scripts', f), join(dir, 'scripts', f));
    writeFileSync(join(dir, 'scripts/prepare.sh'), 'exit 0\n');
    writeFileSync(join(dir, 'scripts/services.sh'), 'exit 0\n');
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin/docker'), '#!/bin/sh\nexit 0\n');
    writeFileSync(
      join(dir, 'bin/node'),
      `#!/bin/sh\nif [ "$1" = dist/main.js ]; then echo "berth started with admin=$BERTH_ADMIN_KEY encryption=$BERTH_ENCRYPTION_KEY extra=$BERTH_EXTRA"; exit 0; fi\nexec "${process.execPath}" "$@"\n`,
    );
    chmodSync(join(dir, 'bin/docker'), 0o755);
    chmodSync(join(dir, 'bin/node'), 0o755);
    return dir;
  }

  function up(dir: string, env: Record<string, string> = {}) {
    const run = spawnSync('bash', [join(dir, 'scripts/up.sh')], {
      encoding: 'utf8',
      env: {
        ...envWithout('BERTH_ADMIN_KEY', 'BERTH_ENCRYPTION_KEY', 'BERTH_EXTRA'),
        PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
        ...env,
      },
    });
    if (run.status !== 0) throw new Error(`up.sh exited with ${run.status}: ${run.stderr}`);
    const started = /berth started with admin=(\S*) encryption=(\S*) extra=(\S*)/.exec(run.stdout);
    if (!started) throw new Error(`up.sh did not start Berth: ${run.stdout} ${run.stderr}`);
    // What up.sh itself wrote, without the stand-in Berth's line.
    const said = run.stdout.replace(started[0], '') + run.stderr;
    return { said, admin: started[1], encryption: started[2], extra: started[3], printed: KEY_RE.exec(run.stdout)?.[1] };
  }
  const envFile = (dir: string) => readFileSync(join(dir, '.berth/env'), 'utf8');

  it('generates both keys on the first start, prints the admin key that once, and reuses them after', () => {
    const dir = project();
    const first = up(dir);
    expect(first.admin).toMatch(/^berth_[A-Za-z0-9_-]{40,}$/);
    expect(Buffer.from(first.encryption, 'base64')).toHaveLength(32);
    expect(first.printed).toBe(first.admin);
    expect(envFile(dir)).toContain(`BERTH_ADMIN_KEY=${first.admin}\n`);
    expect(envFile(dir)).toContain(`BERTH_ENCRYPTION_KEY=${first.encryption}\n`);
    expect(statSync(join(dir, '.berth/env')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, '.berth')).mode & 0o777).toBe(0o700);

    const second = up(dir);
    expect([second.admin, second.encryption]).toEqual([first.admin, first.encryption]);
    expect(second.printed).toBeUndefined();
    expect(first.said).toContain(first.admin);
    expect(second.said).not.toContain(first.admin);
  });

  it('keeps keys the operator set over the ones in .berth/env, and does not print them', () => {
    const dir = project();
    const generated = up(dir);
    const before = envFile(dir);
    const operator = {
      BERTH_ADMIN_KEY: 'berth_operator-admin-key-0123456789abcdefgh',
      BERTH_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('base64'),
    };
    const run = up(dir, operator);
    expect([run.admin, run.encryption]).toEqual([operator.BERTH_ADMIN_KEY, operator.BERTH_ENCRYPTION_KEY]);
    expect(run.printed).toBeUndefined();
    expect(run.said).not.toContain(operator.BERTH_ADMIN_KEY);
    expect(run.said).not.toContain(generated.admin);
    expect(envFile(dir)).toBe(before);
    // Positive control: without them, .berth/env's keys are back.
    expect(up(dir).admin).toBe(generated.admin);
  });

  it('fills in only what is unset, and generates only the key found nowhere', () => {
    const dir = project();
    const encryption = Buffer.alloc(32, 3).toString('base64');
    const run = up(dir, { BERTH_ENCRYPTION_KEY: encryption });
    expect(run.encryption).toBe(encryption);
    expect(run.printed).toBe(run.admin);
    expect(envFile(dir)).toBe(`BERTH_ADMIN_KEY=${run.admin}\n`);

    writeFileSync(join(dir, '.berth/env'), `${envFile(dir)}# added by the operator\nexport BERTH_EXTRA='from-file'`);
    expect(up(dir, { BERTH_ENCRYPTION_KEY: encryption }).extra).toBe('from-file');
    expect(up(dir, { BERTH_ENCRYPTION_KEY: encryption, BERTH_EXTRA: 'from-env' }).extra).toBe('from-env');
    // The operator stops setting the encryption key: one is generated and kept, after the file's last line.
    const later = up(dir);
    expect(later.encryption).not.toBe(encryption);
    expect(later.printed).toBeUndefined();
    expect(envFile(dir)).toBe(
      `BERTH_ADMIN_KEY=${run.admin}\n# added by the operator\nexport BERTH_EXTRA='from-file'\nBERTH_ENCRYPTION_KEY=${later.encryption}\n`,
    );
  });
});
