/**
 * 2b's baseline, a child process of the bench: deploy pipelines as a plain script, no Temporal. It builds the worker's
 * activities over the worker's adapters (worker/adapters.ts, the same settings) and, for each job, makes the calls a
 * product pipeline made (read from its history by bench/orchestration.ts), in the same order, those the pipeline
 * made side by side here too, every job at once, as many calls in flight as the worker allows activities. What
 * a call returns feeds the next as in the pipeline: where the recorded result and this one differ (a new charts
 * commit, say), later arguments get this one's. The lane's signal is left out: lanes are the orchestration. A call
 * that fails is tried again as the pipeline's retry policy would (one second, doubling): at this load an endpoint
 * drops a connection now and then, and a plain script must live with that too.
 */
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../activities';
import { loadCatalogue } from '../common/catalogue';
import { loadWorkerSettings } from '../common/settings';
import { createProductionDependencies } from '../worker/adapters';

export interface RecordedCall {
  type: string;
  args: unknown[];
  result: unknown;
}

/** One pipeline to make again: its recorded calls in groups made side by side, and what to put for what. */
export interface PlainJob {
  pipelineId: string;
  groups: RecordedCall[][];
  /** Strings in the recorded arguments and their replacements (the old commit and the new one). */
  replace: Array<[string, string]>;
}

export type PlainMessage = { ready: true } | { done: { totalMs: number; pipelineMs: number[]; calls: number; retries: number } } | { error: string };

const MAX_ATTEMPTS = 10;

function send(message: PlainMessage): void {
  process.send?.(message);
}

/** Where the recorded result and ours differ in a string, later arguments get ours. */
function learn(recorded: unknown, actual: unknown, replace: Array<[string, string]>): void {
  if (typeof recorded === 'string' && typeof actual === 'string') {
    if (recorded !== actual && recorded.length >= 8 && !replace.some(([from]) => from === recorded)) replace.push([recorded, actual]);
    return;
  }
  if (recorded && actual && typeof recorded === 'object' && typeof actual === 'object') {
    for (const key of Object.keys(recorded)) learn((recorded as Record<string, unknown>)[key], (actual as Record<string, unknown>)[key], replace);
  }
}

function substituted(args: unknown[], replace: Array<[string, string]>): unknown[] {
  let text = JSON.stringify(args);
  for (const [from, to] of [...replace].sort(([a], [b]) => b.length - a.length)) text = text.split(from).join(to);
  return JSON.parse(text) as unknown[];
}

async function main(): Promise<void> {
  const settings = loadWorkerSettings();
  const activities = createActivities(createProductionDependencies(settings, loadCatalogue(settings.cataloguePath))) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  let free = settings.maxConcurrentActivities;
  const waiting: Array<() => void> = [];
  async function slot<T>(work: () => Promise<T>): Promise<T> {
    while (free === 0) await new Promise<void>((resume) => waiting.push(resume));
    free--;
    try {
      return await work();
    } finally {
      free++;
      waiting.shift()?.();
    }
  }
  let calls = 0;
  let retries = 0;
  async function attempt(fn: (...args: unknown[]) => Promise<unknown>, args: unknown[], info: Record<string, unknown>): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await slot(() => new MockActivityEnvironment({ ...info, attempt }).run(fn, ...args));
      } catch (err) {
        if (attempt >= MAX_ATTEMPTS) throw err;
        retries++;
        await new Promise((wake) => setTimeout(wake, Math.min(1000 * 2 ** (attempt - 1), 10_000)));
      }
    }
  }
  async function pipeline(job: PlainJob): Promise<number> {
    const began = performance.now();
    const workflowId = `plain-${randomUUID()}`;
    const replace: Array<[string, string]> = [...job.replace, [job.pipelineId, workflowId]];
    for (const group of job.groups) {
      await Promise.all(
        group.map(async (call, i) => {
          const fn = activities[call.type];
          if (!fn) throw new Error(`the worker has no activity ${call.type}`);
          const info = { workflowExecution: { workflowId, runId: randomUUID() }, activityId: `${calls}-${i}`, workflowNamespace: 'default', scheduledTimestampMs: Date.now() };
          const result = await attempt(fn, substituted(call.args, replace), info);
          calls++;
          learn(call.result, result, replace);
        }),
      );
    }
    return performance.now() - began;
  }
  process.on('message', (message: { jobs: PlainJob[] }) => {
    const began = performance.now();
    calls = 0;
    retries = 0;
    Promise.all(message.jobs.map(pipeline)).then(
      (pipelineMs) => send({ done: { totalMs: performance.now() - began, pipelineMs, calls, retries } }),
      (err: unknown) => send({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
  });
  process.once('disconnect', () => process.exit(0));
  send({ ready: true });
}

main().catch((err: unknown) => {
  send({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
});
