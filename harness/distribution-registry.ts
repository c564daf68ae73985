/**
 * The CNCF Distribution registry (`registry serve`), a real OCI registry for the tests: built from source by
 * scripts/ensure-registry.sh into .cache/bin, run on a free loopback port with its storage in a folder of the
 * caller's, with token authentication or as a pull-through cache where asked.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startChild, waitUntilReady } from './child-processes';
import { freePort } from './free-ports';
import { projectRoot, runPathScript } from './project-scripts';

/** The registry executable, built when missing (`DISTRIBUTION_REGISTRY_PATH` names another). */
export function installDistributionRegistry(): Promise<string> {
  if (process.env.DISTRIBUTION_REGISTRY_PATH) return Promise.resolve(process.env.DISTRIBUTION_REGISTRY_PATH);
  return runPathScript('bash', [join(projectRoot(), 'scripts', 'ensure-registry.sh')], { what: 'no Distribution registry', log: 'on-failure' });
}

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

export async function startDistributionRegistry(options: DistributionRegistryOptions): Promise<RunningRegistry> {
  const executable = await installDistributionRegistry();
  const port = await freePort();
  mkdirSync(options.dataDir, { recursive: true });
  const config = join(options.dataDir, 'config.yml');
  writeFileSync(
    config,
    stringify({
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: join(options.dataDir, 'storage') }, delete: { enabled: true } },
      http: { addr: `127.0.0.1:${port}`, secret: 'registry-http-secret-for-tests' },
      ...(options.auth ? { auth: options.auth } : {}),
      ...(options.proxy ? { proxy: options.proxy } : {}),
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const child = startChild('the Distribution registry', executable, ['serve', config], { env: { PATH: process.env.PATH ?? '' } });
  await waitUntilReady(
    child,
    async () => {
      const answer = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000) });
      return answer.status === 200 || answer.status === 401;
    },
    30_000,
  );
  return { url, stop: () => child.stop() };
}
