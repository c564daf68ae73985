/**
 * moto's server, which speaks ECR's API for the tests, the bench and the sandbox, and the AWS SDK settings that
 * point the adapters at it (or at the ECR simulator, which speaks the same protocol).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { startChild, waitUntilReady, type Child, type ChildOptions } from './child-processes';
import { projectRoot, runPathScript } from './project-scripts';

const MOTO_SERVER = 'moto_server';

/** moto's server at its pinned version, installed into .cache/venv by scripts/ensure-moto.sh when missing. */
export function installMoto(options: { log?: 'show' | 'on-failure' } = {}): Promise<string> {
  return runPathScript('bash', [join(projectRoot(), 'scripts', 'ensure-moto.sh')], { what: "moto's server could not be installed", log: options.log ?? 'on-failure' });
}

/** moto's server as installed earlier (.cache/venv), else from PATH, without installing anything. */
export function findMotoServer(): string | undefined {
  const dirs = [join(projectRoot(), '.cache', 'venv', 'bin'), ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  return dirs
    .map((dir) => join(dir, MOTO_SERVER))
    .find((path) => {
      try {
        accessSync(path, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

export interface MotoOptions {
  server: string;
  host?: string;
  port: number;
  logFile: string;
  name?: string;
  child?: Omit<ChildOptions, 'logFile'>;
  readyTimeoutMs?: number;
}

export interface Moto {
  endpoint: string;
  child: Child;
  stop(): Promise<void>;
}

/** Starts moto's server and resolves once it answers HTTP. */
export async function startMoto(options: MotoOptions): Promise<Moto> {
  const host = options.host ?? '127.0.0.1';
  const endpoint = `http://${host}:${options.port}`;
  const child = startChild(options.name ?? "moto's server", options.server, ['-H', host, '-p', String(options.port)], { ...options.child, logFile: options.logFile });
  await waitUntilReady(
    child,
    async () => {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
      return res.status < 500;
    },
    options.readyTimeoutMs ?? 60_000,
  );
  return { endpoint, child, stop: () => child.stop() };
}

/**
 * Points this process's AWS SDK clients (and the workers it starts, through their environment) at a local ECR
 * endpoint, with credentials it accepts and none of a developer's own profile.
 */
export function useLocalEcr(endpoint: string, accessKey = 'testing'): void {
  Object.assign(process.env, { AWS_ENDPOINT_URL_ECR: endpoint, AWS_REGION: LOCAL_AWS_REGION, AWS_ACCESS_KEY_ID: accessKey, AWS_SECRET_ACCESS_KEY: accessKey });
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
}

export const LOCAL_AWS_REGION = 'eu-west-2';
