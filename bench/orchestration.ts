/**
 * 2b. Orchestration at load: many pipelines, one per app, started at once, against a plain script that makes the
 * same outside calls through the same adapters with the same concurrency and no Temporal (bench/plain-pipelines.ts).
 * The script's calls are read from the product pipelines' histories of the round before, so both make the very
 * calls: only what Temporal and the workflows add stands between the two. Rounds alternate; each has new commits.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { DeployPipeline } from '../workflows/deploy-pipeline';
import type { LoggedCall } from './call-log';
import type { PlainJob, PlainMessage, RecordedCall } from './plain-pipelines';
import { expectSucceeded, historyEvents, openStack, serverTiming, startCiPipeline, startBenchWorker, uniqueName, workerEnv, type BenchContext, type BenchStack } from './harness';
import { cpuDuring, progress, startChild, type Child } from './infra';
import { median } from './stats';
import { census, type EventCensus } from './throughput';

export interface OrchestrationConfig {
  apps: number;
  /** Rounds of each, after a warm-up of each. */
  rounds: number;
}

export interface OrchestrationResult {
  pipelines: number;
  rounds: number;
  pipelineMs: number[];
  plainMs: number[];
  /** Median pipeline round ÷ median script round. */
  ratio: number;
  /** Outside calls per pipeline (the script makes the same, but the lane's signal). */
  calls: number;
  /** Calls the plain script tried again (median per round); the pipelines' retries are Temporal's. */
  plainRetries: number;
  /** CPU seconds per pipeline by process, medians over rounds. */
  cpuPerPipeline: { pipelines: Record<string, number>; plain: Record<string, number> };
  events: EventCensus;
}

/**
 * A pipeline's calls from the worker's log, in groups made side by side: a call the workflow asked for before
 * every call of the group before it had ended did not wait for them. The lane's signal is left out.
 */
export function recordedCalls(logged: LoggedCall[]): RecordedCall[][] {
  const groups: Array<{ firstEndMs: number; calls: RecordedCall[] }> = [];
  for (const call of [...logged].sort((a, b) => a.scheduledMs - b.scheduledMs)) {
    if (call.type === 'signalLane') continue;
    const recorded: RecordedCall = { type: call.type, args: call.args, result: call.result };
    const group = groups.at(-1);
    if (group && call.scheduledMs < group.firstEndMs) {
      group.calls.push(recorded);
      group.firstEndMs = Math.min(group.firstEndMs, call.endedMs);
    } else groups.push({ firstEndMs: call.endedMs, calls: [recorded] });
  }
  return groups.map((g) => g.calls);
}

function readCallLog(path: string): Map<string, LoggedCall[]> {
  const byPipeline = new Map<string, LoggedCall[]>();
  if (!existsSync(path)) return byPipeline;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue;
    const call = JSON.parse(line) as LoggedCall;
    byPipeline.set(call.workflowId, [...(byPipeline.get(call.workflowId) ?? []), call]);
  }
  return byPipeline;
}

async function startPlainScript(ctx: BenchContext, bench: BenchStack): Promise<Child> {
  // Its own charts clone, as a second worker would have.
  const env = workerEnv(ctx, bench, uniqueName('plain'));
  const child = startChild('plain pipelines', process.execPath, [join(ctx.build.benchWorker, '..', 'plain-pipelines.js')], { env, ipc: true, logName: 'plain-pipelines' });
  await nextMessage(child, 60_000);
  return child;
}

function nextMessage(child: Child, timeoutMs: number): Promise<PlainMessage> {
  return new Promise((resolveMessage, reject) => {
    const timer = setTimeout(() => reject(new Error(`the plain script did not answer within ${timeoutMs / 1000} s:\n${child.outputTail(30)}`)), timeoutMs);
    child.process.once('message', (message: PlainMessage) => {
      clearTimeout(timer);
      if ('error' in message) reject(new Error(`the plain script failed: ${message.error}`));
      else resolveMessage(message);
    });
  });
}

