/**
 * Real processes to kill: a Temporal dev server of its own (SQLite file, so it survives `kill -9`) and deploy
 * workers as child processes (test/support/crash-worker.ts: the production worker plus a test-only crash point),
 * against a stack of simulators in the test process. Every process started here is SIGKILLed by `close()`, and
 * also if the test process exits first.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startStack, type Stack, type StackOptions } from '../../sandbox/stack';
import { SEARCH_ATTRIBUTES } from '../../workflows/definitions';
import { CRASH_POINT_MARKER } from './crash-worker';
import { freePort, waitFor } from './env';
import { workflowBundlePath } from './temporal';

const ROOT = path.resolve(__dirname, '..', '..');
/** The test-only worker entry point with a crash point (crash-worker.ts). */
export const CRASH_WORKER = path.join(__dirname, 'crash-worker.ts');
const NAMESPACE = 'default';

/** Processes still running, killed when the test process exits whatever happened. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGKILL; resolves once the process is gone and its output read (or a second later). */
async function killHard(child: ChildProcess): Promise<void> {
  const closed = new Promise<void>((resolve) => {
    if (child.stdout?.readableEnded !== false && child.stderr?.readableEnded !== false && !isRunning(child)) resolve();
    child.once('close', () => resolve());
    setTimeout(resolve, 1_000).unref();
  });
  if (isRunning(child)) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }
  await closed;
}

/** Collects a child's output line by line (bounded), for markers and for failure messages. */
function collectLines(child: ChildProcess, lines: string[], max = 5000): void {
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream?.on('data', (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts.filter((line) => line.trim() !== ''));
      if (lines.length > max) lines.splice(0, lines.length - max);
    });
  }
}

export function temporalCliPath(): string {
  const out = execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'ensure-temporal-cli.mjs')], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const cli = out.trim().split('\n').pop()?.trim();
  if (!cli) throw new Error('scripts/ensure-temporal-cli.mjs printed no path');
  return cli;
}

export interface DevServer {
  /** 127.0.0.1:port, the same across restarts. */
  readonly address: string;
  readonly dbFile: string;
  readonly pid: number | undefined;
  readonly output: string[];
  readonly running: boolean;
  /** (Re)starts on the same SQLite file and ports; resolves once the frontend answers and our search attributes exist. */
  start(): Promise<void>;
  /** `kill -9`: no shutdown of any kind. */
  kill(): Promise<void>;
}

/**
 * `temporal server start-dev` with its state in `<dir>/temporal.db` and our search attributes. `dynamicConfig` values
 * are JSON, e.g. `{ 'history.defaultWorkflowTaskTimeout': '"3s"' }`.
 */
