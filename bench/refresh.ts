/**
 * 5. Merge to production with realistic delays, on GOV.UK's topology: the environment's own Argo CD, where the app
 * of apps `app-config` renders the app's Application from the image-tag files and polls git every 180 s (Argo CD's
 * default). GOV.UK's flow waits for that poll; then app-config syncs, the app's Application syncs and rolls out,
 * and Argo CD's notification starts the post-sync workflow. Ours refreshes app-config right after the bump, waits
 * for it, then for the app.
 *
 * Time-scaled: every duration of the simulated world (the poll, the syncs, the rollout, the smoke check's answer)
 * and the worker's Argo CD polling are divided by SCALE, so that the 180 s poll becomes 3 s. What is not scaled is
 * the product's own fixed cost (Temporal, the git push, HTTP round trips); multiplied back with the rest, it would
 * count SCALE times. So a third flow measures it: ours on a stack with no delays at all. A flow's real-world
 * estimate is (measured − fixed) × SCALE + fixed; the time saved is the difference of two flows, where the fixed
 * cost cancels, times SCALE.
 *
 * The one-environment pipeline deploys, alternately, on a worker as shipped and on one whose Argo CD client drops
 * the refresh (bench/worker.ts, BENCH_ARGO_REFRESH=off), so that only app-config's poll notices the charts commit.
 * Before each of the latter a random pause puts the commit at a random point of the poll cycle, as a merge would
 * land. Both flows are timed alike, from the deploy's start (lane taken) until the simulated cluster reports the
 * app Healthy on our image: where GOV.UK's post-sync starts. Ours to "deployed" (our pipeline noticing, the smoke
 * test) is reported beside it.
 */
import { DEFAULT_POLLING } from '../common/settings';
import type { ArgoCdSimulator } from '../simulators/argocd';
import { expectSucceeded, openStack, startBenchWorker, startCiPipeline, uniqueName, type BenchContext, type BenchStack } from './harness';
import { progress, sleep } from './infra';
import { mean } from './stats';

export interface RefreshConfig {
  trials: number;
}

/** Real-world durations: Argo CD's default poll, the sandbox's default delays, the worker's default polling. */
export const REAL = {
  argoPollMs: 180_000,
  syncMs: 2000,
  rolloutMs: 2000,
  smokeMs: 500,
  pollInitialMs: DEFAULT_POLLING.initialIntervalMs,
  pollMaxMs: DEFAULT_POLLING.maxIntervalMs,
};
export const SCALE = 60;

export interface RefreshResult {
  trials: number;
  scale: number;
  /** Per trial, deploy start → the app Healthy on our image, in scaled milliseconds. */
  refreshMs: number[];
  pollMs: number[];
  /** Ours, deploy start → deployed (smoke tests passed), scaled milliseconds. */
  refreshDeployedMs: number[];
  /** Ours with no simulated delays: the product's own fixed cost, real milliseconds, not scaled. */
  fixedMs: number[];
  /** Real-world estimates: (mean − fixed) × scale + fixed. */
  refreshRealMs: number;
  pollRealMs: number;
  refreshDeployedRealMs: number;
  /** Per environment: the mean difference times the scale (the fixed cost cancels). */
  savedRealMs: number;
  /** GOV.UK's flow over ours, real-world estimates. */
  ratio: number;
}

const APP = 'refresh';
const ENVIRONMENT = 'production';
const APP_OF_APPS = 'app-config';

