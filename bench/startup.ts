/**
 * 4. Worker start-up: the production worker process (worker/main.ts, compiled as `npm run build` compiles it),
 * from spawning it to its first poll, with the prebundled workflow code against bundling at start-up.
 *
 * "First poll" is when the SDK reports the worker RUNNING (its pollers start then), read from the worker's
 * own JSON log; the process is spawned by this one, whose clock the log shares.
 */
import { readFileSync } from 'node:fs';
import { openStack, uniqueName, workerEnv, nodeArgs, type BenchContext } from './harness';
import { progress, sleep, startChild, type Child } from './infra';
import { median } from './stats';

export interface StartupConfig {
  runs: number;
}

export interface StartupResult {
  runs: number;
  prebundledMs: number[];
  bundlingMs: number[];
  medianPrebundledMs: number;
  medianBundlingMs: number;
  /** Bundling at start-up ÷ prebundled. */
  speedup: number;
}

export async function measureStartup(ctx: BenchContext, config: StartupConfig): Promise<StartupResult> {
  const bench = await openStack('startup', { apps: { startup: {} }, argo: { syncDelayMs: 0, healthyDelayMs: 0, pollIntervalMs: 0 }, buildDelayMs: 0 });
  const once = async (prebundled: boolean): Promise<number> => {
    const env = workerEnv(ctx, bench, uniqueName('bench-startup'), { env: { DEPLOY_LOG_LEVEL: 'INFO' } });
    delete env.DEPLOY_WORKFLOW_BUNDLE;
    if (prebundled) env.DEPLOY_WORKFLOW_BUNDLE = ctx.build.productBundle;
    const spawnedAt = Date.now();
    const worker = startChild(`production worker (${prebundled ? 'prebundled' : 'bundling'})`, process.execPath, [...nodeArgs(ctx, 'startup'), ctx.build.workerMain], {
      env,
      logName: `worker-startup-${prebundled ? 'prebundled' : 'bundling'}`,
    });
    try {
      for (;;) {
        const running = runningAt(worker);
        if (running !== undefined) return running - spawnedAt;
        if (worker.exited) throw new Error(`the worker ${worker.exited}:\n${worker.outputTail(30)}`);
        if (Date.now() - spawnedAt > 120_000) throw new Error(`the worker did not start polling within 120 s:\n${worker.outputTail(30)}`);
        await sleep(50);
      }
    } finally {
      await worker.stop();
    }
  };
  try {
    const prebundledMs: number[] = [];
    const bundlingMs: number[] = [];
    // One of each to warm the disk cache, not counted.
    await once(true);
    await once(false);
    for (let i = 0; i < config.runs; i++) {
      const order = i % 2 === 0 ? [true, false] : [false, true];
      for (const prebundled of order) (prebundled ? prebundledMs : bundlingMs).push(await once(prebundled));
      progress(`4/start-up: ${i + 1}/${config.runs} (last: prebundled ${prebundledMs.at(-1)} ms, bundling ${bundlingMs.at(-1)} ms)`);
    }
    const medianPrebundledMs = median(prebundledMs);
    const medianBundlingMs = median(bundlingMs);
    return { runs: config.runs, prebundledMs, bundlingMs, medianPrebundledMs, medianBundlingMs, speedup: medianBundlingMs / medianPrebundledMs };
  } finally {
    await bench.close();
  }
}

/** When the worker's log says it is RUNNING (the SDK's "Worker state changed" entry), if it has yet. */
function runningAt(worker: Child): number | undefined {
  let text: string;
  try {
    text = readFileSync(worker.logFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { time?: string; message?: string; state?: string };
      if (entry.message === 'Worker state changed' && entry.state === 'RUNNING' && entry.time) return Date.parse(entry.time);
    } catch {
      // A line cut short while the worker writes it: read again later.
    }
  }
  return undefined;
}
