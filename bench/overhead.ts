/**
 * 1. Per-pipeline overhead: a three-environment continuous-deployment pipeline, start to SUCCEEDED, against a
 * bare workflow running as many no-op activities in sequence on the same worker. Pairs run one after the
 * other, alternating which goes first, so that the machine's noise hits both.
 */
import { activityCount, breakdown, debugTimeline, expectSucceeded, historyEvents, type Breakdown, openStack, serverTiming, startBenchWorker, startCiPipeline, uniqueName, type BenchContext } from './harness';
import type { WorkflowHandle } from '@temporalio/client';
import { progress } from './infra';
import { median } from './stats';

export interface OverheadConfig {
  warmup: number;
  runs: number;
}

export interface OverheadResult {
  runs: number;
  activities: number;
  pipelineMs: number[];
  bareMs: number[];
  /** Pipeline ÷ bare of each pair. */
  pairRatios: number[];
  medianPipelineMs: number;
  medianBareMs: number;
  /** Median of the pairs' ratios: the headline number. */
  ratio: number;
  /** Time outside activities (start to close minus time inside activities): orchestration, lanes included. */
  medianPipelineOutsideMs: number;
  medianBareOutsideMs: number;
  outsideRatio: number;
  /** Median time inside each activity type, summed over a pipeline's calls. */
  activityMs: Record<string, number>;
}

const APP = 'overhead';

export async function measureOverhead(ctx: BenchContext, config: OverheadConfig): Promise<OverheadResult> {
  const bench = await openStack('overhead', {
    apps: { [APP]: {} },
    argo: { syncDelayMs: 0, healthyDelayMs: 0, pollIntervalMs: 0 },
    buildDelayMs: 0,
  });
  const taskQueue = uniqueName('bench-overhead');
  const worker = await startBenchWorker(ctx, bench, taskQueue, { name: 'overhead' });
  try {
    const pipeline = async () => {
      const sha = await bench.stack.merge(APP);
      const handle = await startCiPipeline(ctx, bench, taskQueue, APP, sha);
      await expectSucceeded(handle);
      return handle;
    };
    let activities = 0;
    const bare = async () => {
      const handle = await ctx.client.workflow.start('BareWorkflow', { taskQueue, workflowId: uniqueName('bare'), args: [activities] });
      await handle.result();
      return handle;
    };

    // The first pipeline tells how many activities a pipeline runs; the baseline runs as many.
    activities = await activityCount(await pipeline());
    progress(`1/overhead: a three-environment pipeline runs ${activities} activities; warming up`);
    for (let i = 1; i < config.warmup; i++) await pipeline();
    for (let i = 0; i < config.warmup; i++) await bare();

    const pipelineMs: number[] = [];
    const bareMs: number[] = [];
    const pairRatios: number[] = [];
    const pipelineBreakdowns: Breakdown[] = [];
    const bareBreakdowns: Breakdown[] = [];
    const timed = async (run: () => Promise<WorkflowHandle>, into: Breakdown[]) => {
      const handle = await run();
      into.push(breakdown(await historyEvents(handle)));
      return (await serverTiming(handle)).ms;
    };
    for (let i = 0; i < config.runs; i++) {
      let p: number;
      let b: number;
      if (i % 2 === 0) {
        p = await timed(pipeline, pipelineBreakdowns);
        b = await timed(bare, bareBreakdowns);
      } else {
        b = await timed(bare, bareBreakdowns);
        p = await timed(pipeline, pipelineBreakdowns);
      }
      pipelineMs.push(p);
      bareMs.push(b);
      pairRatios.push(p / b);
      if ((i + 1) % 5 === 0 || i + 1 === config.runs) progress(`1/overhead: ${i + 1}/${config.runs} pairs (last: pipeline ${p} ms, bare ${b} ms)`);
    }
    await debugTimeline(await pipeline(), 'overhead-pipeline');
    await debugTimeline(await bare(), 'overhead-bare');
    const outside = (b: Breakdown) => b.totalMs - b.inActivitiesMs;
    const medianPipelineOutsideMs = median(pipelineBreakdowns.map(outside));
    const medianBareOutsideMs = median(bareBreakdowns.map(outside));
    const types = [...new Set(pipelineBreakdowns.flatMap((b) => Object.keys(b.activityMs)))];
    const activityMs = Object.fromEntries(types.map((type) => [type, median(pipelineBreakdowns.map((b) => b.activityMs[type] ?? 0))]));
    return {
      runs: config.runs,
      activities,
      pipelineMs,
      bareMs,
      pairRatios,
      medianPipelineMs: median(pipelineMs),
      medianBareMs: median(bareMs),
      ratio: median(pairRatios),
      medianPipelineOutsideMs,
      medianBareOutsideMs,
      outsideRatio: medianPipelineOutsideMs / medianBareOutsideMs,
      activityMs,
    };
  } finally {
    await worker.stop();
    await bench.close();
  }
}
