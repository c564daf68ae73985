/**
 * Metrics and logs of the real worker process: `worker/main.ts`, compiled as `npm run build` compiles it, runs as a
 * child process (the SDK runtime, with its Prometheus endpoint, is installed once per process, so it cannot share
 * the jest process) against the stack's simulators and the shared dev server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { LogEntry } from '@temporalio/worker';
import ts from 'typescript';
import { approvePipeline, rejectPipeline, startPipeline } from '../client/pipelines';
import type { PipelineStatus } from '../common/types';
import { startStack, type Stack } from '../sandbox/stack';
import { createRedactor, formatLogEntry, REDACTED, secretValuesFrom } from '../worker/logging';
import { loadTelemetrySettings } from '../worker/telemetry';
import { statusQuery } from '../workflows/definitions';
import { APPROVAL_WAIT_METRIC, PIPELINE_OUTCOME_METRIC } from '../workflows/metrics-interceptors';
import { STEP_DURATION_METRIC } from '../activities/metrics-interceptor';
import { DELIVERY_METRICS } from '../worker/delivery-metrics';
import { freePort } from '../harness/free-ports';
import { waitFor } from './support/env';
import { connectClient, testAddress, testNamespace, uniqueTaskQueue, workflowBundlePath } from './support/temporal';

const ROOT = path.resolve(__dirname, '..');
/** Lanes are per app and environment across the whole namespace: an app name of its own keeps this test apart. */
const APP = `metrics-${randomBytes(3).toString('hex')}`;
const BUILD_DIR = path.join(ROOT, '.cache', 'test', 'worker-build');
const WORKER_MAIN = path.join(BUILD_DIR, 'worker', 'main.js');

/** Compiles the worker entry point and what it imports with the build's compiler options, into an ignored folder. */
function compileWorker(): void {
  rmSync(BUILD_DIR, { recursive: true, force: true });
  const configPath = path.join(ROOT, 'tsconfig.build.json');
  const parsed = ts.getParsedCommandLineOfConfigFile(configPath, { outDir: BUILD_DIR, sourceMap: false }, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!parsed) throw new Error(`cannot read ${configPath}`);
  // The worker resolves the workflows' entry point at start-up, though it runs them from the prebuilt bundle.
  const rootNames = [path.join(ROOT, 'worker', 'main.ts'), path.join(ROOT, 'workflows', 'index.ts')];
  const program = ts.createProgram({ rootNames, options: parsed.options });
  // Type errors are `npm run typecheck`'s business; only a failure to emit stops this test.
  const { emitSkipped, diagnostics } = program.emit();
  if (emitSkipped || !existsSync(WORKER_MAIN)) {
    throw new Error(`could not compile worker/main.ts: ${ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' })}`);
  }
}

interface WorkerProcess {
  child: ChildProcess;
  lines: string[];
  exited: Promise<number | null>;
}

function runWorker(env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, [WORKER_MAIN], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  const collect = (chunk: Buffer) => {
    const text = partial + chunk.toString('utf8');
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter((line) => line.trim() !== ''));
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Never leave the worker behind if jest dies first.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  void exited.then(() => process.off('exit', kill));
  return { child, lines, exited };
}

