/**
 * 2a. Bursts of merges: for each of many apps, several commits merged within a second and their CI pipelines started
 * at once; how long until every environment of every app runs its newest commit. The floor, measured in the same
 * run and interleaved with it: one commit per app, one deploy per environment. With the lanes' newest-first order a
 * burst costs at most one deploy more per environment than the floor (the first to ask deploys before the others
 * have queued), and the older pipelines end SUPERSEDED without deploying.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { DeployPipeline } from '../workflows/deploy-pipeline';
import { openStack, serverTiming, startBenchWorker, startCiPipeline, uniqueName, within, type BenchContext } from './harness';
import { cpuDuring, progress } from './infra';
import { median } from './stats';

export interface BurstConfig {
  apps: number;
  commitsPerApp: number;
  /** Bursts and floors each, after a warm-up of each. */
  rounds: number;
}

export interface BurstResult {
  apps: number;
  commitsPerApp: number;
  rounds: number;
  burstMs: number[];
  floorMs: number[];
  /** Median burst ÷ median floor. */
  ratio: number;
  /** How the burst's older pipelines ended (median count per burst). */
  superseded: number;
  succeeded: number;
  /** Charts commits per environment in a burst (median over environments of all bursts), and the most seen. */
  deploysPerEnvironment: { median: number; max: number };
  cpu: { burst: Record<string, number>; floor: Record<string, number> };
}

export async function measureBurst(ctx: BenchContext, config: BurstConfig): Promise<BurstResult> {
  const apps = Array.from({ length: config.apps }, (_, i) => `burst${String(i + 1).padStart(2, '0')}`);
  const bench = await openStack('burst', { apps: Object.fromEntries(apps.map((app) => [app, {}])), argo: { syncDelayMs: 0, healthyDelayMs: 0, pollIntervalMs: 0 }, buildDelayMs: 0 });
  const taskQueue = uniqueName('bench-burst');
  const cachedWorkflows = config.apps * config.commitsPerApp + config.apps * 3;
  const worker = await startBenchWorker(ctx, bench, taskQueue, { name: 'burst', maxCachedWorkflows: cachedWorkflows });
  const pids = { worker: worker.pid, 'Temporal server': ctx.temporal.child.pid, 'bench (simulators, client)': process.pid };
  const environments = bench.stack.catalogue.apps.get(apps[0]!)!.environments.map((e) => e.name);
  const syncCount = (application: string) => bench.stack.argo.syncHistory.filter((r) => r.name === application).length;
  const deploysPerEnvironment: number[] = [];
  const endings = { superseded: [] as number[], succeeded: [] as number[] };
  try {
    /** Merges `perApp` commits on each app's main branch, then starts all their pipelines at once. Returns first start → last app's newest deployed everywhere. */
    const burst = async (perApp: number, record: boolean): Promise<number> => {
      const commits: Array<{ app: string; sha: string }> = [];
      for (let i = 0; i < perApp; i++) for (const app of apps) commits.push({ app, sha: await bench.stack.merge(app) });
      const chartsBefore = new Map(apps.flatMap((app) => environments.map((env) => [`${app}/${env}`, syncCount(`${app}-${env}`)] as const)));
      const handles: Array<WorkflowHandle<typeof DeployPipeline>> = await Promise.all(commits.map(({ app, sha }) => startCiPipeline(ctx, bench, taskQueue, app, sha)));
      const results = await within(15 * 60_000, `a burst of ${handles.length} pipelines`, Promise.all(handles.map((h) => h.result())));
      const newest = new Map<string, number>();
      commits.forEach(({ app }, i) => newest.set(app, i));
      for (const [app, i] of newest) {
        if (results[i]!.status !== 'SUCCEEDED') throw new Error(`the newest pipeline of ${app} ended ${results[i]!.status}: ${results[i]!.failure ?? ''}`);
        for (const env of environments) {
          if (bench.stack.argo.currentTag(app, env) !== commits[i]!.sha) throw new Error(`${app} ${env} does not run its newest commit`);
        }
      }
      const others = results.filter((_, i) => ![...newest.values()].includes(i));
      const unexpected = others.find((r) => r.status !== 'SUPERSEDED' && r.status !== 'SUCCEEDED');
      if (unexpected) throw new Error(`an older pipeline ended ${unexpected.status}: ${unexpected.failure ?? ''}`);
      if (record && perApp > 1) {
        endings.superseded.push(others.filter((r) => r.status === 'SUPERSEDED').length);
        endings.succeeded.push(others.filter((r) => r.status === 'SUCCEEDED').length);
        for (const app of apps) for (const env of environments) deploysPerEnvironment.push(syncCount(`${app}-${env}`) - chartsBefore.get(`${app}/${env}`)!);
      }
      const timings = await Promise.all(handles.map((h) => serverTiming(h)));
      const first = Math.min(...timings.map((t) => t.startMs));
      return Math.max(...[...newest.values()].map((i) => timings[i]!.closeMs)) - first;
    };

    progress(`2a/burst: warm-up, ${apps.length} apps × ${config.commitsPerApp} commits and × 1`);
    await burst(config.commitsPerApp, false);
    await burst(1, false);
    const burstMs: number[] = [];
    const floorMs: number[] = [];
    const burstCpu: Array<Record<string, number>> = [];
    const floorCpu: Array<Record<string, number>> = [];
    for (let round = 0; round < config.rounds; round++) {
      const order = round % 2 === 0 ? (['burst', 'floor'] as const) : (['floor', 'burst'] as const);
      for (const kind of order) {
        const perApp = kind === 'burst' ? config.commitsPerApp : 1;
        const { result, cpu } = await cpuDuring(pids, () => burst(perApp, true));
        (kind === 'burst' ? burstMs : floorMs).push(result);
        (kind === 'burst' ? burstCpu : floorCpu).push(cpu);
        progress(`2a/burst: round ${round + 1}/${config.rounds}: ${apps.length} apps × ${perApp} in ${(result / 1000).toFixed(1)} s`);
      }
    }
    const cpuMedian = (samples: Array<Record<string, number>>) => Object.fromEntries(Object.keys(pids).map((name) => [name, median(samples.map((c) => c[name]!))]));
    return {
      apps: apps.length,
      commitsPerApp: config.commitsPerApp,
      rounds: config.rounds,
      burstMs,
      floorMs,
      ratio: median(burstMs) / median(floorMs),
      superseded: median(endings.superseded),
      succeeded: median(endings.succeeded),
      deploysPerEnvironment: { median: median(deploysPerEnvironment), max: Math.max(...deploysPerEnvironment) },
      cpu: { burst: cpuMedian(burstCpu), floor: cpuMedian(floorCpu) },
    };
  } finally {
    await worker.stop();
    await bench.close();
  }
}