export async function measureRefresh(ctx: BenchContext, config: RefreshConfig): Promise<RefreshResult> {
  const scaled = (realMs: number) => Math.max(1, Math.round(realMs / SCALE));
  const topology = { perEnvironment: true, appOfApps: APP_OF_APPS };
  const apps = { [APP]: { environments: { [ENVIRONMENT]: { continuousDeployment: true } } } };
  const realistic = await openStack('refresh', {
    apps,
    argo: { ...topology, syncDelayMs: scaled(REAL.syncMs), healthyDelayMs: scaled(REAL.rolloutMs), pollIntervalMs: scaled(REAL.argoPollMs) },
    buildDelayMs: 0,
  });
  const instant = await openStack('refresh-fixed', { apps, argo: { ...topology, syncDelayMs: 0, healthyDelayMs: 0, pollIntervalMs: 0 }, buildDelayMs: 0 });
  realistic.stack.endpoints.injectFault({ pathPattern: /\/healthcheck$/, delayMs: scaled(REAL.smokeMs), times: Infinity });
  const polling = { initialIntervalMs: scaled(REAL.pollInitialMs), maxIntervalMs: scaled(REAL.pollMaxMs) };
  const flows = { refresh: uniqueName('bench-refresh'), poll: uniqueName('bench-poll'), fixed: uniqueName('bench-fixed') };
  const workers = [
    await startBenchWorker(ctx, realistic, flows.refresh, { name: 'refresh', polling }),
    await startBenchWorker(ctx, realistic, flows.poll, { name: 'poll', polling, argoRefresh: false }),
    await startBenchWorker(ctx, instant, flows.fixed, { name: 'fixed', polling }),
  ];
  try {
    const deploy = async (bench: BenchStack, taskQueue: string): Promise<{ healthyMs: number; deployedMs: number }> => {
      const sha = await bench.stack.merge(APP);
      const argo = bench.stack.argoOf(ENVIRONMENT);
      if (taskQueue === flows.poll) await sleep(Math.random() * scaled(REAL.argoPollMs));
      const asked = argo.requests.length;
      const status = await expectSucceeded(await startCiPipeline(ctx, bench, taskQueue, APP, sha));
      if (taskQueue === flows.poll && argo.requests.slice(asked).some((request) => request.url.includes('refresh='))) {
        throw new Error("the baseline asked Argo CD to refresh: it must wait for app-config's poll");
      }
      const env = status.environments[0]!;
      const startedAt = Date.parse(env.startedAt!);
      return { healthyMs: healthyAt(argo, sha) - startedAt, deployedMs: Date.parse(env.finishedAt!) - startedAt };
    };
    await deploy(realistic, flows.refresh);
    await deploy(instant, flows.fixed);
    const refreshMs: number[] = [];
    const refreshDeployedMs: number[] = [];
    const pollMs: number[] = [];
    const fixedMs: number[] = [];
    for (let i = 0; i < config.trials; i++) {
      const ours = await deploy(realistic, flows.refresh);
      refreshMs.push(ours.healthyMs);
      refreshDeployedMs.push(ours.deployedMs);
      pollMs.push((await deploy(realistic, flows.poll)).healthyMs);
      fixedMs.push((await deploy(instant, flows.fixed)).healthyMs);
      progress(`5/refresh: ${i + 1}/${config.trials} (last, scaled 1/${SCALE}: refresh ${refreshMs.at(-1)} ms, app-config's poll ${pollMs.at(-1)} ms; fixed cost ${fixedMs.at(-1)} ms)`);
    }
    const fixed = mean(fixedMs);
    const real = (measured: number[]) => Math.max(0, mean(measured) - fixed) * SCALE + fixed;
    const refreshRealMs = real(refreshMs);
    const pollRealMs = real(pollMs);
    return {
      trials: config.trials,
      scale: SCALE,
      refreshMs,
      pollMs,
      refreshDeployedMs,
      fixedMs,
      refreshRealMs,
      pollRealMs,
      refreshDeployedRealMs: real(refreshDeployedMs),
      savedRealMs: (mean(pollMs) - mean(refreshMs)) * SCALE,
      ratio: pollRealMs / refreshRealMs,
    };
  } finally {
    for (const worker of workers) await worker.stop();
    await realistic.close();
    await instant.close();
  }
}

/** When the app's rollout of `tag` turned Healthy in the simulated cluster: what starts GOV.UK's post-sync workflow. */
function healthyAt(argo: ArgoCdSimulator, tag: string): number {
  const rollout = argo.syncHistory.find((record) => record.name === APP && record.tag === tag && record.health === 'Healthy');
  if (!rollout?.settledAt) throw new Error(`the simulated cluster never ran ${APP} ${tag} Healthy`);
  return rollout.settledAt.getTime();
}
