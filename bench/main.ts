/**
 * `npm run bench [-- --quick] [-- --only 1,3] [-- --profile]`: the orchestration cost of deploy pipelines, each
 * number against its baseline measured in the same run (DESIGN.md §8 "Overhead"). BENCHMARKS.md has the results.
 *
 * It starts its own Temporal dev server, ECR endpoint and simulators on 127.0.0.1, compiles the project into
 * .cache/bench, runs the workers as child processes, and stops everything it started, also on failure.
 * Progress goes to stderr; the results table (markdown) to stdout.
 */
import { cpus, totalmem } from 'node:os';
import { measureBurst, type BurstConfig, type BurstResult } from './burst';
import type { BenchContext } from './harness';
import { freePorts } from '../harness/free-ports';
import { buildProject, connectClient, HOST, progress, startEcr, startTemporal, stopAllChildren } from './infra';
import { measureLongWaits, type LongWaitsConfig, type LongWaitsResult } from './long-waits';
import { measureOrchestration, type OrchestrationConfig, type OrchestrationResult } from './orchestration';
import { measureOverhead, type OverheadConfig, type OverheadResult } from './overhead';
import { measureParked, type ParkedConfig, type ParkedResult } from './parked';
import { measureRefresh, REAL, type RefreshConfig, type RefreshResult } from './refresh';
import { measureStartup, type StartupConfig, type StartupResult } from './startup';
import { mean, median, mib, ms, ratio } from './stats';
import { measureThroughput, type EventCensus, type ThroughputConfig, type ThroughputResult } from './throughput';

interface Config {
  overhead: OverheadConfig;
  burst: BurstConfig;
  orchestration: OrchestrationConfig;
  throughput: ThroughputConfig;
  parked: ParkedConfig;
  startup: StartupConfig;
  refresh: RefreshConfig;
  longWaits: LongWaitsConfig;
}

const FULL: Config = {
  overhead: { warmup: 3, runs: 21 },
  burst: { apps: 20, commitsPerApp: 10, rounds: 3 },
  orchestration: { apps: 200, rounds: 3 },
  throughput: { apps: 20, pipelinesPerApp: 10, rounds: 3 },
  parked: { pipelines: 5000, apps: 50, approvals: 100 },
  startup: { runs: 7 },
  refresh: { trials: 40 },
  longWaits: { pipelines: 10, waitMs: 60_000 },
};

/** Proves the bench still works, in a few minutes; its numbers are too few to mean much. */
const QUICK: Config = {
  overhead: { warmup: 1, runs: 3 },
  burst: { apps: 3, commitsPerApp: 3, rounds: 1 },
  orchestration: { apps: 6, rounds: 1 },
  throughput: { apps: 3, pipelinesPerApp: 3, rounds: 1 },
  parked: { pipelines: 120, apps: 6, approvals: 10 },
  startup: { runs: 2 },
  refresh: { trials: 2 },
  longWaits: { pipelines: 2, waitMs: 5_000 },
};

const TARGETS = { overhead: 1.15, burst: 1.3, orchestration: 1.5, eventsPerDay: 200, throughput: 1.25, parkedRssMiB: 250, parkedSlowdown: 1.5, approvalP95Ms: 200, startupMs: 1000, startupSpeedup: 2 };

const ITEMS = ['1', '2a', '2b', '2', '3', '4', '5', '6'];

