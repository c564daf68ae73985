/**
 * What the bench runs on: child processes it always stops, the compiled project and its workflow bundles,
 * the Temporal dev server (the Go-built CLI) and an ECR endpoint. Everything listens on 127.0.0.1.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { BatchGetImageCommand, ECRClient } from '@aws-sdk/client-ecr';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startChild as startHarnessChild, stopAllChildren, type Child as HarnessChild } from '../harness/child-processes';
import { startDevServer } from '../harness/dev-server';
import { freePort } from '../harness/free-ports';
import { installMoto, LOCAL_AWS_REGION, startMoto, useLocalEcr, type Moto } from '../harness/moto';
import { findTemporalCli } from '../harness/temporal-cli';
import { ensureRepository, pushSyntheticImage } from '../simulators/ecr-images';
import { EcrSimulator } from '../simulators/ecr';
import { median } from './stats';
import type { WorkerMessage } from './worker';

const run = promisify(execFile);

export const HOST = '127.0.0.1';
export const ROOT = resolve(__dirname, '..');
/** Scratch space of the bench (inside the project, so compiled code finds node_modules); .cache is not committed. */
export const WORK_DIR = join(ROOT, '.cache', 'bench');
export const BUILD_DIR = join(WORK_DIR, 'build');
export const LOG_DIR = join(WORK_DIR, 'logs');
export const PROFILE_DIR = join(WORK_DIR, 'profiles');

const started = Date.now();

