/**
 * 6. Long waits: what a pipeline costs per day while it waits in a freeze, outside a deploy window, and for approval,
 * in history events (its own and its lanes') and worker CPU. A day is not waited out: the pipelines wait a while
 * with nothing else running, and the cost is scaled to a day at the default settings. Only the freeze does periodic
 * work (one activity looks at the charts file every `freezeRecheckInterval`, one minute by default, heartbeating);
 * it is waited out looking every second, and its cost per look is multiplied by the looks in a day at the default.
 * A window and an approval are one timer each, with nothing periodic: their cost over the wait scales with time.
 * The worker's CPU over as long again once the kind's pipelines are gone (polling, collecting garbage) is taken
 * off; the CPU is counted in ticks of 10 ms, so a short wait (`--quick`) says little of it.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { PipelineStatus } from '../common/types';
import { laneWorkflowId, statusQuery } from '../workflows/definitions';
import type { DeployPipeline } from '../workflows/deploy-pipeline';
import { historyEvents, openStack, startBenchWorker, startCiPipeline, uniqueName, type BenchContext } from './harness';
import { cpuSeconds, progress, sleep } from './infra';
import { median } from './stats';

export interface LongWaitsConfig {
  /** Pipelines waiting at once, of each kind. */
  pipelines: number;
  /** How long each kind waits while measured. */
  waitMs: number;
}

export type WaitKind = 'freeze' | 'window' | 'approval';

export interface WaitCost {
  kind: WaitKind;
  /** History events per pipeline per day, its own and its lanes'. */
  eventsPerDay: number;
  /** Worker CPU seconds per pipeline per day. */
  workerCpuPerDay: number;
  /** How the day was reached. */
  scaledBy: string;
  /** Events per pipeline, its own and its lanes', until it was waiting: paid once per wait. */
  eventsToEnter: number;
}

export interface LongWaitsResult {
  pipelines: number;
  waitMs: number;
  /** The worker's CPU a second with nothing waiting, measured after each kind (median). */
  idleWorkerCpuPerSecond: number;
  costs: WaitCost[];
}

/** The default freezeRecheckInterval (common/catalogue.ts); the bench looks every second instead. */
const DEFAULT_FREEZE_RECHECK_MS = 60_000;
const SCALED_FREEZE_RECHECK = '1s';
const DAY_MS = 24 * 3_600_000;

const WAITING: Record<WaitKind, (s: PipelineStatus) => boolean> = {
  freeze: (s) => s.status === 'FROZEN',
  window: (s) => s.status === 'OUTSIDE_WINDOW',
  approval: (s) => s.awaitingApprovalFor === 'staging',
};

/** A window twelve hours from now, an hour long: no pipeline started now is inside it. */
function farWindow(): { from: string; to: string } {
  const hour = (new Date().getUTCHours() + 12) % 24;
  const pad = (h: number) => `${String(h).padStart(2, '0')}:00`;
  return { from: pad(hour), to: pad((hour + 1) % 24) };
}

