/**
 * 3. Parked pipelines: many pipelines waiting for approval on one production worker process (worker/main.ts,
 * compiled, prebundled), its resident memory sampled from /proc, then approvals one at a time, each timed
 * from the approve call to the start of the pipeline's next activity (server event times; for a local activity,
 * when the workflow asked for it).
 *
 * To park thousands of pipelines in minutes, every app's commit already runs in integration (and staging):
 * a pipeline finds integration identical, marks it deployed without a charts commit, and waits for approval
 * to go to staging. Its history and state are those of any pipeline waiting for approval, minus one deploy's
 * activities; an approval then takes the staging lane (the activity timed) and finds staging identical too.
 */
import { randomBytes } from 'node:crypto';
import { approvePipeline } from '../client/pipelines';
import { loadWorkerSettings } from '../common/settings';
import { DeployApp, DeployCommit, DeployStatusAttribute, DeployTrigger, WORKFLOW_TYPE } from '../workflows/definitions';
import { staticSummary } from '../workflows/details';
import type { DeployPipeline } from '../workflows/deploy-pipeline';
import type { PipelineInput } from '../common/types';
import { debugTimeline, eventTimeMs, historyEvents, inBatches, localActivityOf, nodeArgs, openStack, uniqueName, workerEnv, type BenchContext } from './harness';
import { cpuSeconds, progress, residentMemory, sleep, startChild } from './infra';
import { percentile } from './stats';

export interface ParkedConfig {
  pipelines: number;
  apps: number;
  approvals: number;
}

export interface ParkedResult {
  pipelines: number;
  apps: number;
  /** How long starting them and their reaching AWAITING_APPROVAL took. */
  parkMs: number;
  /** Pipelines started and not yet parked, at most. */
  underWay: number;
  /**
   * How long each fifth of the pipelines took to park (a fifth of 5,000 is a thousand), as often as the bench
   * counts them (every 250 ms while it waits for room to start more, every 2 s after). The last ÷ the first says
   * whether parking slows as pipelines pile up.
   */
  fifthsMs: number[];
  /** CPU seconds the worker and the Temporal server used while each fifth parked: which of them slows. */
  fifthsCpu: Array<{ worker: number; server: number }>;
  lastFifthToFirst: number;
  /** Resident memory once all are parked and the worker is quiet. */
  parkedRss: number;
  /** Highest resident memory the kernel saw (VmHWM) over the whole measurement. */
  peakRss: number;
  approvals: number;
  approvalMs: number[];
  p50Ms: number;
  p95Ms: number;
  cache: WorkerCache;
}

/** The parked worker's workflow cache bound, as the worker reads it from its environment. */
export interface WorkerCache {
  workflows: number;
  source: 'DEPLOY_MAX_CACHED_WORKFLOWS default' | 'DEPLOY_MAX_CACHED_WORKFLOWS set';
}

/**
 * Pipelines started and not yet waiting for approval, at most: with the lanes they keep busy (two per app) they
 * fit in the worker's workflow cache, as the workflows at work should. Beyond it, pipelines and lanes replay at
 * every step, and parking slows as the lanes' histories grow.
 */
const maxUnderWay = (apps: number, cachedWorkflows: number) => Math.max(10, cachedWorkflows - 2 * apps - 20);

const ENVIRONMENTS = { integration: { continuousDeployment: true }, staging: { continuousDeployment: false } };