async function stopWorker(worker: WorkerProcess): Promise<number | null> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return worker.child.exitCode;
  worker.child.kill('SIGTERM');
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), 15_000);
  try {
    return await worker.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** The process environment a worker needs besides the stack's: the AWS SDK's settings from the jest global setup. */
function baseEnv(): Record<string, string> {
  const names = ['PATH', 'HOME', 'AWS_ENDPOINT_URL_ECR', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'];
  return Object.fromEntries(names.flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format, the lines this test needs: `name{label="value",…} number`. */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || line.startsWith('#')) continue;
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = raw!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function find(samples: Sample[], name: string, labels: Record<string, string>): Sample | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

describe('the worker process: Prometheus metrics and JSON logs', () => {
  let stack: Stack;
  let dataDir: string;
  let client: Client;
  let worker: WorkerProcess;
  let metricsUrl: string;
  let taskQueue: string;

  beforeAll(async () => {
    compileWorker();
    dataDir = await mkdtemp(path.join(tmpdir(), 'deploy-metrics-'));
    stack = await startStack({
      dataDir,
      apps: { [APP]: { environments: { integration: {}, staging: { continuousDeployment: false } } } },
    });
    client = await connectClient();
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    taskQueue = uniqueTaskQueue('metrics');
    worker = runWorker({
      ...baseEnv(),
      ...stack.env,
      TEMPORAL_ADDRESS: testAddress(),
      TEMPORAL_NAMESPACE: testNamespace(),
      DEPLOY_TASK_QUEUE: taskQueue,
      DEPLOY_WORKFLOW_BUNDLE: workflowBundlePath(),
      DEPLOY_METRICS_ADDRESS: `127.0.0.1:${port}`,
      DEPLOY_DELIVERY_METRICS_INTERVAL: '1s',
      DEPLOY_LOG_LEVEL: 'DEBUG',
    });
    await waitFor(() => worker.lines.some((line) => line.includes('deploy worker polling')) || worker.child.exitCode !== null, {
      timeoutMs: 60_000,
      description: 'the worker to start polling',
    });
    if (worker.child.exitCode !== null) throw new Error(`the worker exited with ${worker.child.exitCode}:\n${worker.lines.join('\n')}`);
  });

  afterAll(async () => {
    if (worker) await stopWorker(worker);
    await client?.connection.close();
    await stack?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function runToApproval(): Promise<string> {
    const sha = await stack.merge(APP);
    const { workflowId } = await startPipeline(
      { app: APP, ref: sha, requestedBy: 'ci' },
      { client, taskQueue, catalogue: stack.catalogue, sourceHost: stack.dependencies.sourceHost },
    );
    let last: PipelineStatus | undefined;
    try {
      await waitFor(
        async () => {
          last = await client.workflow.getHandle(workflowId).query(statusQuery);
          return last.status === 'AWAITING_APPROVAL';
        },
        { timeoutMs: 60_000, description: `${workflowId} to await approval` },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nlast status: ${JSON.stringify(last)}\nworker's last lines:\n${worker.lines.slice(-20).join('\n')}`);
    }
    return workflowId;
  }

  let approvedId: string;
  let rejectedId: string;

  it('runs one pipeline to production approval and another to rejection', async () => {
    approvedId = await runToApproval();
    // A wait measurably longer than a second: the histogram must hold real workflow time.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await approvePipeline(client, approvedId, { environment: 'staging', approver: 'alice' });
    expect((await client.workflow.getHandle(approvedId).result()).status).toBe('SUCCEEDED');

    rejectedId = await runToApproval();
    await rejectPipeline(client, rejectedId, { environment: 'staging', approver: 'bob', reason: 'not today' });
    expect((await client.workflow.getHandle(rejectedId).result()).status).toBe('REJECTED');
  });

  it('serves the SDK metrics and ours, with outcome, step and approval labels', async () => {
    const ours = { taskQueue, app: APP };
    const samples = await waitFor(
      async () => {
        const found = parsePrometheus(await (await fetch(metricsUrl)).text());
        const ready =
          find(found, PIPELINE_OUTCOME_METRIC, { ...ours, outcome: 'SUCCEEDED' }) &&
          find(found, PIPELINE_OUTCOME_METRIC, { ...ours, outcome: 'REJECTED' }) &&
          find(found, `${APPROVAL_WAIT_METRIC}_count`, { ...ours, decision: 'rejected' });
        return ready ? found : undefined;
      },
      { timeoutMs: 20_000, description: `our metrics at ${metricsUrl}` },
    );

    expect(find(samples, PIPELINE_OUTCOME_METRIC, { ...ours, outcome: 'SUCCEEDED', trigger: 'ci', workflowType: 'DeployPipeline' })?.value).toBe(1);
    expect(find(samples, PIPELINE_OUTCOME_METRIC, { ...ours, outcome: 'REJECTED' })?.value).toBe(1);

    const approved = { ...ours, environment: 'staging', decision: 'approved' };
    expect(find(samples, `${APPROVAL_WAIT_METRIC}_count`, approved)?.value).toBe(1);
    expect(find(samples, `${APPROVAL_WAIT_METRIC}_sum`, approved)?.value).toBeGreaterThanOrEqual(1);
    expect(find(samples, `${APPROVAL_WAIT_METRIC}_count`, { ...ours, environment: 'staging', decision: 'rejected' })?.value).toBe(1);
    // Our bucket bounds, not the SDK's defaults for sub-second RPCs.
    expect(find(samples, `${APPROVAL_WAIT_METRIC}_bucket`, { ...approved, le: '86400' })?.value).toBe(1);

    // integration ran twice (both pipelines), staging once (the approved one).
    for (const [activityType, attempts] of [['resolveRelease', 2], ['bumpImageTag', 3], ['notifyReleaseApp', 3], ['waitForArgoSync', 3], ['runSmokeTests', 3]] as const) {
      const labels = { taskQueue, activityType, outcome: 'completed' };
      expect({ activityType, count: find(samples, `${STEP_DURATION_METRIC}_count`, labels)?.value }).toEqual({ activityType, count: attempts });
      expect(find(samples, `${STEP_DURATION_METRIC}_sum`, labels)?.value).toBeGreaterThan(0);
    }

    // The SDK's own worker metrics come from the same endpoint.
    expect(samples.some((s) => s.name.startsWith('temporal_') && s.labels.task_queue === taskQueue)).toBe(true);
  });

  it("serves the delivery metrics read from the pipelines' records, per app and environment", async () => {
    const labels = (environment: string) => ({ app: APP, environment, taskQueue });
    const samples = await waitFor(
      async () => {
        const found = parsePrometheus(await (await fetch(metricsUrl)).text());
        return find(found, DELIVERY_METRICS.deployments, labels('integration'))?.value === 2 && find(found, DELIVERY_METRICS.deployments, labels('staging'))?.value === 1
          ? found
          : undefined;
      },
      { timeoutMs: 20_000, description: `delivery metrics at ${metricsUrl}` },
    );
    // Both pipelines deployed integration; only the approved one staging; nothing failed there.
    expect(find(samples, DELIVERY_METRICS.failedChanges, labels('integration'))?.value).toBe(0);
    expect(find(samples, DELIVERY_METRICS.changeFailureRatio, labels('staging'))?.value).toBe(0);
    expect(find(samples, DELIVERY_METRICS.perDay, labels('integration'))?.value).toBeCloseTo(2 / 30);
    // From the commit's date in GitHub to the deploy's end: the approval's wait is in staging's.
    const leadTime = (environment: string) => find(samples, DELIVERY_METRICS.leadTime, labels(environment))?.value ?? NaN;
    expect(leadTime('integration')).toBeGreaterThan(0);
    expect(leadTime('staging')).toBeGreaterThan(1);
    // No failure, no restore to measure: the series is absent rather than a misleading 0.
    expect(find(samples, DELIVERY_METRICS.timeToRestore, labels('staging'))).toBeUndefined();
  });

  it('writes one JSON object per line, with workflow and activity ids, and no secret', () => {
    const records = worker.lines.map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
    });
    for (const record of records) expect(Object.keys(record).slice(0, 3)).toEqual(['time', 'level', 'message']);
    expect(records.some((r) => r.workflowId === approvedId && typeof r.runId === 'string' && r.workflowType === 'DeployPipeline')).toBe(true);
    const activityRecord = records.find((r) => r.workflowId === approvedId && r.activityType === 'bumpImageTag');
    expect(activityRecord).toMatchObject({ activityId: expect.any(String), taskQueue, taskToken: REDACTED });

    const output = worker.lines.join('\n');
    for (const name of ['GITHUB_TOKEN', 'ARGOCD_TOKEN', 'RELEASE_TOKEN']) {
      expect({ name, leaked: output.includes(stack.env[name]!) }).toEqual({ name, leaked: false });
    }
  });

  it('stops cleanly on SIGTERM', async () => {
    expect(await stopWorker(worker)).toBe(0);
    expect(worker.lines.at(-1)).toContain('deploy worker stopped');
  });

  it('refuses to start with incomplete settings, saying which, as a JSON line without the secrets it was given', async () => {
    const githubToken = 'ghs_startupSecretThatMustNotLeak';
    const failed = runWorker({ ...baseEnv(), GITHUB_TOKEN: githubToken, CHARTS_REPO_URL: `https://x-access-token:${githubToken}@example.com/charts.git`, DEPLOY_METRICS_ADDRESS: 'nowhere' });
    expect(await failed.exited).toBe(2);
    const [record] = failed.lines.map((line) => JSON.parse(line) as { level: string; message: string });
    expect(record).toMatchObject({ level: 'ERROR', message: expect.stringContaining('DEPLOY_METRICS_ADDRESS "nowhere" must be host:port') });

    const incomplete = runWorker({ ...baseEnv(), GITHUB_TOKEN: githubToken });
    expect(await incomplete.exited).toBe(2);
    const message = (JSON.parse(incomplete.lines[0]!) as { message: string }).message;
    for (const name of ['ARGOCD_URL', 'ARGOCD_TOKEN', 'RELEASE_URL', 'RELEASE_TOKEN', 'CHARTS_REPO_URL']) expect(message).toContain(`${name} is not set`);
    expect([...failed.lines, ...incomplete.lines].join('\n')).not.toContain(githubToken);
  });
});

describe('JSON log lines', () => {
  const entry = (message: string, meta?: Record<string, unknown>): LogEntry => ({ level: 'INFO', message, meta, timestampNanos: 1_700_000_000_123_000_000n });

  it('mask secret values wherever they appear, URL credentials, and fields with secret names', () => {
    const secrets = secretValuesFrom({
      GITHUB_TOKEN: 'ghp_abcdefghijklmnop',
      TEMPORAL_API_KEY: 'key-0123456789',
      CHARTS_REPO_URL: 'https://deployer:charts-password-42@git.example.org/charts.git',
      ARGOCD_URL: 'https://argo.example.org',
      SHORT_TOKEN: 'abc',
    });
    expect(secrets.sort()).toEqual(['charts-password-42', 'ghp_abcdefghijklmnop', 'key-0123456789'].sort());
    const redact = createRedactor(secrets);
    const line = formatLogEntry(
      entry('push to https://deployer:other-secret@git.example.org failed with ghp_abcdefghijklmnop', {
        workflowId: 'deploy-whitehall-1',
        taskToken: 'AAECAw==',
        headers: { Authorization: 'Bearer key-0123456789', accept: 'json' },
        error: Object.assign(new Error('401 for token ghp_abcdefghijklmnop'), { status: 401, request: { headers: { authorization: 'token ghp_abcdefghijklmnop' } }, token: 'x' }),
        level: 'not-overridden',
        attempt: 2n,
      }),
      redact,
    );
    expect(line).not.toMatch(/ghp_abcdefghijklmnop|key-0123456789|other-secret|AAECAw==/);
    const record = JSON.parse(line);
    expect(record.error).not.toHaveProperty('request');
    expect(record.error).not.toHaveProperty('token');
    expect(record).toMatchObject({
      time: '2023-11-14T22:13:20.123Z',
      level: 'INFO',
      message: `push to https://${REDACTED}@git.example.org failed with ${REDACTED}`,
      workflowId: 'deploy-whitehall-1',
      taskToken: REDACTED,
      headers: { Authorization: REDACTED, accept: 'json' },
      error: { name: 'Error', message: `401 for token ${REDACTED}`, status: 401 },
      attempt: '2',
    });
  });

  it('survive circular and deeply nested fields', () => {
    const loop: Record<string, unknown> = { name: 'loop' };
    loop.self = loop;
    const record = JSON.parse(formatLogEntry(entry('x', { loop }), createRedactor([])));
    expect(record.loop).toEqual({ name: 'loop', self: '[circular]' });
  });
});

describe('telemetry settings', () => {
  it('take the metrics address and log level from the environment', () => {
    expect(loadTelemetrySettings({})).toEqual({ metricsAddress: undefined, deliveryMetricsIntervalMs: 60_000, logLevel: 'INFO' });
    expect(loadTelemetrySettings({ DEPLOY_METRICS_ADDRESS: '0.0.0.0:9464', DEPLOY_LOG_LEVEL: 'debug' })).toEqual({
      metricsAddress: '0.0.0.0:9464',
      deliveryMetricsIntervalMs: 60_000,
      logLevel: 'DEBUG',
    });
    expect(loadTelemetrySettings({ DEPLOY_DELIVERY_METRICS_INTERVAL: '5m' }).deliveryMetricsIntervalMs).toBe(300_000);
    expect(loadTelemetrySettings({ DEPLOY_METRICS_ADDRESS: '[::]:9464' }).metricsAddress).toBe('[::]:9464');
  });

  it('name what is wrong', () => {
    expect(() => loadTelemetrySettings({ DEPLOY_METRICS_ADDRESS: '9464' })).toThrow(/DEPLOY_METRICS_ADDRESS "9464" must be host:port/);
    expect(() => loadTelemetrySettings({ DEPLOY_DELIVERY_METRICS_INTERVAL: '10ms' })).toThrow(/DEPLOY_DELIVERY_METRICS_INTERVAL "10ms" must be at least 1s/);
    expect(() => loadTelemetrySettings({ DEPLOY_METRICS_ADDRESS: 'localhost:70000' })).toThrow(/must be host:port/);
    expect(() => loadTelemetrySettings({ DEPLOY_LOG_LEVEL: 'LOUD' })).toThrow(/DEPLOY_LOG_LEVEL "LOUD" must be one of TRACE, DEBUG, INFO, WARN, ERROR/);
  });
});