export async function measureLongWaits(ctx: BenchContext, config: LongWaitsConfig): Promise<LongWaitsResult> {
  const names = (kind: WaitKind) => Array.from({ length: config.pipelines }, (_, i) => `wait-${kind}-${String(i + 1).padStart(2, '0')}`);
  const window = farWindow();
  const apps = {
    ...Object.fromEntries(names('freeze').map((app) => [app, {}])),
    ...Object.fromEntries(names('window').map((app) => [app, { environments: { integration: { deployWindows: [window] }, staging: {}, production: {} } }])),
    ...Object.fromEntries(names('approval').map((app) => [app, { environments: { integration: {}, staging: { continuousDeployment: false }, production: {} } }])),
  };
  const bench = await openStack('long-waits', { apps, argo: { syncDelayMs: 0, healthyDelayMs: 0, pollIntervalMs: 0 }, buildDelayMs: 0, freezeRecheckInterval: SCALED_FREEZE_RECHECK });
  const taskQueue = uniqueName('bench-long-waits');
  const worker = await startBenchWorker(ctx, bench, taskQueue, { name: 'long-waits' });
  try {
    const idleSamples: number[] = [];
    /** The worker's CPU a second over a wait as long, with nothing waiting. */
    const idleCpuPerSecond = async () => {
      await sleep(2_000);
      const before = cpuSeconds(worker.pid);
      await sleep(config.waitMs);
      idleSamples.push((cpuSeconds(worker.pid) - before) / (config.waitMs / 1000));
      return idleSamples.at(-1)!;
    };

    /** Events of the pipeline and of its app's lanes, by now. */
    const eventsOf = async (handle: WorkflowHandle, app: string) => {
      let total = (await historyEvents(handle)).length;
      for (const env of ['integration', 'staging', 'production']) {
        total += await historyEvents(ctx.client.workflow.getHandle(laneWorkflowId(taskQueue, app, env))).then(
          (events) => events.length,
          () => 0,
        );
      }
      return total;
    };

    const costs: WaitCost[] = [];
    for (const kind of ['freeze', 'window', 'approval'] as const) {
      const kindApps = names(kind);
      if (kind === 'freeze') for (const app of kindApps) await bench.stack.charts.writeImageTag(app, 'integration', 'initial', { promote_deployment: true, automatic_deploys_enabled: false });
      const handles: Array<WorkflowHandle<typeof DeployPipeline>> = [];
      for (const app of kindApps) handles.push(await startCiPipeline(ctx, bench, taskQueue, app, await bench.stack.merge(app)));
      const deadline = Date.now() + 5 * 60_000;
      for (const handle of handles) {
        while (!WAITING[kind](await handle.query(statusQuery))) {
          if (Date.now() > deadline) throw new Error(`${handle.workflowId} did not reach its ${kind} wait within 5 minutes`);
          await sleep(200);
        }
      }
      // Let what reaching the wait set off (status upserts, the lane's news) settle before counting.
      await sleep(2_000);
      const before = await Promise.all(handles.map((h, i) => eventsOf(h, kindApps[i]!)));
      const cpuBefore = cpuSeconds(worker.pid);
      const began = Date.now();
      await sleep(config.waitMs);
      const waitedMs = Date.now() - began;
      const busy = cpuSeconds(worker.pid) - cpuBefore;
      const after = await Promise.all(handles.map((h, i) => eventsOf(h, kindApps[i]!)));
      await Promise.all(handles.map((h) => h.terminate('bench: measured').catch(() => undefined)));
      const cpu = Math.max(0, busy - (await idleCpuPerSecond()) * (waitedMs / 1000)) / handles.length;
      const events = after.reduce((sum, n, i) => sum + n - before[i]!, 0) / handles.length;
      const eventsToEnter = before.reduce((sum, n) => sum + n, 0) / handles.length;
      if (kind === 'freeze') {
        const looks = waitedMs / 1000;
        const looksPerDay = DAY_MS / DEFAULT_FREEZE_RECHECK_MS;
        costs.push({
          kind,
          eventsPerDay: (events / looks) * looksPerDay,
          workerCpuPerDay: (cpu / looks) * looksPerDay,
          scaledBy: `cost of a look (every ${SCALED_FREEZE_RECHECK} here, ${Math.round(looks)} looks) × ${looksPerDay} looks a day at the default ${DEFAULT_FREEZE_RECHECK_MS / 1000} s`,
          eventsToEnter,
        });
      } else {
        const scale = DAY_MS / waitedMs;
        costs.push({ kind, eventsPerDay: events * scale, workerCpuPerDay: cpu * scale, scaledBy: `cost over ${Math.round(waitedMs / 1000)} s of waiting × ${Math.round(scale)} (nothing periodic)`, eventsToEnter });
      }
      progress(`6/long waits: ${kind}: ${events.toFixed(1)} events and ${(cpu * 1000).toFixed(0)} ms worker CPU (idle taken off) per pipeline over ${(waitedMs / 1000).toFixed(0)} s`);
    }
    return { pipelines: config.pipelines, waitMs: config.waitMs, idleWorkerCpuPerSecond: median(idleSamples), costs };
  } finally {
    await worker.stop();
    await bench.close();
  }
}