export async function measureParked(ctx: BenchContext, config: ParkedConfig): Promise<ParkedResult> {
  const apps = Array.from({ length: config.apps }, (_, i) => `parked${String(i + 1).padStart(3, '0')}`);
  const shaOf = new Map(apps.map((app) => [app, randomBytes(20).toString('hex')]));
  const date = new Date(Date.now() - 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const bench = await openStack('parked', {
    apps: Object.fromEntries(
      apps.map((app) => [
        app,
        {
          environments: ENVIRONMENTS,
          initialTag: shaOf.get(app)!,
          history: [{ sha: shaOf.get(app)!, parents: [], authorLogin: 'octocat', message: 'Release', date }],
        },
      ]),
    ),
    argo: { syncDelayMs: 0, healthyDelayMs: 0, pollIntervalMs: 0 },
    buildDelayMs: 0,
  });
  for (const app of apps) await bench.stack.pushImage(app, shaOf.get(app)!);
  const taskQueue = uniqueName('bench-parked');
  const env = workerEnv(ctx, bench, taskQueue, { env: { DEPLOY_WORKFLOW_BUNDLE: ctx.build.productBundle } });
  const cache: WorkerCache = {
    workflows: loadWorkerSettings(env).maxCachedWorkflows,
    source: env.DEPLOY_MAX_CACHED_WORKFLOWS === undefined ? 'DEPLOY_MAX_CACHED_WORKFLOWS default' : 'DEPLOY_MAX_CACHED_WORKFLOWS set',
  };
  const worker = startChild('production worker (parked)', process.execPath, [...nodeArgs(ctx, 'parked'), ctx.build.workerMain], { env, logName: 'worker-parked' });
  let peak = 0;
  const sampler = setInterval(() => {
    const memory = residentMemory(worker.pid);
    if (memory) peak = Math.max(peak, memory.peak, memory.rss);
  }, 500);
  const rssNow = () => residentMemory(worker.pid)?.rss ?? Number.NaN;
  try {
    const ids = Array.from({ length: config.pipelines }, (_, i) => ({ app: apps[i % apps.length]!, workflowId: `parked-${taskQueue}-${i}` }));
    const started = Date.now();
    const fifth = Math.max(1, Math.round(config.pipelines / 5));
    const fifthsDoneAt: number[] = [];
    const cpuNow = () => ({ worker: cpuSeconds(worker.pid), server: cpuSeconds(ctx.temporal.child.pid) });
    const cpuAt = [cpuNow()];
    const sawParked = (count: number) => {
      while (count >= (fifthsDoneAt.length + 1) * fifth && fifthsDoneAt.length < 5) {
        fifthsDoneAt.push(Date.now());
        cpuAt.push(cpuNow());
      }
      return count;
    };
    progress(`3/parked: starting ${config.pipelines} pipelines for ${apps.length} apps (worker pid ${worker.pid})`);
    // Pipelines park over days in real life, not all in one minute: a worker with thousands of pipelines at
    // work at once and a cache for a few hundred would replay histories all day. Keep the ones under way bounded.
    const underWay = maxUnderWay(apps.length, cache.workflows);
    const parkedQuery = `TaskQueue = "${taskQueue}" AND DeployStatus = "AWAITING_APPROVAL"`;
    let startedCount = 0;
    let parkedCount = 0;
    let counting: Promise<void> | undefined;
    const roomToStart = async () => {
      while (startedCount - parkedCount >= underWay) {
        if (worker.exited) throw new Error(`the worker ${worker.exited}:\n${worker.outputTail(30)}`);
        counting ??= ctx.client.workflow
          .count(parkedQuery)
          .then(({ count }) => void (parkedCount = sawParked(count)))
          .finally(() => void (counting = undefined));
        await counting;
        if (startedCount - parkedCount >= underWay) await sleep(250);
      }
      startedCount++;
    };
    await inBatches(
      ids,
      16,
      async ({ app, workflowId }) => {
        await roomToStart();
        const sha = shaOf.get(app)!;
        const input: PipelineInput = { app, ref: sha, sha, trigger: 'ci', requestedBy: 'ci' };
        // What startPipeline sends, with an ID of our own: one commit per app, many pipelines.
        await ctx.client.workflow.start<typeof DeployPipeline>(WORKFLOW_TYPE, {
          taskQueue,
          workflowId,
          args: [input],
          staticSummary: staticSummary(app, sha, Object.keys(ENVIRONMENTS)),
          typedSearchAttributes: [
            { key: DeployApp, value: app },
            { key: DeployCommit, value: sha },
            { key: DeployTrigger, value: 'ci' },
            { key: DeployStatusAttribute, value: 'RESOLVING' },
          ],
        });
      },
      (done) => progress(`3/parked: ${done}/${config.pipelines} started; worker RSS ${Math.round(rssNow() / 2 ** 20)} MiB`),
      1000,
    );

    const query = `TaskQueue = "${taskQueue}" AND DeployStatus = "AWAITING_APPROVAL"`;
    let lastReport = 0;
    for (;;) {
      if (worker.exited) throw new Error(`the worker ${worker.exited}:\n${worker.outputTail(30)}`);
      const count = sawParked((await ctx.client.workflow.count(query)).count);
      if (count >= config.pipelines) break;
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        progress(`3/parked: ${count}/${config.pipelines} awaiting approval; worker RSS ${Math.round(rssNow() / 2 ** 20)} MiB`);
      }
      if (Date.now() - started > 30 * 60_000) throw new Error(`only ${count} of ${config.pipelines} pipelines reached AWAITING_APPROVAL in 30 minutes`);
      await sleep(2000);
    }
    const parkMs = Date.now() - started;
    const fifthsMs = fifthsDoneAt.map((at, i) => at - (i === 0 ? started : fifthsDoneAt[i - 1]!));
    const fifthsCpu = cpuAt.slice(1).map((cpu, i) => ({ worker: cpu.worker - cpuAt[i]!.worker, server: cpu.server - cpuAt[i]!.server }));
    await debugTimeline(ctx.client.workflow.getHandle(ids.at(-1)!.workflowId), 'parked-pipeline');
    await debugTimeline(ctx.client.workflow.getHandle(ids[0]!.workflowId), 'parked-pipeline-first');
    progress(`3/parked: all ${config.pipelines} awaiting approval after ${(parkMs / 1000).toFixed(0)} s; letting the worker settle`);
    await sleep(10_000);
    const parkedRss = rssNow();
    progress(`3/parked: worker RSS ${Math.round(parkedRss / 2 ** 20)} MiB with ${config.pipelines} parked; approving ${config.approvals}, one at a time`);

    // Spread over the apps and over the start order, so the cache holds some and not others, as it would.
    const step = Math.max(1, Math.floor(ids.length / config.approvals));
    const chosen = Array.from({ length: Math.min(config.approvals, ids.length) }, (_, i) => ids[i * step + (i % Math.min(step, apps.length))]!);
    const approvalMs: number[] = [];
    let slowest: { workflowId: string; ms: number } | undefined;
    for (const { workflowId } of chosen) {
      const handle = ctx.client.workflow.getHandle(workflowId);
      const before = (await historyEvents(handle)).length;
      const t0 = Date.now();
      await approvePipeline(ctx.client, workflowId, { environment: 'staging', approver: 'bench-approver' });
      let startedAt: number | undefined;
      while (startedAt === undefined) {
        const events = (await historyEvents(handle)).slice(before);
        const next = events.find((event) => event.activityTaskStartedEventAttributes || localActivityOf(event));
        if (next) startedAt = next.activityTaskStartedEventAttributes ? eventTimeMs(next) : localActivityOf(next)!.scheduledMs;
        else await sleep(25);
      }
      approvalMs.push(startedAt - t0);
      if (!slowest || startedAt - t0 >= slowest.ms) slowest = { workflowId, ms: startedAt - t0 };
      if (approvalMs.length % 25 === 0) progress(`3/parked: ${approvalMs.length}/${config.approvals} approvals; p95 so far ${percentile(approvalMs, 95)} ms`);
    }
    if (slowest) await debugTimeline(ctx.client.workflow.getHandle(slowest.workflowId), 'parked-slowest-approval');
    const memory = residentMemory(worker.pid);
    peak = Math.max(peak, memory?.peak ?? 0);
    return {
      pipelines: config.pipelines,
      apps: apps.length,
      parkMs,
      underWay,
      parkedRss,
      peakRss: peak,
      approvals: approvalMs.length,
      approvalMs,
      fifthsMs,
      fifthsCpu,
      lastFifthToFirst: fifthsMs.at(-1)! / fifthsMs[0]!,
      p50Ms: percentile(approvalMs, 50),
      p95Ms: percentile(approvalMs, 95),
      cache,
    };
  } finally {
    clearInterval(sampler);
    await worker.stop();
    await bench.close();
  }
}
