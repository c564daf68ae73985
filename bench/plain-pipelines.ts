/**
 * 2b's baseline, a child process of the bench: deploy pipelines as a plain script, no Temporal. It builds the worker's
 * activities over the worker's adapters (worker/adapters.ts, the same settings) and, for each job, makes the calls a
 * product pipeline made (read from its history by bench/orchestration.ts), in the same order, those the pipeline
 * made side by side here too, every job at once, as many calls in flight as the worker allows activities. What
 * a call returns feeds the next as in the pipeline: where the recorded result and this one differ (a new charts
 * commit, say), later arguments get this one's. The lane's signal is left out: lanes are the orchestration.
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

export type PlainMessage = { ready: true } | { done: { totalMs: number; pipelineMs: number[]; calls: number } } | { error: string };

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
  async function pipeline(job: PlainJob): Promise<number> {
    const began = performance.now();
    const workflowId = `plain-${randomUUID()}`;
    const replace: Array<[string, string]> = [...job.replace, [job.pipelineId, workflowId]];
    for (const group of job.groups) {
      await Promise.all(
        group.map(async (call, i) => {
          const fn = activities[call.type];
          if (!fn) throw new Error(`the worker has no activity ${call.type}`);
          const info = { workflowExecution: { workflowId, runId: randomUUID() }, activityId: `${calls}-${i}`, attempt: 1, workflowNamespace: 'default', scheduledTimestampMs: Date.now() };
          const result = await slot(() => new MockActivityEnvironment(info).run(fn, ...substituted(call.args, replace)));
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
    Promise.all(message.jobs.map(pipeline)).then(
      (pipelineMs) => send({ done: { totalMs: performance.now() - began, pipelineMs, calls } }),
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
