/**
 * Real processes to kill: a Temporal dev server of its own (SQLite file, so it survives `kill -9`) and deploy
 * workers as child processes (test/support/crash-worker.ts: the production worker plus a test-only crash point),
 * against a stack of simulators in the test process. Every process started here is SIGKILLed by `close()`, and
 * also if the test process exits first.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startChild, type Child } from '../../harness/child-processes';
import { startDevServer, type DevServer as HarnessDevServer } from '../../harness/dev-server';
import { freePort } from '../../harness/free-ports';
import { findTemporalCli } from '../../harness/temporal-cli';
import { startStack, type Stack, type StackOptions } from '../../sandbox/stack';
import { CRASH_POINT_MARKER, STEP_DONE_MARKER, type StepDone } from './crash-worker';
import { waitFor } from './env';
import { workflowBundlePath } from './temporal';

const ROOT = path.resolve(__dirname, '..', '..');
/** The test-only worker entry point with a crash point (crash-worker.ts). */
export const CRASH_WORKER = path.join(__dirname, 'crash-worker.ts');
const NAMESPACE = 'default';

export interface DevServer {
  /** 127.0.0.1:port, the same across restarts. */
  readonly address: string;
  readonly dbFile: string;
  readonly logFile: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** (Re)starts on the same SQLite file and ports; resolves once the frontend answers and our search attributes exist. */
  start(): Promise<void>;
  /** `kill -9`: no shutdown of any kind. */
  kill(): Promise<void>;
}

/**
 * `temporal server start-dev` with its state in `<dir>/temporal.db`, its log in `<dir>/temporal.log`, and our search
 * attributes. `dynamicConfig` values are JSON, e.g. `{ 'history.defaultWorkflowTaskTimeout': '"3s"' }`.
 */
export async function createDevServer(dir: string, cliPath?: string, dynamicConfig: Record<string, string> = {}): Promise<DevServer> {
  const cli = cliPath ?? (await findTemporalCli());
  const port = await freePort();
  let uiPort = await freePort();
  const dbFile = path.join(dir, 'temporal.db');
  const logFile = path.join(dir, 'temporal.log');
  let current: HarnessDevServer | undefined;
  const startOnce = async () => {
    if (current?.child.running) throw new Error('the dev server is already running');
    current = undefined;
    current = await startDevServer({ cliPath: cli, port, uiPort, dbFile, logFile, logLevel: 'warn', dynamicConfig, readyTimeoutMs: 30_000, child: { cwd: dir, freshLog: true } });
  };
  const server: DevServer = {
    address: `127.0.0.1:${port}`,
    dbFile,
    logFile,
    get pid() {
      return current?.child.pid;
    },
    get running() {
      return current?.child.running ?? false;
    },
    async start() {
      for (let attempt = 1; ; attempt++) {
        try {
          return await startOnce();
        } catch (err) {
          // The CLI picks free ports for the server's inner services and we pick the Web UI's: another process may
          // take one between the choice and the bind. Try again with the same gRPC port (its state lives in dbFile).
          const inUse = readFileSync(logFile, 'utf8').includes('address already in use');
          if (!inUse || attempt >= 5) throw err;
          uiPort = await freePort();
        }
      }
    },
    async kill() {
      await current?.kill();
    },
  };
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
  readonly child: Child['process'];
  readonly pid: number;
  /** stdout and stderr, one entry per line. */
  readonly lines: string[];
  readonly exited: Promise<void>;
  readonly running: boolean;
  /** The `crash-point` lines so far: where the test-only interceptor stopped. */
  crashPoints(): CrashPoint[];
  /** The `step-done` lines so far: every step this process completed. */
  stepsDone(): StepDone[];
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
  const child = startChild('the worker', process.execPath, ['--import', 'tsx', entry], { cwd: ROOT, env, stdin: true });
  const { lines } = child;
  const worker: WorkerProcess = {
    child: child.process,
    pid: child.pid,
    lines,
    exited: child.ended,
    get running() {
      return child.running;
    },
    crashPoints() {
      return lines.filter((l) => l.startsWith(`${CRASH_POINT_MARKER} `)).map((l) => JSON.parse(l.slice(CRASH_POINT_MARKER.length + 1)) as CrashPoint);
    },
    stepsDone() {
      return lines.filter((l) => l.startsWith(`${STEP_DONE_MARKER} `)).map((l) => JSON.parse(l.slice(STEP_DONE_MARKER.length + 1)) as StepDone);
    },
    resume() {
      if (child.running) child.process.stdin?.write('resume\n');
    },
    kill: () => child.kill(),
    stop: () => child.stop(10_000),
  };
  if (waitUntilPolling) {
    try {
      await waitFor(
        () => {
          if (!child.running) throw new Error(`the worker ${child.exited ?? 'ended'}`);
          return lines.some((line) => line.includes('deploy worker polling'));
        },
        { timeoutMs: 60_000, intervalMs: 50, description: 'the worker to poll' },
      );
    } catch (err) {
      await child.kill();
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
  /** The `temporal` CLI; default: what harness/temporal-cli.ts finds. */
  cliPath?: string;
  /** Extra environment of every worker this harness starts. */
  workerEnv?: Record<string, string>;
  /** Dynamic configuration of this harness's own server (see createDevServer). */
  serverDynamicConfig?: Record<string, string>;
  /** The token the harness's client sends, for a shared server with an authorizer. */
  clientApiKey?: string;
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
    const metadata: Record<string, string> = options.clientApiKey ? { authorization: `Bearer ${options.clientApiKey}` } : {};
    client = new Client({ connection: await Connection.connect({ address: server.address, metadata }), namespace: NAMESPACE });
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
