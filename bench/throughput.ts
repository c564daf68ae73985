/**
 * 2. Throughput: pipelines for many apps started at once, against as many bare workflows of the same shape
 * (as many no-op activities) started at once on the same worker. Batches alternate between the two.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { temporal as proto } from '@temporalio/proto';
import { LANE_WORKFLOW_TYPE } from '../workflows/definitions';
import { activityCount, breakdown, debugTimeline, eventTimeMs, expectSucceeded, historyEvents, localActivityOf, within, type Breakdown, openStack, serverTiming, startBenchWorker, startCiPipeline, uniqueName, type BenchContext, type ServerTiming } from './harness';
import { cpuDuring, cpuSeconds, progress } from './infra';
import { median, percentile } from './stats';

export interface ThroughputConfig {
  apps: number;
  pipelinesPerApp: number;
  /** Batches of each kind, after one warm-up batch of each. */
  rounds: number;
}

export interface BatchResult {
  /** First start to last close. */
  totalMs: number;
  p50Ms: number;
  p95Ms: number;
}

/** Medians over a batch's pipelines of where their time went; CPU seconds by process during their batches. */
export interface ThroughputProfile {
  laneWaitMs: number;
  gitStepsMs: number;
  argoWaitMs: number;
  otherActivitiesMs: number;
  queuedMs: number;
  workflowTaskMs: number;
  pipelineCpu: Record<string, number>;
  bareCpu: Record<string, number>;
  /** History events per pipeline in a batch (median over batches), in its own history and in its app's lanes'. */
  events: { pipeline: EventCensus; lanes: EventCensus; bare: EventCensus };
}

/** Events by kind: the server's work is written and read as events. */
export interface EventCensus {
  total: number;
  workflowTasks: number;
  signalsSent: number;
  signalsReceived: number;
  timers: number;
  upserts: number;
  activities: number;
  /** Local activities' markers: one event each, and no workflow task of their own. */
  localActivities: number;
}