interface Args {
  quick: boolean;
  /** Keep the compiled project and bundles of the previous run (while working on the bench itself). */
  reuseBuild: boolean;
  only: Set<string>;
  profile: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, reuseBuild: false, profile: false, only: new Set(ITEMS) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') args.quick = true;
    else if (arg === '--profile') args.profile = true;
    else if (arg === '--reuse-build') args.reuseBuild = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const list = arg === '--only' ? (argv[++i] ?? '') : arg.slice('--only='.length);
      args.only = new Set(list.split(','));
      if ([...args.only].some((n) => !ITEMS.includes(n))) throw new Error(`--only takes items ${ITEMS.join(', ')}, e.g. --only 1,2a (got "${list}")`);
    } else if (arg === '--help' || arg === '-h') {
      console.log(
        'usage: npm run bench -- [--quick] [--only 1,2a,2b,2,3,4,5,6] [--profile] [--reuse-build]\n' +
          '  --quick    small counts and few runs: proves the bench works (CI)\n' +
          '  --only     run only these items: 1 overhead, 2a burst, 2b orchestration, 2 throughput, 3 parked, 4 start-up, 5 refresh, 6 long waits\n' +
          '  --profile  write CPU profiles of the worker processes to .cache/bench/profiles (node --cpu-prof)\n' +
          '  --reuse-build  keep the project compiled by the previous run (when changing only the bench)',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (see --help)`);
  }
  return args;
}

interface Results {
  overhead?: OverheadResult;
  burst?: BurstResult;
  orchestration?: OrchestrationResult;
  throughput?: ThroughputResult;
  parked?: ParkedResult;
  startup?: StartupResult;
  refresh?: RefreshResult;
  longWaits?: LongWaitsResult;
}

/** BENCH_CONFIG='{"parked":{"pipelines":1000}}' changes counts, for experiments; reported runs use the defaults. */
function withOverrides(config: Config): Config {
  const raw = process.env.BENCH_CONFIG;
  if (!raw) return config;
  const overrides = JSON.parse(raw) as Partial<Record<keyof Config, object>>;
  const merged = { ...config } as Record<string, object>;
  for (const [key, value] of Object.entries(overrides)) merged[key] = { ...merged[key], ...value };
  progress(`BENCH_CONFIG: ${raw}`);
  return merged as unknown as Config;
}

function verdict(ok: boolean): string {
  return ok ? 'met' : '**missed**';
}

function report(results: Results, args: Args, ecrLine: string, elapsedMs: number): string {
  const lines: string[] = [];
  const cpu = cpus();
  lines.push(`Machine: ${cpu.length} vCPU (${cpu[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${process.platform}.`);
  lines.push(`Mode: ${args.quick ? '--quick (too few samples to judge targets)' : 'full'}; ${ecrLine}; took ${(elapsedMs / 60_000).toFixed(1)} min.`);
  lines.push('Absolute times and sizes (marked *) depend on the machine; ratios compare runs interleaved on the same machine in the same run.');
  lines.push('');
  lines.push('| # | Measure | Product | Baseline (same run) | Ratio | Target | |');
  lines.push('|---|---|---|---|---|---|---|');
  const { overhead, burst, orchestration, throughput, parked, startup, refresh, longWaits } = results;
  if (overhead) {
    lines.push(
      `| 1 | One 3-environment CD pipeline, start → SUCCEEDED (median of ${overhead.runs}) | ${ms(overhead.medianPipelineMs)}* | bare workflow, ${overhead.activities} no-op activities: ${ms(overhead.medianBareMs)}* | ${ratio(overhead.ratio)} | ≤ ${TARGETS.overhead}× | ${verdict(overhead.ratio <= TARGETS.overhead)} |`,
    );
  }
  if (burst) {
    const b = burst;
    lines.push(
      `| 2a | ${b.apps} apps × ${b.commitsPerApp} commits merged within a second, until every environment runs each app's newest (median of ${b.rounds}) | ${ms(median(b.burstMs))}* | ${b.apps} apps × 1 commit: ${ms(median(b.floorMs))}* | ${ratio(b.ratio)} | ≤ ${TARGETS.burst}× | ${verdict(b.ratio <= TARGETS.burst)} |`,
    );
  }
  if (orchestration) {
    const o = orchestration;
    lines.push(
      `| 2b | ${o.pipelines} pipelines, one per app, started at once, until all succeed (median of ${o.rounds}) | ${ms(median(o.pipelineMs))}* | a plain script, the same calls through the same adapters, no Temporal: ${ms(median(o.plainMs))}* | ${ratio(o.ratio)} | ≤ ${TARGETS.orchestration}× | ${verdict(o.ratio <= TARGETS.orchestration)} |`,
    );
  }
  if (throughput) {
    const t = throughput;
    lines.push(
      `| 2 | ${t.pipelines} pipelines for ${t.apps} apps started at once, until all succeed (median of ${t.rounds}; cache ${t.cachedWorkflows} workflows) | ${ms(t.pipeline.totalMs)}*; per pipeline p50 ${ms(t.pipeline.p50Ms)}*, p95 ${ms(t.pipeline.p95Ms)}* | ${t.pipelines} bare workflows: ${ms(t.bare.totalMs)}*; p50 ${ms(t.bare.p50Ms)}*, p95 ${ms(t.bare.p95Ms)}* | ${ratio(t.ratio)} | retired (was ≤ ${TARGETS.throughput}×; BENCHMARKS.md says why) | |`,
    );
  }
  if (parked) {
    const p = parked;
    lines.push(
      `| 3a | Worker RSS with ${p.pipelines} pipelines awaiting approval (${p.apps} apps; cache: ${p.cache.workflows} workflows, ${p.cache.source}) | ${mib(p.parkedRss)}* (peak ${mib(p.peakRss)}*) | | | ≤ ${TARGETS.parkedRssMiB} MiB | ${verdict(p.peakRss <= TARGETS.parkedRssMiB * 2 ** 20)} |`,
    );
    lines.push(
      `| 3b | Approve → next activity started, ${p.approvals} approvals one at a time | p95 ${ms(p.p95Ms)}*, p50 ${ms(p.p50Ms)}* | | | p95 ≤ ${TARGETS.approvalP95Ms} ms | ${verdict(p.p95Ms <= TARGETS.approvalP95Ms)} |`,
    );
    lines.push(
      `| 3c | Parking ${p.pipelines} pipelines: the last fifth against the first | ${ms(p.fifthsMs.at(-1)!)}* | the first fifth: ${ms(p.fifthsMs[0]!)}* | ${ratio(p.lastFifthToFirst)} | ≤ ${TARGETS.parkedSlowdown}× | ${verdict(p.lastFifthToFirst <= TARGETS.parkedSlowdown)} |`,
    );
  }
  if (startup) {
    const s = startup;
    lines.push(
      `| 4 | Worker process start → first poll, prebundled (median of ${s.runs}) | ${ms(s.medianPrebundledMs)}* | bundling at start-up: ${ms(s.medianBundlingMs)}* | ${ratio(s.speedup)} faster | ≤ 1 s and ≥ ${TARGETS.startupSpeedup}× faster | ${verdict(s.medianPrebundledMs <= TARGETS.startupMs && s.speedup >= TARGETS.startupSpeedup)} |`,
    );
  }
  if (refresh) {
    const r = refresh;
    const min = (realMs: number) => `${(realMs / 60_000).toFixed(2)} min`;
    lines.push(
      `| 5 | One environment on GOV.UK's topology (app-config polling every ${REAL.argoPollMs / 1000} s), deploy start → app Healthy on our image (time-scaled 1/${r.scale}, mean of ${r.trials}; real-world estimates) | refresh app-config, then wait: ${ms(r.refreshRealMs)} (to deployed, smoke passed: ${ms(r.refreshDeployedRealMs)}) | GOV.UK's flow, waiting for app-config's poll: ${ms(r.pollRealMs)} | ${ratio(r.ratio)} faster; saves ${min(r.savedRealMs)} per environment | | |`,
    );
  }
  if (longWaits) {
    for (const c of longWaits.costs) {
      lines.push(
        `| 6 | A pipeline waiting ${c.kind === 'freeze' ? 'in a freeze' : c.kind === 'window' ? 'outside a deploy window' : 'for approval'}, per day, default settings | ${c.eventsPerDay.toFixed(1)} history events, worker CPU ${c.workerCpuPerDay.toFixed(2)} s* | | | ≤ ${TARGETS.eventsPerDay} events | ${verdict(c.eventsPerDay <= TARGETS.eventsPerDay)} |`,
      );
    }
  }
  lines.push('');
  if (overhead) {
    const o = overhead;
    lines.push(`1. pipeline ms: ${o.pipelineMs.join(', ')}`);
    lines.push(`   bare ms: ${o.bareMs.join(', ')}; pair ratios mean ${ratio(mean(o.pairRatios))}`);
    lines.push(
      `   outside activities (orchestration, lanes and local activities included): pipeline ${ms(o.medianPipelineOutsideMs)}, bare ${ms(o.medianBareOutsideMs)}, ratio ${ratio(o.outsideRatio)}`,
    );
    const inside = Object.entries(o.activityMs).sort(([, a], [, b]) => b - a);
    lines.push(`   inside the pipeline's activities (median ms, all calls): ${inside.map(([type, t]) => `${type} ${Math.round(t)}`).join(', ')}`);
  }
  if (burst) {
    const b = burst;
    const cpu = (c: Record<string, number>) => Object.entries(c).map(([name, s]) => `${name} ${s.toFixed(0)} s`).join(', ');
    lines.push(`2a. bursts s: ${b.burstMs.map((t) => (t / 1000).toFixed(1)).join(', ')}; floors s: ${b.floorMs.map((t) => (t / 1000).toFixed(1)).join(', ')}`);
    lines.push(
      `    older pipelines of a burst: ${b.superseded} SUPERSEDED, ${b.succeeded} SUCCEEDED; deploys per environment: median ${b.deploysPerEnvironment.median}, at most ${b.deploysPerEnvironment.max}`,
    );
    lines.push(`    CPU: burst: ${cpu(b.cpu.burst)}; floor: ${cpu(b.cpu.floor)}`);
  }
  if (orchestration) {
    const o = orchestration;
    const cpu = (c: Record<string, number>) => Object.entries(c).map(([name, s]) => `${name} ${(s * 1000).toFixed(0)} ms`).join(', ');
    lines.push(`2b. pipeline rounds s: ${o.pipelineMs.map((t) => (t / 1000).toFixed(1)).join(', ')}; plain script rounds s: ${o.plainMs.map((t) => (t / 1000).toFixed(1)).join(', ')}; ${o.calls.toFixed(1)} outside calls per pipeline (the script tried ${o.plainRetries} again in a round)`);
    lines.push(`    CPU per pipeline: pipelines: ${cpu(o.cpuPerPipeline.pipelines)}; plain script: ${cpu(o.cpuPerPipeline.plain)}`);
    const e = o.events;
    lines.push(`    history events per pipeline ${e.total.toFixed(0)} (workflow tasks ${e.workflowTasks.toFixed(1)}, signals sent ${e.signalsSent.toFixed(1)}, received ${e.signalsReceived.toFixed(1)}, timers ${e.timers.toFixed(1)}, upserts ${e.upserts.toFixed(1)}, activities ${e.activities.toFixed(1)}, local activities ${e.localActivities.toFixed(1)})`);
  }
  if (throughput) {
    const t = throughput;
    const p = t.profile;
    const cpu = (c: Record<string, number>) => Object.entries(c).map(([name, s]) => `${name} ${s.toFixed(0)} s`).join(', ');
    lines.push(`2. pipeline batches s: ${t.pipelineBatches.map((b) => (b.totalMs / 1000).toFixed(1)).join(', ')}; bare batches s: ${t.bareBatches.map((b) => (b.totalMs / 1000).toFixed(1)).join(', ')}`);
    lines.push(
      `   per pipeline (median ms): waiting for lanes ${Math.round(p.laneWaitMs)}, in git steps ${Math.round(p.gitStepsMs)}, in the Argo CD wait ${Math.round(p.argoWaitMs)}, in other activities ${Math.round(p.otherActivitiesMs)}, tasks queued ${Math.round(p.queuedMs)}, workflow tasks ${Math.round(p.workflowTaskMs)}`,
    );
    lines.push(`   CPU during a batch: pipelines: ${cpu(p.pipelineCpu)}; bare: ${cpu(p.bareCpu)}`);
    const census = (c: EventCensus) =>
      `${c.total.toFixed(0)} (workflow tasks ${c.workflowTasks.toFixed(1)}, signals sent ${c.signalsSent.toFixed(1)}, received ${c.signalsReceived.toFixed(1)}, timers ${c.timers.toFixed(1)}, upserts ${c.upserts.toFixed(1)}, activities ${c.activities.toFixed(1)}, local activities ${c.localActivities.toFixed(1)})`;
    lines.push(`   history events per pipeline: its own ${census(p.events.pipeline)}; its lanes' ${census(p.events.lanes)}; per bare workflow ${census(p.events.bare)}`);
  }
  if (parked) lines.push(`3. parking ${parked.pipelines} pipelines took ${ms(parked.parkMs)} (at most ${parked.underWay} under way at once; fifths s: ${parked.fifthsMs.map((t) => (t / 1000).toFixed(1)).join(', ')}; CPU s per fifth, worker/server: ${parked.fifthsCpu.map((c) => `${c.worker.toFixed(0)}/${c.server.toFixed(0)}`).join(', ')}); approvals ms: ${[...parked.approvalMs].sort((a, b) => a - b).join(', ')}`);
  if (startup) lines.push(`4. prebundled ms: ${startup.prebundledMs.join(', ')}; bundling ms: ${startup.bundlingMs.join(', ')}`);
  if (longWaits) {
    lines.push(`6. ${longWaits.pipelines} pipelines of each kind waited ${(longWaits.waitMs / 1000).toFixed(0)} s each; the worker's idle CPU (median after each kind), taken off: ${(longWaits.idleWorkerCpuPerSecond * 1000).toFixed(1)} ms a second`);
    for (const c of longWaits.costs) lines.push(`   ${c.kind}: scaled by ${c.scaledBy}; ${c.eventsToEnter.toFixed(0)} events (its own and its lanes') to reach the wait`);
  }
  if (refresh) {
    const r = refresh;
    lines.push(`5. scaled 1/${r.scale}, ms to Healthy: refresh ${r.refreshMs.join(', ')}; app-config's poll ${r.pollMs.join(', ')}; refresh to deployed ${r.refreshDeployedMs.join(', ')}`);
    lines.push(`   fixed cost (ours with no simulated delays, not scaled) ms: ${r.fixedMs.join(', ')}, mean ${Math.round(mean(r.fixedMs))}; real-world estimate = (mean − fixed) × ${r.scale} + fixed`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const began = Date.now();
  const args = parseArgs(process.argv.slice(2));
  const config = withOverrides(args.quick ? QUICK : FULL);
  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  const interrupted = (signal: string) => {
    progress(`${signal}: stopping everything the bench started`);
    void stopAllChildren().finally(() => process.exit(130));
  };
  process.once('SIGINT', () => interrupted('SIGINT'));
  process.once('SIGTERM', () => interrupted('SIGTERM'));
  // The AWS SDK's notice about future Node versions is not a result.
  process.removeAllListeners('warning');
  const results: Results = {};
  try {
    const build = await buildProject(args.reuseBuild);
    progress('starting the Temporal dev server');
    const temporal = await startTemporal();
    stops.push({ name: 'the Temporal dev server', stop: () => temporal.child.stop() });
    progress(`Temporal dev server at ${temporal.address} (${temporal.cliVersion.split('\n')[0]})`);
    const ecr = await startEcr();
    stops.push({ name: 'ECR', stop: () => ecr.stop() });
    progress(`ECR: ${ecr.kind} at ${ecr.endpoint} (${ecr.why})`);
    const client = await connectClient(temporal);
    stops.push({ name: 'the client', stop: () => client.connection.close() });
    const metricsPorts = await freePorts(HOST, 128);
    const ctx: BenchContext = { temporal, client, build, ecr, profile: args.profile, metricsPorts };

    const items: Array<{ item: string; what: string; measure: () => Promise<void> }> = [
      { item: '1', what: 'overhead: one pipeline against a bare workflow, interleaved', measure: async () => void (results.overhead = await measureOverhead(ctx, config.overhead)) },
      {
        item: '2a',
        what: 'burst: many commits per app merged at once, against one per app',
        measure: async () => void (results.burst = await measureBurst(ctx, config.burst)),
      },
      {
        item: '2b',
        what: 'orchestration: pipelines, one per app, against a plain script making the same calls',
        measure: async () => void (results.orchestration = await measureOrchestration(ctx, config.orchestration)),
      },
      { item: '2', what: 'throughput: batches of pipelines against batches of bare workflows', measure: async () => void (results.throughput = await measureThroughput(ctx, config.throughput)) },
      { item: '3', what: 'parked: pipelines waiting for approval on a production worker process', measure: async () => void (results.parked = await measureParked(ctx, config.parked)) },
      { item: '4', what: 'start-up: production worker process, prebundled against bundling', measure: async () => void (results.startup = await measureStartup(ctx, config.startup)) },
      { item: '5', what: "refresh: refreshing app-config against GOV.UK's poll-driven flow (time-scaled)", measure: async () => void (results.refresh = await measureRefresh(ctx, config.refresh)) },
      { item: '6', what: 'long waits: events and worker CPU per day in a freeze, outside a window, for approval', measure: async () => void (results.longWaits = await measureLongWaits(ctx, config.longWaits)) },
    ];
    for (const { item, what, measure } of items.filter(({ item }) => args.only.has(item))) {
      progress(`${item}/${what}`);
      await measure();
    }
    const ecrLine = `ECR: ${ecr.kind === 'simulator' ? "the sandbox's ECR simulator" : "moto's server"} (${ecr.why})`;
    console.log(report(results, args, ecrLine, Date.now() - began));
  } finally {
    for (const { name, stop } of stops.reverse()) await stop().catch((err: unknown) => progress(`could not stop ${name} cleanly: ${(err as Error).message}`));
    await stopAllChildren();
    progress(`done in ${((Date.now() - began) / 60_000).toFixed(1)} min`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
