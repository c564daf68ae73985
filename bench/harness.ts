/** Shared by the bench's measurements: stacks of simulators, worker processes, and timing pipelines on the server. */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { temporal as proto } from '@temporalio/proto';
import { startPipeline } from '../client/pipelines';
import type { PipelineStatus } from '../common/types';
import { startStack, type Stack, type StackOptions } from '../sandbox/stack';
import type { DeployPipeline } from '../workflows/deploy-pipeline';
import { WORKER_NODE_FLAGS, WORKER_PROCESS_ENV } from '../worker/process-env';
import { PROFILE_DIR, progress, startChild, WORK_DIR, type Build, type Child, type Ecr, type Temporal, type WorkerMessage } from './infra';
import { localActivityMarker, timeMs } from '../harness/local-activity-markers';

export interface BenchContext {
  temporal: Temporal;
  client: Client;
  build: Build;
  ecr: Ecr;
  /** Write V8 CPU profiles of every worker process, one per thread (node --cpu-prof), into .cache/bench/profiles/<worker>-<time>/. */
  profile: boolean;
  /**
   * Free ports for the workers' Prometheus endpoints, taken one per worker: the image turns metrics on
   * (DEPLOY_METRICS_ADDRESS), and with them the delivery metrics' reads of the pipelines' records.
   */
  metricsPorts: number[];
}

export interface BenchStack {
  stack: Stack;
  dataDir: string;
  close(): Promise<void>;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export async function openStack(name: string, options: Omit<StackOptions, 'dataDir'>): Promise<BenchStack> {
  const dataDir = join(WORK_DIR, 'data', uniqueName(name));
  mkdirSync(dataDir, { recursive: true });
  const stack = await startStack({ ...options, dataDir });
  return {
    stack,
    dataDir,
    async close() {
      await stack.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A worker process's environment: the stack's settings with the product's default polling (2 s growing to 30 s)
 * unless `polling` says otherwise, its own charts clone, and the bench's Temporal.
 */
export function workerEnv(
  ctx: BenchContext,
  bench: BenchStack,
  taskQueue: string,
  extra: { polling?: { initialIntervalMs: number; maxIntervalMs: number }; env?: Record<string, string> } = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...bench.stack.env,
    TEMPORAL_ADDRESS: ctx.temporal.address,
    TEMPORAL_NAMESPACE: ctx.temporal.namespace,
    DEPLOY_TASK_QUEUE: taskQueue,
    CHARTS_WORKDIR: join(bench.dataDir, `charts-workdir-${taskQueue}`),
    DEPLOY_LOG_LEVEL: 'WARN',
    ...metricsAddress(ctx),
    ...WORKER_PROCESS_ENV,
    ...extra.env,
  };
  delete env.DEPLOY_POLL_INTERVAL_MS;
  delete env.DEPLOY_POLL_MAX_INTERVAL_MS;
  delete env.NODE_OPTIONS;
  // For experiments: settings for the worker processes, e.g. BENCH_WORKER_ENV='{"DEPLOY_POLL_INTERVAL_MS":"2000"}'
  // (node flags go in BENCH_WORKER_NODE_FLAGS, below). Reported runs use neither.
  if (process.env.BENCH_WORKER_ENV) Object.assign(env, JSON.parse(process.env.BENCH_WORKER_ENV) as Record<string, string>);
  if (extra.polling) {
    env.DEPLOY_POLL_INTERVAL_MS = String(extra.polling.initialIntervalMs);
    env.DEPLOY_POLL_MAX_INTERVAL_MS = String(extra.polling.maxIntervalMs);
  }
  return env;
}

function metricsAddress(ctx: BenchContext): Record<string, string> {
  const port = ctx.metricsPorts.shift();
  if (port === undefined) throw new Error('the bench ran out of free ports for the workers\' metrics; take more at start');
  return { DEPLOY_METRICS_ADDRESS: `127.0.0.1:${port}` };
}

export function nodeArgs(ctx: BenchContext, name: string): string[] {
  // The production worker's node flags, then an experiment's (BENCH_WORKER_NODE_FLAGS, which, unlike NODE_OPTIONS,
  // takes any V8 flag).
  const flags = [...WORKER_NODE_FLAGS, ...(process.env.BENCH_WORKER_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean)];
  if (!ctx.profile) return flags;
  // One folder per worker process: node names each thread's profile itself (the workflow thread has its own).
  const dir = join(PROFILE_DIR, `${name}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return [...flags, '--cpu-prof', '--cpu-prof-dir', dir];
}

/** The bench worker (bench/worker.ts, compiled): the product's worker plus the baseline, on one task queue. */
export async function startBenchWorker(
  ctx: BenchContext,
  bench: BenchStack,
  taskQueue: string,
  options: { name: string; argoRefresh?: boolean; polling?: { initialIntervalMs: number; maxIntervalMs: number }; maxCachedWorkflows?: number; callLog?: string },
): Promise<Child> {
  const env = workerEnv(ctx, bench, taskQueue, {
    polling: options.polling,
    env: {
      BENCH_WORKFLOW_BUNDLE: ctx.build.benchBundle,
      ...(options.argoRefresh === false ? { BENCH_ARGO_REFRESH: 'off' } : {}),
      ...(options.maxCachedWorkflows ? { DEPLOY_MAX_CACHED_WORKFLOWS: String(options.maxCachedWorkflows) } : {}),
      ...(options.callLog ? { BENCH_CALL_LOG: options.callLog } : {}),
    },
  });
  const child = startChild(`worker ${options.name}`, process.execPath, [...nodeArgs(ctx, options.name), ctx.build.benchWorker], {
    env,
    ipc: true,
    logName: `worker-${options.name}`,
  });
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${options.name} did not start within 60 s:\n${child.outputTail(30)}`)), 60_000);
    child.process.on('message', (message: WorkerMessage) => {
      if (message.ready) {
        clearTimeout(timer);
        resolveReady();
      } else if (message.error) {
        clearTimeout(timer);
        reject(new Error(`worker ${options.name} failed: ${message.error}`));
      }
    });
    child.process.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`worker ${options.name} ${child.exited}:\n${child.outputTail(30)}`));
    });
  });
  return child;
}