export function progress(message: string): void {
  const elapsed = Math.round((Date.now() - started) / 1000);
  process.stderr.write(`[bench +${Math.floor(elapsed / 60)}m${String(elapsed % 60).padStart(2, '0')}s] ${message}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

// ---------------------------------------------------------------------------------------------------------------
// Child processes: each in its own process group, its output in .cache/bench/logs; none outlives the bench.

export interface Child extends HarnessChild {
  readonly logFile: string;
}

export { stopAllChildren };

const BENCH_CHILD = { cwd: ROOT, ownProcessGroup: true, freshLog: true } as const;

export function startChild(
  name: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; ipc?: boolean; logName?: string } = {},
): Child {
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `${options.logName ?? name.replace(/[^A-Za-z0-9_.-]+/g, '-')}.log`);
  return startHarnessChild(name, command, args, { ...BENCH_CHILD, env: options.env, ipc: options.ipc, logFile }) as Child;
}

/** Resident memory of a process, from /proc/<pid>/status: current (VmRSS) and peak (VmHWM), in bytes. */
export function residentMemory(pid: number): { rss: number; peak: number } | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

// ---------------------------------------------------------------------------------------------------------------
// The project, compiled as `npm run build` compiles it, and its workflow bundles.

export interface Build {
  /** node <file> runs the production worker. */
  workerMain: string;
  /** node <file> runs the bench worker. */
  benchWorker: string;
  /** The product's workflows, bundled as `npm run build` bundles them. */
  productBundle: string;
  /** The product's workflows plus the baseline (bench/workflows.ts). */
  benchBundle: string;
}

export async function buildProject(reuse = false): Promise<Build> {
  const productBundle = join(WORK_DIR, 'bundles', 'workflow-bundle.js');
  const benchBundle = join(WORK_DIR, 'bundles', 'bench-workflow-bundle.js');
  const build: Build = {
    workerMain: join(BUILD_DIR, 'worker', 'main.js'),
    benchWorker: join(BUILD_DIR, 'bench', 'worker.js'),
    productBundle,
    benchBundle,
  };
  if (reuse && Object.values(build).every((file) => existsSync(file))) {
    progress('reusing the compiled project and bundles of the previous run (--reuse-build)');
    return build;
  }
  rmSync(BUILD_DIR, { recursive: true, force: true });
  progress('compiling the project (tsc -p tsconfig.build.json, emit only)');
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    await run(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', BUILD_DIR, '--noCheck', '--sourceMap', 'false'], { cwd: ROOT, maxBuffer: 16 << 20 });
  } catch (err) {
    const out = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`tsc failed: ${(out.stdout || out.stderr || out.message).trim()}`);
  }
  mkdirSync(join(WORK_DIR, 'bundles'), { recursive: true });
  progress('bundling the workflow code (the same bundle `npm run build` writes)');
  await run(process.execPath, [join(BUILD_DIR, 'worker', 'bundle-workflows.js'), productBundle], { cwd: ROOT });
  progress('bundling the bench workflow code (the product workflows plus the baseline)');
  const { code } = await bundleWorkflowCode({
    workflowsPath: join(BUILD_DIR, 'bench', 'workflows.js'),
    workflowInterceptorModules: [join(BUILD_DIR, 'workflows', 'metrics-interceptors.js')],
    logger: quietLogger,
  });
  writeFileSync(benchBundle, code);
  return build;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => progress(`bundler: ${message}`),
  error: (message: string) => progress(`bundler: ${message}`),
};

// ---------------------------------------------------------------------------------------------------------------
// Temporal dev server.

export interface Temporal {
  address: string;
  namespace: string;
  cliVersion: string;
  child: HarnessChild;
}

export async function startTemporal(): Promise<Temporal> {
  const cli = await findTemporalCli({ log: 'show' });
  const cliVersion = execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
  mkdirSync(LOG_DIR, { recursive: true });
  const server = await startDevServer({
    cliPath: cli,
    host: HOST,
    port: await freePort(HOST),
    httpPort: await freePort(HOST),
    metricsPort: await freePort(HOST),
    logFile: join(LOG_DIR, 'temporal.log'),
    extraArgs: (process.env.BENCH_TEMPORAL_ARGS ?? '').split(' ').filter(Boolean),
    child: BENCH_CHILD,
  });
  return { address: server.address, namespace: server.namespace, cliVersion, child: server.child };
}

export async function connectClient(temporal: Temporal): Promise<Client> {
  const connection = await Connection.connect({ address: temporal.address });
  return new Client({ connection, namespace: temporal.namespace });
}

// ---------------------------------------------------------------------------------------------------------------
// ECR: moto's server (what the tests use) or the sandbox's ECR simulator, whichever answers faster here.

export interface Ecr {
  kind: 'moto' | 'simulator';
  endpoint: string;
  /** Median latency of a BatchGetImage (what `imageExists` and `tagImage` call) against each candidate. */
  latencies: Partial<Record<'moto' | 'simulator', number>>;
  why: string;
  stop(): Promise<void>;
}

async function ecrLatency(endpoint: string): Promise<number> {
  const client = new ECRClient({ endpoint, region: LOCAL_AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  try {
    await ensureRepository(client, 'bench/probe');
    await pushSyntheticImage(client, 'bench/probe', 'probe');
    const samples: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      await client.send(new BatchGetImageCommand({ repositoryName: 'bench/probe', imageIds: [{ imageTag: 'probe' }] }));
      if (i >= 5) samples.push(performance.now() - t0);
    }
    return median(samples);
  } finally {
    client.destroy();
  }
}

async function startMotoIfInstalled(): Promise<Moto | string> {
  try {
    const server = await installMoto({ log: 'show' });
    return await startMoto({ server, host: HOST, port: await freePort(HOST), logFile: join(LOG_DIR, 'moto.log'), child: BENCH_CHILD });
  } catch (err) {
    return (err as Error).message;
  }
}

export async function startEcr(): Promise<Ecr> {
  const simulator = new EcrSimulator({ host: HOST, port: await freePort(HOST) });
  await simulator.start();
  const simulatorEndpoint = simulator.url.replace(/\/$/, '');
  const latencies: Ecr['latencies'] = { simulator: await ecrLatency(simulatorEndpoint) };
  const moto = await startMotoIfInstalled();
  if (typeof moto === 'string') {
    useLocalEcr(simulatorEndpoint);
    return { kind: 'simulator', endpoint: simulatorEndpoint, latencies, why: `moto unavailable (${moto})`, stop: () => simulator.close() };
  }
  latencies.moto = await ecrLatency(moto.endpoint);
  const useSimulator = latencies.simulator! <= latencies.moto;
  const why = `BatchGetImage median: simulator ${latencies.simulator!.toFixed(1)} ms, moto ${latencies.moto.toFixed(1)} ms`;
  if (useSimulator) {
    await moto.stop();
    useLocalEcr(simulatorEndpoint);
    return { kind: 'simulator', endpoint: simulatorEndpoint, latencies, why, stop: () => simulator.close() };
  }
  await simulator.close();
  useLocalEcr(moto.endpoint);
  return { kind: 'moto', endpoint: moto.endpoint, latencies, why, stop: () => moto.stop() };
}

export type { WorkerMessage };

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds a process has used (user + system), with those of its children that have ended (git, for one). */
export function cpuSeconds(pid: number, part: 'all' | 'own' | 'children' = 'all'): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at state, field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
    const own = utime! + stime!;
    const children = cutime! + cstime!;
    return (part === 'own' ? own : part === 'children' ? children : own + children) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds used by the given processes while `work` ran. */
export async function cpuDuring<T>(pids: Record<string, number>, work: () => Promise<T>): Promise<{ result: T; cpu: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
  const result = await work();
  const cpu = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid) - before[name]!]));
  return { result, cpu };
}
