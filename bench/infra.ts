/**
 * What the bench runs on: child processes it always stops, the compiled project and its workflow bundles,
 * the Temporal dev server (the Go-built CLI) and an ECR endpoint. Everything listens on 127.0.0.1.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { BatchGetImageCommand, ECRClient } from '@aws-sdk/client-ecr';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { freePort } from '../sandbox/ports';
import { ensureRepository, pushSyntheticImage } from '../simulators/ecr-images';
import { EcrSimulator } from '../simulators/ecr';
import { SEARCH_ATTRIBUTES } from '../workflows/definitions';
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
// Child processes: each in its own process group, stopped by pid; whatever happens, none outlives the bench.

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly process: ChildProcess;
  /** Why it ended, once it has. */
  readonly exited: string | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  logTail(lines?: number): string;
}

const children = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

process.once('exit', () => {
  for (const child of children) killGroup(child, 'SIGKILL');
});

export function startChild(
  name: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; ipc?: boolean; logName?: string } = {},
): Child {
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `${options.logName ?? name.replace(/[^A-Za-z0-9_.-]+/g, '-')}.log`);
  const log = openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: ROOT,
      env: options.env ?? process.env,
      detached: true,
      stdio: options.ipc ? ['ignore', log, log, 'ipc'] : ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  children.add(child);
  let exited: string | undefined;
  const done = new Promise<void>((resolveDone) => {
    child.once('error', (err) => {
      exited = `could not be started: ${err.message}`;
      children.delete(child);
      resolveDone();
    });
    child.once('exit', (code, signal) => {
      exited = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      children.delete(child);
      resolveDone();
    });
  });
  return {
    name,
    get pid() {
      return child.pid ?? -1;
    },
    logFile,
    process: child,
    get exited() {
      return exited;
    },
    async stop(graceMs = 10_000) {
      if (exited !== undefined) return;
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
      await done;
      clearTimeout(timer);
    },
    logTail(lines = 30) {
      try {
        return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
  };
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolveStop) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolveStop();
          const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 10_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolveStop();
          });
          killGroup(child, 'SIGTERM');
        }),
    ),
  );
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
  child: Child;
}

function runPathScript(command: string, args: string[], what: string): string {
  try {
    const out = execFileSync(command, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const path = out.trim().split('\n').pop()?.trim();
    if (!path) throw new Error('it printed no path');
    return path;
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
}

export async function startTemporal(): Promise<Temporal> {
  const cli = runPathScript(process.execPath, [join(ROOT, 'scripts', 'ensure-temporal-cli.mjs')], 'no temporal CLI');
  const cliVersion = execFileSync(cli, ['--version'], { encoding: 'utf8' }).trim();
  const [port, httpPort, metricsPort] = [await freePort(HOST), await freePort(HOST), await freePort(HOST)];
  const namespace = 'default';
  const args = [
    'server',
    'start-dev',
    '--headless',
    '--ip',
    HOST,
    '--port',
    String(port),
    '--http-port',
    String(httpPort),
    '--metrics-port',
    String(metricsPort),
    '--namespace',
    namespace,
    '--log-level',
    'error',
    ...SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
    ...(process.env.BENCH_TEMPORAL_ARGS ?? '').split(' ').filter(Boolean),
  ];
  const child = startChild('temporal dev server', cli, args, { logName: 'temporal' });
  const address = `${HOST}:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exited) throw new Error(`the Temporal dev server ${child.exited}:\n${child.logTail()}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return { address, namespace, cliVersion, child };
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        await child.stop(2000);
        throw new Error(`the Temporal dev server did not answer within 120 s: ${(err as Error).message}\n${child.logTail()}`);
      }
    }
    await sleep(250);
  }
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

const AWS_ENV = { AWS_REGION: 'eu-west-2', AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };

async function ecrLatency(endpoint: string): Promise<number> {
  const client = new ECRClient({ endpoint, region: AWS_ENV.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
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

async function startMoto(): Promise<{ endpoint: string; stop(): Promise<void> } | string> {
  let server: string;
  try {
    server = runPathScript('bash', [join(ROOT, 'scripts', 'ensure-moto.sh')], 'moto could not be installed');
  } catch (err) {
    return (err as Error).message;
  }
  const port = await freePort(HOST);
  const endpoint = `http://${HOST}:${port}`;
  const child = startChild("moto's server", server, ['-H', HOST, '-p', String(port)], { logName: 'moto' });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exited) return `moto's server ${child.exited}`;
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
      if (res.status < 500) return { endpoint, stop: () => child.stop() };
    } catch {
      // Not yet.
    }
    if (Date.now() > deadline) {
      await child.stop(2000);
      return "moto's server did not answer within 60 s";
    }
    await sleep(200);
  }
}

export async function startEcr(): Promise<Ecr> {
  Object.assign(process.env, AWS_ENV);
  const simulator = new EcrSimulator({ host: HOST, port: await freePort(HOST) });
  await simulator.start();
  const simulatorEndpoint = simulator.url.replace(/\/$/, '');
  const latencies: Ecr['latencies'] = { simulator: await ecrLatency(simulatorEndpoint) };
  const moto = await startMoto();
  if (typeof moto === 'string') {
    process.env.AWS_ENDPOINT_URL_ECR = simulatorEndpoint;
    return { kind: 'simulator', endpoint: simulatorEndpoint, latencies, why: `moto unavailable (${moto})`, stop: () => simulator.close() };
  }
  latencies.moto = await ecrLatency(moto.endpoint);
  const useSimulator = latencies.simulator! <= latencies.moto;
  const why = `BatchGetImage median: simulator ${latencies.simulator!.toFixed(1)} ms, moto ${latencies.moto.toFixed(1)} ms`;
  if (useSimulator) {
    await moto.stop();
    process.env.AWS_ENDPOINT_URL_ECR = simulatorEndpoint;
    return { kind: 'simulator', endpoint: simulatorEndpoint, latencies, why, stop: () => simulator.close() };
  }
  await simulator.close();
  process.env.AWS_ENDPOINT_URL_ECR = moto.endpoint;
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