/** Starts the pipeline CI would start for this commit (`deploy start --app APP --ref SHA`). */
export async function startCiPipeline(ctx: BenchContext, bench: BenchStack, taskQueue: string, app: string, sha: string): Promise<WorkflowHandle<typeof DeployPipeline>> {
  const started = await startPipeline(
    { app, ref: sha, requestedBy: 'ci' },
    { client: ctx.client, taskQueue, catalogue: bench.stack.catalogue, sourceHost: bench.stack.dependencies.sourceHost },
  );
  return ctx.client.workflow.getHandle<typeof DeployPipeline>(started.workflowId);
}

/** Rejects after `ms`: a stuck pipeline must fail the bench, not hang it. */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function expectSucceeded(handle: WorkflowHandle<typeof DeployPipeline>, timeoutMs = 15 * 60_000): Promise<PipelineStatus> {
  const status = await within(timeoutMs, `pipeline ${handle.workflowId}`, handle.result());
  if (status.status !== 'SUCCEEDED') throw new Error(`pipeline ${handle.workflowId} ended ${status.status}: ${status.failure ?? ''}`);
  return status;
}

export interface ServerTiming {
  startMs: number;
  closeMs: number;
  /** Start to close, as the server recorded them. */
  ms: number;
}

/** Start and close times as the server recorded them: no client-side scheduling in the number. */
export async function serverTiming(handle: WorkflowHandle): Promise<ServerTiming> {
  const description = await handle.describe();
  if (!description.closeTime) throw new Error(`${handle.workflowId} has not closed`);
  const startMs = description.startTime.getTime();
  const closeMs = description.closeTime.getTime();
  return { startMs, closeMs, ms: closeMs - startMs };
}

export type HistoryEvent = proto.api.history.v1.IHistoryEvent;

export async function historyEvents(handle: WorkflowHandle): Promise<HistoryEvent[]> {
  return (await handle.fetchHistory()).events ?? [];
}

/** A pipeline's steps: its activities and its local activities (one marker each). */
export async function activityCount(handle: WorkflowHandle): Promise<number> {
  return (await historyEvents(handle)).filter((event) => event.activityTaskScheduledEventAttributes || localActivityOf(event)).length;
}

/**
 * A local activity's marker, read: its type and when it was asked for. How long it ran is not there: its
 * completion time is "perceived", the workflow task's start plus the run, so breakdowns count local activities'
 * time with the workflow tasks that ran them.
 */
export function localActivityOf(event: HistoryEvent): { type: string; scheduledMs: number } | undefined {
  const marker = localActivityMarker(event);
  if (!marker) return undefined;
  return { type: marker.activity_type, scheduledMs: marker.original_schedule_time ? timeMs(marker.original_schedule_time) : eventTimeMs(event) };
}

