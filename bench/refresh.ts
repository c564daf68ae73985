/**
 * 5. Merge to production with realistic delays: our refresh request against waiting for Argo CD's own poll of
 * git (every 180 s by default). Time-scaled: every duration of the simulated world is divided by SCALE, so
 * that the 180 s poll becomes 3 s; measured differences are multiplied back.
 *
 * A one-environment pipeline deploys, alternately, on a worker as shipped (its Argo CD look refreshes the
 * application) and on one whose Argo CD client drops the refresh (bench/worker.ts, BENCH_ARGO_REFRESH=off),
 * so that only the simulator's poll notices the charts commit. Before each of the latter a random pause puts
 * the commit at a random point of the poll cycle, as a merge would land.
 */
import { DEFAULT_POLLING } from '../common/settings';
import { expectSucceeded, openStack, startBenchWorker, startCiPipeline, uniqueName, type BenchContext } from './harness';
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
  /** Per environment, from its deploy starting (lane taken) to deployed, in scaled milliseconds. */
  refreshMs: number[];
  pollMs: number[];
  /** Mean difference, scaled back to real time. */
  savedRealMs: number;
  refreshRealMs: number;
  pollRealMs: number;
}

const APP = 'refresh';

export async function measureRefresh(ctx: BenchContext, config: RefreshConfig): Promise<RefreshResult> {
  const scaled = (realMs: number) => Math.max(1, Math.round(realMs / SCALE));
  const bench = await openStack('refresh', {
    apps: { [APP]: { environments: { production: { continuousDeployment: true } } } },
    argo: { syncDelayMs: scaled(REAL.syncMs), healthyDelayMs: scaled(REAL.rolloutMs), pollIntervalMs: scaled(REAL.argoPollMs) },
    buildDelayMs: 0,
  });
  bench.stack.endpoints.injectFault({ pathPattern: /\/healthcheck$/, delayMs: scaled(REAL.smokeMs), times: Infinity });
  const polling = { initialIntervalMs: scaled(REAL.pollInitialMs), maxIntervalMs: scaled(REAL.pollMaxMs) };
  const withRefresh = uniqueName('bench-refresh');
  const withoutRefresh = uniqueName('bench-poll');
  const workers = [
    await startBenchWorker(ctx, bench, withRefresh, { name: 'refresh', polling }),
    await startBenchWorker(ctx, bench, withoutRefresh, { name: 'poll', polling, argoRefresh: false }),
  ];
  try {
    const deploy = async (taskQueue: string): Promise<number> => {
      const sha = await bench.stack.merge(APP);
      if (taskQueue === withoutRefresh) await sleep(Math.random() * scaled(REAL.argoPollMs));
      const status = await expectSucceeded(await startCiPipeline(ctx, bench, taskQueue, APP, sha));
      const env = status.environments[0]!;
      return Date.parse(env.finishedAt!) - Date.parse(env.startedAt!);
    };
    await deploy(withRefresh);
    const refreshMs: number[] = [];
    const pollMs: number[] = [];
    for (let i = 0; i < config.trials; i++) {
      refreshMs.push(await deploy(withRefresh));
      pollMs.push(await deploy(withoutRefresh));
      progress(`5/refresh: ${i + 1}/${config.trials} (last: refresh ${refreshMs.at(-1)} ms, Argo CD poll ${pollMs.at(-1)} ms, scaled 1/${SCALE})`);
    }
    const refreshRealMs = mean(refreshMs) * SCALE;
    const pollRealMs = mean(pollMs) * SCALE;
    return { trials: config.trials, scale: SCALE, refreshMs, pollMs, refreshRealMs, pollRealMs, savedRealMs: pollRealMs - refreshRealMs };
  } finally {
    for (const worker of workers) await worker.stop();
    await bench.close();
  }
}