export async function measureOrchestration(ctx: BenchContext, config: OrchestrationConfig): Promise<OrchestrationResult> {
  const apps = Array.from({ length: config.apps }, (_, i) => `orch${String(i + 1).padStart(3, '0')}`);
  const bench = await openStack('orchestration', { apps: Object.fromEntries(apps.map((app) => [app, {}])), argo: { syncDelayMs: 0, healthyDelayMs: 0, pollIntervalMs: 0 }, buildDelayMs: 0 });
  const taskQueue = uniqueName('bench-orchestration');
  // Sized for the load, as in item 2: every pipeline is under way at once, with its app's three lanes.
  const callLog = join(ctx.build.benchWorker, '..', `calls-${taskQueue}.jsonl`);
  const worker = await startBenchWorker(ctx, bench, taskQueue, { name: 'orchestration', maxCachedWorkflows: config.apps * 4, callLog });
  const plain = await startPlainScript(ctx, bench);
  const pids = { worker: worker.pid, 'Temporal server': ctx.temporal.child.pid, 'plain script': plain.pid, 'bench (simulators, client)': process.pid };
  /** The last product round's pipeline of each app, with its commit: what the script makes again. */
  let templates: Array<{ app: string; sha: string; pipelineId: string; groups: RecordedCall[][] }> = [];
  const merged = async () => Promise.all(apps.map(async (app) => ({ app, sha: await bench.stack.merge(app) })));
  try {
    const pipelines = async () => {
      const commits = await merged();
      const handles: Array<WorkflowHandle<typeof DeployPipeline>> = await Promise.all(commits.map(({ app, sha }) => startCiPipeline(ctx, bench, taskQueue, app, sha)));
      await Promise.all(handles.map((h) => expectSucceeded(h)));
      const timings = await Promise.all(handles.map((h) => serverTiming(h)));
      const histories = await Promise.all(handles.map((h) => historyEvents(h)));
      const logged = readCallLog(callLog);
      rmSync(callLog, { force: true });
      templates = commits.map(({ app, sha }, i) => ({ app, sha, pipelineId: handles[i]!.workflowId, groups: recordedCalls(logged.get(handles[i]!.workflowId) ?? []) }));
      return { ms: Math.max(...timings.map((t) => t.closeMs)) - Math.min(...timings.map((t) => t.startMs)), events: census(histories.flat(), handles.length) };
    };
    const script = async () => {
      const commits = await merged();
      const jobs: PlainJob[] = templates.map((t, i) => ({ pipelineId: t.pipelineId, groups: t.groups, replace: [[t.sha, commits[i]!.sha]] }));
      const answer = nextMessage(plain, 15 * 60_000);
      plain.process.send({ jobs });
      const message = await answer;
      if (!('done' in message)) throw new Error('the plain script answered out of turn');
      return message.done;
    };

    progress(`2b/orchestration: warm-up, ${apps.length} pipelines and the plain script`);
    await pipelines();
    await script();
    const pipelineMs: number[] = [];
    const plainMs: number[] = [];
    const pipelineCpu: Array<Record<string, number>> = [];
    const plainCpu: Array<Record<string, number>> = [];
    const events: EventCensus[] = [];
    let calls = 0;
    const retries: number[] = [];
    for (let round = 0; round < config.rounds; round++) {
      const order = round % 2 === 0 ? (['pipelines', 'plain'] as const) : (['plain', 'pipelines'] as const);
      for (const kind of order) {
        if (kind === 'pipelines') {
          const { result, cpu } = await cpuDuring(pids, pipelines);
          pipelineMs.push(result.ms);
          pipelineCpu.push(cpu);
          events.push(result.events);
          progress(`2b/orchestration: round ${round + 1}/${config.rounds}: ${apps.length} pipelines in ${(result.ms / 1000).toFixed(1)} s`);
        } else {
          const { result, cpu } = await cpuDuring(pids, script);
          plainMs.push(result.totalMs);
          plainCpu.push(cpu);
          calls = result.calls / apps.length;
          retries.push(result.retries);
          progress(`2b/orchestration: round ${round + 1}/${config.rounds}: the plain script in ${(result.totalMs / 1000).toFixed(1)} s (${result.calls} calls, ${result.retries} tried again)`);
        }
      }
    }
    const perPipeline = (samples: Array<Record<string, number>>) => Object.fromEntries(Object.keys(pids).map((name) => [name, median(samples.map((c) => c[name]!)) / apps.length]));
    const medianEvents = Object.fromEntries(Object.keys(events[0]!).map((key) => [key, median(events.map((e) => e[key as keyof EventCensus]))])) as unknown as EventCensus;
    return {
      pipelines: apps.length,
      rounds: config.rounds,
      pipelineMs,
      plainMs,
      ratio: median(pipelineMs) / median(plainMs),
      calls,
      plainRetries: median(retries),
      cpuPerPipeline: { pipelines: perPipeline(pipelineCpu), plain: perPipeline(plainCpu) },
      events: medianEvents,
    };
  } finally {
    await plain.stop();
    await worker.stop();
    await bench.close();
    rmSync(callLog, { force: true });
  }
}