export function eventTimeMs(event: HistoryEvent): number {
  const time = event.eventTime;
  if (!time) return Number.NaN;
  return Number(time.seconds ?? 0) * 1000 + Math.floor((time.nanos ?? 0) / 1e6);
}

/** Runs `work` on every item with at most `limit` in flight; `onProgress` hears every `every` completions. */
export async function inBatches<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>, onProgress?: (done: number) => void, every = 500): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  async function lane(): Promise<void> {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!, index);
      done++;
      if (onProgress && done % every === 0) onProgress(done);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

export function note(message: string): void {
  progress(message);
}

/** A history as lines of "event id, ms since the previous event, type, activity or signal name": where the time went. */
export async function historyTimeline(handle: WorkflowHandle): Promise<string> {
  const events = await historyEvents(handle);
  const names = new Map<string, string>();
  let previous: number | undefined;
  const lines: string[] = [];
  for (const event of events) {
    const at = eventTimeMs(event);
    const [kind, attributes] = Object.entries(event).find(([key, value]) => key.endsWith('EventAttributes') && value) ?? ['?', undefined];
    const a = (attributes ?? {}) as { activityType?: { name?: string }; signalName?: string; scheduledEventId?: unknown };
    if (a.activityType?.name) names.set(String(event.eventId), a.activityType.name);
    const name = a.activityType?.name ?? a.signalName ?? (a.scheduledEventId !== undefined ? names.get(String(a.scheduledEventId)) : undefined) ?? '';
    lines.push(`${String(event.eventId).padStart(4)} +${String(previous === undefined ? 0 : at - previous).padStart(5)} ms  ${kind.replace('EventAttributes', '')} ${name}`);
    previous = at;
  }
  return lines.join('\n');
}

/** With BENCH_DEBUG=1, writes a workflow's timeline to .cache/bench/logs/<name>.txt. */
export async function debugTimeline(handle: WorkflowHandle, name: string): Promise<void> {
  if (process.env.BENCH_DEBUG !== '1') return;
  const file = join(WORK_DIR, 'logs', `${name}.txt`);
  writeFileSync(file, `${handle.workflowId}\n${await historyTimeline(handle)}\n`);
  progress(`wrote ${file}`);
}

/** Where a workflow's time went, from its history (event times are the server's). */
export interface Breakdown {
  totalMs: number;
  /** Inside activities (started to completed), by activity type. */
  activityMs: Record<string, number>;
  inActivitiesMs: number;
  /** Asking for a lane (the signalLane activity done) to being granted it. */
  laneWaitMs: number;
  /** Tasks waiting in their queue (scheduled to started), workflow and activity tasks. */
  queuedMs: number;
  /** Workflow tasks being run by the worker (started to completed). */
  workflowTaskMs: number;
}

export function breakdown(events: HistoryEvent[]): Breakdown {
  const at = new Map<string, number>();
  const typeOf = new Map<string, string>();
  const result: Breakdown = { totalMs: 0, activityMs: {}, inActivitiesMs: 0, laneWaitMs: 0, queuedMs: 0, workflowTaskMs: 0 };
  let laneAskedAt: number | undefined;
  for (const event of events) {
    const id = String(event.eventId);
    const time = eventTimeMs(event);
    at.set(id, time);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) typeOf.set(id, scheduled.activityType?.name ?? '?');
    const started = event.activityTaskStartedEventAttributes ?? event.workflowTaskStartedEventAttributes;
    if (started) result.queuedMs += time - (at.get(String(started.scheduledEventId)) ?? time);
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) {
      const type = typeOf.get(String(completed.scheduledEventId)) ?? '?';
      const ms = time - (at.get(String(completed.startedEventId)) ?? time);
      result.activityMs[type] = (result.activityMs[type] ?? 0) + ms;
      result.inActivitiesMs += ms;
      if (type === 'signalLane') laneAskedAt = time;
    }
    const workflowTask = event.workflowTaskCompletedEventAttributes;
    if (workflowTask) result.workflowTaskMs += time - (at.get(String(workflowTask.startedEventId)) ?? time);
    if (event.workflowExecutionSignaledEventAttributes?.signalName === 'laneGranted' && laneAskedAt !== undefined) {
      result.laneWaitMs += time - laneAskedAt;
      laneAskedAt = undefined;
    }
  }
  if (events.length > 0) result.totalMs = eventTimeMs(events.at(-1)!) - eventTimeMs(events[0]!);
  return result;
}
