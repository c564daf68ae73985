import { EcrSimulator } from '../simulators/ecr';
import { findMotoServer, startMoto } from '../harness/moto';
import type { EcrMode } from './options';
import { SANDBOX_CHILD, SANDBOX_CHILD_GRACE_MS } from './processes';

/** ECR for the sandbox: moto's server where it is installed, otherwise the simulator speaking the same protocol. */

export interface SandboxEcr {
  kind: 'moto' | 'simulator';
  endpoint: string;
  /** What to tell the user about it. */
  description: string;
  stop(): Promise<void>;
}

export async function startEcr(mode: EcrMode, host: string, port: number, files: { logFile: string; pidFile: string }): Promise<SandboxEcr> {
  // The sandbox never installs moto: `npm start` should not reach for pip.
  const moto = mode === 'simulator' ? undefined : findMotoServer();
  if (mode === 'moto' && !moto) {
    throw new Error('--ecr moto: moto_server is not installed; run "bash scripts/ensure-moto.sh" or use --ecr simulator');
  }
  if (moto) {
    const server = await startMoto({ server: moto, host, port, name: "moto's ECR server", logFile: files.logFile, child: { ...SANDBOX_CHILD, pidFile: files.pidFile } });
    return { kind: 'moto', endpoint: server.endpoint, description: `moto's server at ${server.endpoint}`, stop: () => server.child.stop(SANDBOX_CHILD_GRACE_MS) };
  }
  const endpoint = `http://${host}:${port}`;
  const simulator = new EcrSimulator({ host, port });
  await simulator.start();
  const why = mode === 'auto' ? ' (moto is not installed: `bash scripts/ensure-moto.sh` installs it)' : '';
  return { kind: 'simulator', endpoint, description: `ECR simulator at ${endpoint}${why}`, stop: () => simulator.close() };
}
