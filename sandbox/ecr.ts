import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { EcrSimulator } from '../simulators/ecr';
import type { EcrMode } from './options';
import { projectRoot, startBackground, waitUntilReady } from './processes';

/** ECR for the sandbox: moto's server where it is installed, otherwise the simulator speaking the same protocol. */

export interface SandboxEcr {
  kind: 'moto' | 'simulator';
  endpoint: string;
  /** What to tell the user about it. */
  description: string;
  stop(): Promise<void>;
}

/** moto's server from `bash scripts/ensure-moto.sh` (.cache/venv), else from PATH; the sandbox never installs it. */
export function findMotoServer(): string | undefined {
  const candidates = [join(projectRoot(), '.cache', 'venv', 'bin', 'moto_server'), ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'moto_server'))];
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export async function startEcr(mode: EcrMode, host: string, port: number, logFile: string): Promise<SandboxEcr> {
  const moto = mode === 'simulator' ? undefined : findMotoServer();
  if (mode === 'moto' && !moto) {
    throw new Error('--ecr moto: moto_server is not installed; run "bash scripts/ensure-moto.sh" or use --ecr simulator');
  }
  const endpoint = `http://${host}:${port}`;
  if (moto) {
    const server = startBackground("moto's ECR server", moto, ['-H', host, '-p', String(port)], logFile);
    await waitUntilReady(
      server,
      async () => {
        const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
        return res.status < 500;
      },
      60_000,
    );
    return { kind: 'moto', endpoint, description: `moto's server at ${endpoint}`, stop: () => server.stop() };
  }
  const simulator = new EcrSimulator({ host, port });
  await simulator.start();
  const why = mode === 'auto' ? ' (moto is not installed: `bash scripts/ensure-moto.sh` installs it)' : '';
  return { kind: 'simulator', endpoint, description: `ECR simulator at ${endpoint}${why}`, stop: () => simulator.close() };
}