export async function createDevServer(dir: string, cliPath = temporalCliPath(), dynamicConfig: Record<string, string> = {}): Promise<DevServer> {
  const port = await freePort();
  let uiPort = await freePort();
  const dbFile = path.join(dir, 'temporal.db');
  const address = `127.0.0.1:${port}`;
  const output: string[] = [];
  let child: ChildProcess | undefined;
  const args = () => [
    'server',
    'start-dev',
    '--db-filename',
    dbFile,
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--ui-port',
    String(uiPort),
    '--namespace',
    NAMESPACE,
    '--log-level',
    'warn',
    ...SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
    ...Object.entries(dynamicConfig).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${value}`]),
  ];

  async function ready(): Promise<void> {
    const connection = await Connection.connect({ address, connectTimeout: 1_000 });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: NAMESPACE });
      const missing = SEARCH_ATTRIBUTES.map((k) => k.name).filter((name) => !customAttributes?.[name]);
      if (missing.length > 0) throw new Error(`search attributes ${missing.join(', ')} not registered yet`);
    } finally {
      await connection.close();
    }
  }

  const server: DevServer = {
    address,
    dbFile,
    output,
    get pid() {
      return child?.pid;
    },
    get running() {
      return child !== undefined && isRunning(child);
    },
    async start() {
      for (let attempt = 1; ; attempt++) {
        try {
          return await startOnce();
        } catch (err) {
          // The CLI picks free ports for the server's inner services and we pick the Web UI's: another process may
          // take one between the choice and the bind. Try again with the same gRPC port (its state lives in dbFile).
          const inUse = output.some((line) => line.includes('address already in use'));
          if (!inUse || attempt >= 5) throw err;
          uiPort = await freePort();
        }
      }
    },
    async kill() {
      if (child) await killHard(child);
    },
  };

  async function startOnce(): Promise<void> {
    if (child && isRunning(child)) throw new Error('the dev server is already running');
    const started = spawn(cliPath, args(), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    track(started);
    output.length = 0;
    collectLines(started, output, 500);
    let spawnError: Error | undefined;
    started.once('error', (err) => (spawnError = err));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (spawnError || !isRunning(started)) {
        await killHard(started);
        throw new Error(`temporal server start-dev ${spawnError ? `could not start: ${spawnError.message}` : `exited with ${started.exitCode ?? started.signalCode}`}: ${output.filter((line) => /panic|bind|error/i.test(line)).slice(0, 5).join('\n')}`);
      }
      try {
        await ready();
        return;
      } catch (err) {
        if (Date.now() > deadline) {
          await killHard(started);
          throw new Error(`the Temporal dev server on ${address} did not answer within 30 s: ${(err as Error).message}`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await server.start();
  return server;
}

export interface CrashPoint {
  activityType: string;
  environment?: string;
  occurrence: number;
  attempt: number;
  workflowId: string;
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout and stderr, one entry per line. */
  readonly lines: string[];
  readonly exited: Promise<void>;
  readonly running: boolean;
  /** The `crash-point` lines so far: where the test-only interceptor stopped. */
  crashPoints(): CrashPoint[];
  /** Lets a paused crash point return its result (DEPLOY_TEST_CRASH_MODE=pause). */
  resume(): void;
  /** `kill -9`. */
  kill(): Promise<void>;
  /** SIGTERM (graceful shutdown), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

export interface WorkerOptions {
  /** `<activityType>[@<environment>][#<n>],…`: see crash-worker.ts. */
  crashAfter?: string;
  crashMode?: 'kill' | 'pause';
  /** Extra or overriding environment variables. */
  env?: Record<string, string>;
  /** Wait until the worker polls (default true). */
  waitUntilPolling?: boolean;
}

/** The process environment a worker needs besides the stack's: the AWS SDK settings the jest global setup made (moto). */
export function inheritedEnv(): Record<string, string> {
  const names = ['PATH', 'HOME', 'TMPDIR', 'AWS_ENDPOINT_URL_ECR', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
  return Object.fromEntries(names.flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
}

/** What a worker process needs to serve `taskQueue` for this stack on the Temporal server at `address`. */
export function stackWorkerEnv(
  stack: Stack,
  options: { address: string; namespace?: string; taskQueue: string; chartsWorkdir: string },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ...inheritedEnv(),
    ...stack.env,
    TEMPORAL_ADDRESS: options.address,
    TEMPORAL_NAMESPACE: options.namespace ?? NAMESPACE,
    DEPLOY_TASK_QUEUE: options.taskQueue,
    DEPLOY_WORKFLOW_BUNDLE: workflowBundlePath(),
    // A clone belongs to one worker process at a time.
    CHARTS_WORKDIR: options.chartsWorkdir,
    ...extra,
  };
}

/** The production worker's entry point, for tests that run it as it ships (through tsx). */
export const WORKER_MAIN = path.join(ROOT, 'worker', 'main.ts');

/** Spawns `entry` (TypeScript, through tsx) with exactly `env`. */
export async function spawnWorker(entry: string, env: Record<string, string>, waitUntilPolling = true): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  track(child);
  const lines: string[] = [];
  collectLines(child, lines);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const worker: WorkerProcess = {
    child,
    pid: child.pid!,
    lines,
    exited,
    get running() {
      return isRunning(child);
    },
    crashPoints() {
      return lines.filter((l) => l.startsWith(`${CRASH_POINT_MARKER} `)).map((l) => JSON.parse(l.slice(CRASH_POINT_MARKER.length + 1)) as CrashPoint);
    },
    resume() {
      if (isRunning(child)) child.stdin?.write('resume\n');
    },
    kill: () => killHard(child),
    async stop() {
      if (!isRunning(child)) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  if (waitUntilPolling) {
    try {
      await waitFor(
        () => {
          if (!isRunning(child)) throw new Error(`the worker exited (${child.exitCode ?? child.signalCode})`);
          return lines.some((line) => line.includes('deploy worker polling'));
        },
        { timeoutMs: 60_000, intervalMs: 50, description: 'the worker to poll' },
      );
    } catch (err) {
      await killHard(child);
      throw new Error(`${(err as Error).message}\n${lines.slice(-20).join('\n')}`);
    }
  }
  return worker;
}

export interface CrashHarness {
  stack: Stack;
  server: DevServer;
  dataDir: string;
  /** A client of this harness's server; it rides over server restarts (the SDK retries UNAVAILABLE). */
  client: Client;
  /** Workers started by this harness that may still run. */
  workers: Set<WorkerProcess>;
  /** The worker's environment for a task queue: the stack's, the server's, and a charts clone of its own. */
  workerEnv(taskQueue: string, extra?: Record<string, string>): Record<string, string>;
  startWorker(taskQueue: string, options?: WorkerOptions): Promise<WorkerProcess>;
  close(): Promise<void>;
}

export interface CrashHarnessOptions {
  stack: Omit<StackOptions, 'dataDir'>;
  /** An existing dev server to share (its owner closes it); default: one of this harness's own. */
  server?: DevServer;
  /** The `temporal` CLI; default: what scripts/ensure-temporal-cli.mjs finds. */
  cliPath?: string;
  /** Extra environment of every worker this harness starts. */
  workerEnv?: Record<string, string>;
  /** Dynamic configuration of this harness's own server (see createDevServer). */
  serverDynamicConfig?: Record<string, string>;
}

export async function startCrashHarness(options: CrashHarnessOptions): Promise<CrashHarness> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'deploy-crash-'));
  const workers = new Set<WorkerProcess>();
  let server: DevServer | undefined = options.server;
  let stack: Stack | undefined;
  let client: Client | undefined;
  const ownServer = !options.server;
  const close = async (): Promise<void> => {
    await Promise.all([...workers].map((w) => w.kill()));
    workers.clear();
    await client?.connection.close().catch(() => undefined);
    if (ownServer) await server?.kill();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    server ??= await createDevServer(dataDir, options.cliPath, options.serverDynamicConfig);
    stack = await startStack({ ...options.stack, dataDir });
    client = new Client({ connection: await Connection.connect({ address: server.address }), namespace: NAMESPACE });
    const harnessStack = stack;
    const harnessServer = server;
    const workerEnv = (taskQueue: string, extra: Record<string, string> = {}): Record<string, string> =>
      stackWorkerEnv(
        harnessStack,
        { address: harnessServer.address, taskQueue, chartsWorkdir: path.join(dataDir, `charts-workdir-${taskQueue}`) },
        { ...options.workerEnv, ...extra },
      );
    return {
      stack,
      server,
      dataDir,
      client,
      workers,
      workerEnv,
      async startWorker(taskQueue, workerOptions = {}) {
        const crash: Record<string, string> = workerOptions.crashAfter
          ? { DEPLOY_TEST_CRASH_AFTER: workerOptions.crashAfter, DEPLOY_TEST_CRASH_MODE: workerOptions.crashMode ?? 'kill' }
          : {};
        const worker = await spawnWorker(CRASH_WORKER, workerEnv(taskQueue, { ...crash, ...workerOptions.env }), workerOptions.waitUntilPolling ?? true);
        workers.add(worker);
        void worker.exited.then(() => workers.delete(worker));
        return worker;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
