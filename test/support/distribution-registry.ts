import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './env';

/**
 * The CNCF Distribution registry (`registry serve`), built by scripts/ensure-registry.sh into .cache/bin, on a
 * free loopback port with its storage in a folder of the test's own.
 */
export interface DistributionRegistryOptions {
  dataDir: string;
  /** The registry's `auth` section, e.g. `{ token: { realm, service, issuer, jwks } }`; none is anonymous. */
  auth?: Record<string, unknown>;
  /** The registry's `proxy` section, to run it as a pull-through cache of another registry. */
  proxy?: Record<string, unknown>;
}

export interface RunningRegistry {
  url: string;
  stop(): Promise<void>;
}

const ROOT = path.resolve(__dirname, '..', '..');

export function registryExecutable(): string {
  const file = process.env.DISTRIBUTION_REGISTRY_PATH || path.join(ROOT, '.cache', 'bin', 'registry');
  try {
    accessSync(file, constants.X_OK);
  } catch {
    throw new Error(`no Distribution registry at ${file}: run bash scripts/ensure-registry.sh (it builds one with go install)`);
  }
  return file;
}

export async function startDistributionRegistry(options: DistributionRegistryOptions): Promise<RunningRegistry> {
  const port = await freePort();
  mkdirSync(options.dataDir, { recursive: true });
  const config = path.join(options.dataDir, 'config.yml');
  writeFileSync(
    config,
    stringify({
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: path.join(options.dataDir, 'storage') }, delete: { enabled: true } },
      http: { addr: `127.0.0.1:${port}`, secret: 'test-registry-http-secret' },
      ...(options.auth ? { auth: options.auth } : {}),
      ...(options.proxy ? { proxy: options.proxy } : {}),
    }),
  );
  let output = '';
  const child: ChildProcess = spawn(registryExecutable(), ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the registry exited (${child.exitCode}): ${output.slice(-2000)}`);
    const answer = await fetch(`${url}/v2/`).catch(() => undefined);
    if (answer && (answer.status === 200 || answer.status === 401)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the registry did not answer on ${url} within 30 s: ${output.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