export function census(events: proto.api.history.v1.IHistoryEvent[], per: number): EventCensus {
  const count = (has: (e: proto.api.history.v1.IHistoryEvent) => unknown) => events.filter(has).length / per;
  return {
    total: events.length / per,
    workflowTasks: count((e) => e.workflowTaskCompletedEventAttributes),
    signalsSent: count((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes),
    signalsReceived: count((e) => e.workflowExecutionSignaledEventAttributes),
    timers: count((e) => e.timerStartedEventAttributes),
    upserts: count((e) => e.upsertWorkflowSearchAttributesEventAttributes),
    activities: count((e) => e.activityTaskScheduledEventAttributes),
    localActivities: count((e) => localActivityOf(e)),
  };
}

function medianCensus(samples: EventCensus[]): EventCensus {
  const keys = Object.keys(samples[0]!) as Array<keyof EventCensus>;
  return Object.fromEntries(keys.map((key) => [key, median(samples.map((c) => c[key]))])) as unknown as EventCensus;
}

export interface ThroughputResult {
  pipelines: number;
  /** The worker's workflow cache bound (DEPLOY_MAX_CACHED_WORKFLOWS). */
  cachedWorkflows: number;
  apps: number;
  activities: number;
  rounds: number;
  pipelineBatches: BatchResult[];
  bareBatches: BatchResult[];
  /** Median batch time of the pipelines ÷ that of the bare workflows. */
  ratio: number;
  pipeline: BatchResult;
  bare: BatchResult;
  profile: ThroughputProfile;
}

function summarize(timings: ServerTiming[]): BatchResult {
  const first = Math.min(...timings.map((t) => t.startMs));
  const last = Math.max(...timings.map((t) => t.closeMs));
  const each = timings.map((t) => t.ms);
  return { totalMs: last - first, p50Ms: percentile(each, 50), p95Ms: percentile(each, 95) };
}

function medianBatch(batches: BatchResult[]): BatchResult {
  return { totalMs: median(batches.map((b) => b.totalMs)), p50Ms: median(batches.map((b) => b.p50Ms)), p95Ms: median(batches.map((b) => b.p95Ms)) };
}

export async function measureThroughput(ctx: BenchContext, config: ThroughputConfig): Promise<ThroughputResult> {
  const apps = Array.from({ length: config.apps }, (_, i) => `app${String(i + 1).padStart(2, '0')}`);
  const bench = await openStack('throughput', {
    // Sibling commits on branches of their own (below) diverge from one another: each deploys over the last, as
    // every pipeline did when this item was set, rather than waiting for a person.
    apps: Object.fromEntries(apps.map((app) => [app, { onDivergence: 'deploy' as const }])),
    argo: { syncDelayMs: 0, healthyDelayMs: 0, pollIntervalMs: 0 },
    buildDelayMs: 0,
  });
  const taskQueue = uniqueName('bench-throughput');
  // Sized for the load, as an operator would: every pipeline of a batch is under way at once, with its app's
  // three lanes. A smaller cache (the default) would replay pipelines at every step, and measure that instead.
  const cachedWorkflows = config.apps * config.pipelinesPerApp + config.apps * 3;
  const worker = await startBenchWorker(ctx, bench, taskQueue, { name: 'throughput', maxCachedWorkflows: cachedWorkflows });
  let batch = 0;
  try {
    // Commits on branches of their own: CI pipelines of one app started at once would otherwise supersede each
    // other (an older commit never deploys over a newer one), and not every pipeline would reach SUCCEEDED.
    const pipelines = async (perApp: number) => {
      batch++;
      const commits: Array<{ app: string; sha: string }> = [];
      for (const app of apps) {
        for (let i = 0; i < perApp; i++) commits.push({ app, sha: await bench.stack.merge(app, { branch: `batch${batch}-${i}` }) });
      }
      const handles = await Promise.all(commits.map(({ app, sha }) => startCiPipeline(ctx, bench, taskQueue, app, sha)));
      await Promise.all(handles.map((handle) => expectSucceeded(handle)));
      return handles;
    };
    const bares = async (count: number, activities: number) => {
      const handles = await Promise.all(
        Array.from({ length: count }, () => ctx.client.workflow.start('BareWorkflow', { taskQueue, workflowId: uniqueName('bare'), args: [activities] })),
      );
      await within(15 * 60_000, `${count} bare workflows`, Promise.all(handles.map((handle) => handle.result())));
      return handles;
    };
    const timings = (handles: WorkflowHandle[]) => Promise.all(handles.map((handle) => serverTiming(handle)));
    /** Every lane run's events written between `fromMs` and `toMs`: lanes outlive batches and continue as new. */
    const laneEventsBetween = async (fromMs: number, toMs: number) => {
      const events: proto.api.history.v1.IHistoryEvent[] = [];
      for await (const lane of ctx.client.workflow.list({ query: `WorkflowType = '${LANE_WORKFLOW_TYPE}' AND TaskQueue = '${taskQueue}'` })) {
        const history = await historyEvents(ctx.client.workflow.getHandle(lane.workflowId, lane.runId));
        events.push(...history.filter((event) => eventTimeMs(event) >= fromMs && eventTimeMs(event) <= toMs));
      }
      return events;
    };

    const count = apps.length * config.pipelinesPerApp;
    const warmupPerApp = Math.max(1, Math.ceil(config.pipelinesPerApp / 4));
    progress(`2/throughput: warm-up, ${warmupPerApp * apps.length} pipelines`);
    const warm = await pipelines(warmupPerApp);
    const activities = await activityCount(warm[0]!);
    await bares(warmupPerApp * apps.length, activities);

    const pipelineBatches: BatchResult[] = [];
    const bareBatches: BatchResult[] = [];
    const breakdowns: Breakdown[] = [];
    const pipelineCpu: Array<Record<string, number>> = [];
    const pipelineEvents: EventCensus[] = [];
    const laneEvents: EventCensus[] = [];
    const bareEvents: EventCensus[] = [];
    const bareCpu: Array<Record<string, number>> = [];
    const pids = { worker: worker.pid, 'Temporal server': ctx.temporal.child.pid, 'bench (simulators, client)': process.pid };
    const cpuParts = () =>
      `bench ${cpuSeconds(process.pid, 'own')} s + its children (git) ${cpuSeconds(process.pid, 'children')} s; worker ${cpuSeconds(worker.pid, 'own')} s + its children (git) ${cpuSeconds(worker.pid, 'children')} s`;
    if (process.env.BENCH_DEBUG === '1') progress(`2/throughput: CPU so far: ${cpuParts()}`);
    for (let round = 0; round < config.rounds; round++) {
      const order = round % 2 === 0 ? (['pipelines', 'bare'] as const) : (['bare', 'pipelines'] as const);
      for (const kind of order) {
        if (kind === 'pipelines') {
          const { result: handles, cpu } = await cpuDuring(pids, () => pipelines(config.pipelinesPerApp));
          pipelineCpu.push(cpu);
          const histories = await Promise.all(handles.map((handle) => historyEvents(handle)));
          for (const events of histories) breakdowns.push(breakdown(events));
          const result = summarize(await timings(handles));
          pipelineEvents.push(census(histories.flat(), handles.length));
          const first = Math.min(...histories.map((events) => eventTimeMs(events[0]!)));
          laneEvents.push(census(await laneEventsBetween(first, first + result.totalMs), handles.length));
          const slowest = (await timings(handles)).reduce((worst, t, i, all) => (t.ms > all[worst]!.ms ? i : worst), 0);
          await debugTimeline(handles[slowest]!, `throughput-slowest-pipeline-${round + 1}`);
          pipelineBatches.push(result);
          progress(`2/throughput: round ${round + 1}/${config.rounds}: ${count} pipelines in ${(result.totalMs / 1000).toFixed(1)} s`);
        } else {
          const { result: handles, cpu } = await cpuDuring(pids, () => bares(count, activities));
          bareCpu.push(cpu);
          bareEvents.push(census((await Promise.all(handles.map((handle) => historyEvents(handle)))).flat(), handles.length));
          const result = summarize(await timings(handles));
          bareBatches.push(result);
          progress(`2/throughput: round ${round + 1}/${config.rounds}: ${count} bare workflows in ${(result.totalMs / 1000).toFixed(1)} s`);
        }
      }
    }
    if (process.env.BENCH_DEBUG === '1') progress(`2/throughput: CPU so far: ${cpuParts()}`);
    const pipeline = medianBatch(pipelineBatches);
    const bare = medianBatch(bareBatches);
    const of = (pick: (b: Breakdown) => number) => median(breakdowns.map(pick));
    const git = (b: Breakdown) => (b.activityMs.compareWithDeployed ?? 0) + (b.activityMs.bumpImageTag ?? 0);
    const argo = (b: Breakdown) => b.activityMs.waitForArgoSync ?? 0;
    const cpuMedian = (samples: Array<Record<string, number>>) => Object.fromEntries(Object.keys(pids).map((name) => [name, median(samples.map((c) => c[name]!))]));
    const profile: ThroughputProfile = {
      laneWaitMs: of((b) => b.laneWaitMs),
      gitStepsMs: of(git),
      argoWaitMs: of(argo),
      otherActivitiesMs: of((b) => b.inActivitiesMs - git(b) - argo(b)),
      queuedMs: of((b) => b.queuedMs),
      workflowTaskMs: of((b) => b.workflowTaskMs),
      pipelineCpu: cpuMedian(pipelineCpu),
      bareCpu: cpuMedian(bareCpu),
      events: { pipeline: medianCensus(pipelineEvents), lanes: medianCensus(laneEvents), bare: medianCensus(bareEvents) },
    };
    return { pipelines: count, cachedWorkflows, apps: apps.length, activities, rounds: config.rounds, pipelineBatches, bareBatches, ratio: pipeline.totalMs / bare.totalMs, pipeline, bare, profile };
  } finally {
    await worker.stop();
    await bench.close();
  }
}
