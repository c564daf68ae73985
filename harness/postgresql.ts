/**
 * A PostgreSQL server of Debian's packages (scripts/ensure-system-packages.sh installs them) in a data folder of its
 * own, on a loopback port, with a password login as in docker-compose.yml: the database of the Temporal server built
 * from source (harness/temporal-server.ts). PostgreSQL refuses to run as root, so under root it runs as the
 * `postgres` user the Debian package creates.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startChild, waitUntilReady, type Child } from './child-processes';

export interface PostgreSQLOptions {
  /**
   * Holds the data folder, the socket and the log; created when missing. Under root the `postgres` user must reach
   * it: a folder of its own right under os.tmpdir(), not inside another mkdtemp folder (those are closed to others).
   */
  dir: string;
  port: number;
  /** The superuser the server is created with, and its password (scram-sha-256 over TCP). */
  user: string;
  password: string;
  readyTimeoutMs?: number;
}

export interface PostgreSQL {
  host: string;
  port: number;
  user: string;
  password: string;
  logFile: string;
  child: Child;
  /** A fast shutdown (SIGINT), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** The folder of initdb and postgres: `pg_config --bindir` when it has them, else the newest /usr/lib/postgresql/N/bin. */
export function postgresBinDir(): string {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'))) return dir;
  } catch {
    // No pg_config (it ships with libpq-dev); look where the server packages put their binaries.
  }
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error('no PostgreSQL server binaries (initdb, postgres): install Debian\'s postgresql package (bash scripts/ensure-system-packages.sh)');
  return path.join(root, newest, 'bin');
}

/** Who runs PostgreSQL: ourselves, or under root the `postgres` user. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const uid = id('-u');
  const gid = id('-g');
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('PostgreSQL refuses to run as root and there is no `postgres` user to run it as (Debian\'s postgresql package creates one)');
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Creates the cluster in `<dir>/data` unless it is there, then starts the server; resolves once it accepts logins. */
export async function startPostgreSQL(options: PostgreSQLOptions): Promise<PostgreSQL> {
  const bin = postgresBinDir();
  const runAs = serverUser();
  const dataDir = path.join(options.dir, 'data');
  const logFile = path.join(options.dir, 'postgresql.log');
  mkdirSync(options.dir, { recursive: true });
  if (runAs) chownSync(options.dir, runAs.uid, runAs.gid);
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    const passwordFile = path.join(options.dir, 'superuser-password');
    writeFileSync(passwordFile, `${options.password}\n`, { mode: 0o600 });
    if (runAs) chownSync(passwordFile, runAs.uid, runAs.gid);
    const initdb = spawnSync(
      path.join(bin, 'initdb'),
      ['-D', dataDir, '-U', options.user, `--pwfile=${passwordFile}`, '--auth-local=scram-sha-256', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-instructions'],
      { encoding: 'utf8', uid: runAs?.uid, gid: runAs?.gid, timeout: 120_000 },
    );
    if (initdb.status !== 0) throw new Error(`initdb failed (${initdb.status ?? initdb.signal}): ${initdb.stderr || initdb.stdout}`);
  }
  const host = '127.0.0.1';
  const child = startChild(
    'PostgreSQL',
    path.join(bin, 'postgres'),
    // The socket in our folder: the system's /var/run/postgresql may not be there or not be ours to write.
    ['-D', dataDir, '-h', host, '-p', String(options.port), '-k', options.dir],
    { logFile, uid: runAs?.uid, gid: runAs?.gid, stopSignal: 'SIGINT' },
  );
  await waitUntilReady(
    child,
    async () => spawnSync(path.join(bin, 'pg_isready'), ['-h', host, '-p', String(options.port), '-U', options.user, '-d', 'postgres'], { timeout: 5000 }).status === 0,
    options.readyTimeoutMs ?? 60_000,
  );
  return { host, port: options.port, user: options.user, password: options.password, logFile, child, stop: (graceMs = 10_000) => child.stop(graceMs) };
}
