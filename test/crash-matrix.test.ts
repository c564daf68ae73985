/**
 * The crash matrix (DESIGN.md §8 "Durability"): a three-environment CD pipeline that starts without its image (so
 * the build is dispatched), killed with `kill -9` at every step boundary and in the middle of every side-effecting
 * step — once the worker, once the Temporal server — must finish after the restart with nothing doubled and nothing
 * lost: one build dispatch, one charts commit, one `deployed-to-<env>` tag on the right image and one release record
 * per environment.
 *
 * The steps are learnt from an undisturbed pipeline's history (activities and local activities' markers). One pipeline takes the kills at the same step of each
 * environment in turn (a kill in one environment can only double or lose that environment's side effects, so each
 * point keeps its own verdict); pipelines run in parallel lanes, each with its own dev server (a server kill stops
 * only its lane), stack and worker process. Short attempt and heartbeat timeouts in the catalogue make a step whose
 * worker died run again within seconds instead of the production defaults (2 minutes, 1 minute); a short sticky
 * queue timeout (worker) and workflow task timeout (server default) hand a dead worker's workflow tasks to the new
 * one after 1 s and 3 s instead of 10 s each.
 */
import type { temporal } from '@temporalio/proto';
import { startPipeline } from '../client/pipelines';
import type { PipelineStatus } from '../common/types';
import { findTemporalCli } from '../harness/temporal-cli';
import { listCommits } from './support/charts-repo';
import { startCrashHarness, type CrashHarness, type WorkerProcess } from './support/crash-harness';
import type { StepDone } from './support/crash-worker';
import { localActivityMarker } from './support/history-steps';
import { digestOfTag } from './support/ecr';
import { waitFor } from './support/env';
import { uniqueTaskQueue } from './support/temporal';

const APP = 'whitehall';
const ENVIRONMENTS = ['integration', 'staging', 'production'];
const LANES = 4;
/** Activities that change something outside Temporal; each is also crashed mid-way (after its side effect). */
const SIDE_EFFECTS = ['dispatchImageBuild', 'signalLane', 'bumpImageTag', 'tagImage', 'notifyReleaseApp', 'recordGitHubDeployment'];
const RUN_TIMEOUT_MS = 120_000;
/**
 * A boundary kill waits until history shows the step done, and a quick next step can end in that moment: the kill
 * then tests a later boundary, not its own. Such a pipeline (clean, but late) runs again, up to this many times.
 */
const LATE_KILL_RETRIES = 2;

type Target = 'worker' | 'server';

interface Step {
  activityType: string;
  environment?: string;
  /** The workflow task that scheduled it: steps scheduled by one task run side by side. */
  scheduledBy: string;
}

/** One place to kill at: a row of the table. */
interface Point {
  label: string;
  /** The environment whose side effects this kill could double or lose; undefined: the pipeline's own (the build). */
  environment?: string;
  /** A step boundary: kill once history holds this many ActivityTaskCompleted events and local activity markers. */
  completed?: number;
  /** Steps side by side end in any order, so a kill may find up to this many done and still be on time. */
  completedAtMost?: number;
  /** Mid-step: `<activityType>[@<environment>][#<n>]` for the test-only crash interceptor. */
  crashAfter?: string;
}

/** One pipeline, killed at each of its points in turn (the same step in each environment, so never twice in one). */
interface Run {
  kind: 'boundary' | 'mid';
  target: Target;
  points: Point[];
}

interface Row {
  point: string;
  target: Target;
  outcome: string;
  duplicates: string;
  missing: string;
  seconds: number;
  note: string;
}

const isClean = (row: Row) => row.outcome === 'finished' && row.duplicates === 'none' && row.missing === 'none';
const isLate = (row: Row) => row.note.startsWith('killed late');

interface Lane {
  index: number;
  h: CrashHarness;
  taskQueue: string;
  worker?: WorkerProcess;
  /** The crash configuration the running worker was started with. */
  workerCrash?: string;
  /** Crash points of the current pipeline still to come, for the next worker after a kill. */
  pendingCrash?: string;
}

interface Effects {
  /** Per environment ('' for the pipeline's own, e.g. the build dispatch). */
  duplicates: Map<string, string[]>;
  missing: Map<string, string[]>;
}

function stepName(step: Step): string {
  return step.environment ? `${step.activityType}@${step.environment}` : step.activityType;
}

function decodeFirstArg(event: temporal.api.history.v1.IHistoryEvent): unknown {
  const data = event.activityTaskScheduledEventAttributes?.input?.payloads?.[0]?.data;
  if (!data) return undefined;
  try {
    return JSON.parse(Buffer.from(data).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The pipeline's steps in the order history shows them done: activities as scheduled, local activities by their
 * markers. Steps that one workflow task scheduled, or whose markers one workflow task wrote, reach history together.
 * A marker does not name the environment: the worker's step log does.
 */
async function stepsOf(h: CrashHarness, workflowId: string, done: StepDone[]): Promise<Step[]> {
  const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
  const steps: Step[] = [];
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const arg = decodeFirstArg(e) as { environment?: unknown } | undefined;
      steps.push({
        activityType: scheduled.activityType!.name!,
        environment: typeof arg?.environment === 'string' ? arg.environment : undefined,
        scheduledBy: String(scheduled.workflowTaskCompletedEventId),
      });
      continue;
    }
    const local = localActivityMarker(e);
    if (!local) continue;
    const logged = done.find((d) => d.isLocal && d.workflowId === workflowId && d.activityId === local.activity_id && d.activityType === local.activity_type);
    steps.push({ activityType: local.activity_type, environment: logged?.environment, scheduledBy: String(e.markerRecordedEventAttributes!.workflowTaskCompletedEventId) });
  }
  return steps;
}

async function completedSteps(h: CrashHarness, workflowId: string): Promise<{ completed: number; closed: boolean }> {
  const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  return {
    completed: events.filter((e) => e.activityTaskCompletedEventAttributes || localActivityMarker(e)).length,
    closed: events.some((e) => e.workflowExecutionCompletedEventAttributes || e.workflowExecutionFailedEventAttributes || e.workflowExecutionTerminatedEventAttributes),
  };
}

/** The pipeline's result once it has ended (looking every 200 ms, so calls cut by a server restart are made again). */
async function resultOf(h: CrashHarness, workflowId: string): Promise<PipelineStatus> {
  const handle = h.client.workflow.getHandle(workflowId);
  let status = 'unknown';
  await waitFor(
    async () => {
      status = (await handle.describe()).status.name;
      return status !== 'RUNNING';
    },
    { timeoutMs: RUN_TIMEOUT_MS, intervalMs: 200, description: `${workflowId} to end` },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message.split(';')[0]} (${status})`);
  });
  return (await handle.result()) as PipelineStatus;
}

/** Counts of each side effect of the pipeline for `sha`, per environment: what is doubled and what is missing. */
async function sideEffects(h: CrashHarness, sha: string): Promise<Effects> {
  const { stack } = h;
  const effects: Effects = { duplicates: new Map(), missing: new Map() };
  const note = (map: Map<string, string[]>, environment: string, what: string) => map.set(environment, [...(map.get(environment) ?? []), what]);
  const expectOne = (environment: string, what: string, count: number) => {
    if (count > 1) note(effects.duplicates, environment, `${what} ×${count}`);
    if (count === 0) note(effects.missing, environment, what);
  };
  const repo = stack.repoOf(APP);
  expectOne('', 'build dispatch', stack.github.dispatches.filter((d) => d.repo === repo && d.inputs.gitRef === sha).length);
  const commits = await listCommits(stack.charts.bareDir);
  const imageRepository = stack.imageRepositoryOf(APP);
  const imageDigest = await digestOfTag(stack.ecr, imageRepository, sha);
  for (const env of ENVIRONMENTS) {
    expectOne(env, `charts commit ${env}`, commits.filter((c) => c.subject === `Deploy ${APP} ${sha} to ${env}`).length);
    expectOne(env, `release record ${env}`, stack.release.deployments.filter((d) => d.repo === repo && d.version === sha && d.environment === env).length);
    const tagged = await digestOfTag(stack.ecr, imageRepository, `deployed-to-${env}`);
    if (!imageDigest || tagged !== imageDigest) note(effects.missing, env, `deployed-to-${env} on ${sha.slice(0, 7)}`);
    // GitHub deployments, when the pipeline records them: at most one per environment.
    const deployments = stack.github.deployments.filter((d) => d.repo === repo && d.sha === sha && d.environment === env).length;
    if (deployments > 1) note(effects.duplicates, env, `GitHub deployment ${env} ×${deployments}`);
  }
  return effects;
}

/** What the pipeline's effects mean for one point: a kill in an environment can only double or lose that one's. */
function effectsFor(effects: Effects, point: Point): { duplicates: string; missing: string } {
  const pick = (map: Map<string, string[]>) => {
    const found = point.environment === undefined ? [...map.values()].flat() : (map.get(point.environment) ?? []);
    return found.join(', ') || 'none';
  };
  return { duplicates: pick(effects.duplicates), missing: pick(effects.missing) };
}

/** Every step boundary and every side-effecting step, grouped into runs of one pipeline each. */
function plan(steps: Step[]): Run[] {
  const runs: Run[] = [];
  const occurrence = (index: number) => steps.slice(0, index + 1).filter((s) => s.activityType === steps[index]!.activityType && s.environment === steps[index]!.environment).length;
  // Boundaries after each step but the last (the end of the last step is the mid-step crash below).
  const boundaryGroups = new Map<string, Point[]>();
  for (let completed = 1; completed < steps.length; completed++) {
    const step = steps[completed - 1]!;
    const key = step.environment ? `${step.activityType}#${occurrence(completed - 1)}` : `solo-${completed}`;
    const sideBySide = steps.map((s, i) => (s.scheduledBy === step.scheduledBy ? i + 1 : 0));
    const point: Point = { label: `after ${completed} ${stepName(step)}`, environment: step.environment, completed, completedAtMost: Math.max(...sideBySide) };
    boundaryGroups.set(key, [...(boundaryGroups.get(key) ?? []), point]);
  }
  const midGroups = new Map<string, Point[]>();
  for (const [index, step] of steps.entries()) {
    if (!SIDE_EFFECTS.includes(step.activityType) || occurrence(index) > 1) continue;
    const crashAfter = stepName(step);
    midGroups.set(step.activityType, [...(midGroups.get(step.activityType) ?? []), { label: `in ${crashAfter}`, environment: step.environment, crashAfter }]);
  }
  const last = steps.length - 1;
  const lastStep = steps[last]!;
  midGroups.set('last', [{ label: `in ${stepName(lastStep)} (last step)`, environment: lastStep.environment, crashAfter: `${stepName(lastStep)}#${occurrence(last)}` }]);
  for (const target of ['worker', 'server'] as const) {
    for (const points of boundaryGroups.values()) runs.push({ kind: 'boundary', target, points });
    for (const points of midGroups.values()) runs.push({ kind: 'mid', target, points });
  }
  return runs;
}

describe('crash matrix: kill -9 the worker or the Temporal server at any step', () => {
  const lanes: Lane[] = [];
  const rows: Row[] = [];
  let steps: Step[] = [];
  const started = Date.now();

  beforeAll(async () => {
    const cliPath = await findTemporalCli();
    const harnesses = await Promise.allSettled(
      Array.from({ length: LANES }, () =>
        startCrashHarness({
          cliPath,
          stack: {
            apps: { [APP]: {} },
            buildDelayMs: 200,
            polling: { initialIntervalMs: 100, maxIntervalMs: 300 },
            stepRetry: { maximumAttempts: 10, maximumInterval: '2s', attemptTimeout: '4s', heartbeatTimeout: '3s' },
          },
          workerEnv: { DEPLOY_TEST_STICKY_TIMEOUT: '1s' },
          // A workflow task that a killed worker (or server) had taken is given to another after 3 s, not 10.
          serverDynamicConfig: { 'history.defaultWorkflowTaskTimeout': '"3s"' },
        }),
      ),
    );
    for (const [index, outcome] of harnesses.entries()) {
      if (outcome.status === 'fulfilled') lanes.push({ index, h: outcome.value, taskQueue: uniqueTaskQueue('crash') });
    }
    const failure = harnesses.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) throw failure.reason;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(lanes.map((lane) => lane.h.close()));
  }, 60_000);

  async function ensureWorker(lane: Lane, crashAfter?: string, crashMode?: 'kill' | 'pause'): Promise<WorkerProcess> {
    const wanted = crashAfter ? `${crashAfter}/${crashMode}` : undefined;
    if (lane.worker?.running && lane.workerCrash === wanted) return lane.worker;
    // Between pipelines: a graceful stop, so that its sticky queue is released at once.
    await lane.worker?.stop();
    lane.worker = await lane.h.startWorker(lane.taskQueue, { crashAfter, crashMode });
    lane.workerCrash = wanted;
    return lane.worker;
  }

  async function startRun(lane: Lane): Promise<{ sha: string; workflowId: string }> {
    const { stack, client } = lane.h;
    const sha = await stack.merge(APP, { buildImage: false });
    const { workflowId } = await startPipeline(
      { app: APP, ref: sha, requestedBy: 'ci' },
      { client, taskQueue: lane.taskQueue, catalogue: stack.catalogue, sourceHost: stack.dependencies.sourceHost },
    );
    return { sha, workflowId };
  }

  /** Restarts what was killed: the worker (a new process), or the server on the same SQLite file. */
  async function restart(lane: Lane, target: Target): Promise<void> {
    if (target === 'worker') {
      lane.worker = await lane.h.startWorker(lane.taskQueue, lane.pendingCrash ? { crashAfter: lane.pendingCrash, crashMode: 'kill' } : {});
      lane.workerCrash = lane.pendingCrash ? `${lane.pendingCrash}/kill` : undefined;
    } else {
      await lane.h.server.start();
    }
  }

  async function runPipeline(lane: Lane, run: Run): Promise<Row[]> {
    const begun = Date.now();
    const { target } = run;
    const notes: string[] = run.points.map(() => '');
    let outcome = '';
    let sha: string | undefined;
    const { h } = lane;
    try {
      const crashList = run.points.map((p) => p.crashAfter).join(',');
      if (run.kind === 'mid') await ensureWorker(lane, crashList, target === 'worker' ? 'kill' : 'pause');
      else await ensureWorker(lane);
      const started = await startRun(lane);
      sha = started.sha;
      for (const [index, point] of run.points.entries()) {
        if (run.kind === 'boundary') {
          const at = await waitFor(
            async () => {
              const progress = await completedSteps(h, started.workflowId);
              return progress.completed >= point.completed! || progress.closed ? progress : undefined;
            },
            { timeoutMs: 60_000, intervalMs: 20, description: `${point.label} in ${started.workflowId}` },
          );
          if (target === 'worker') await lane.worker!.kill();
          else await h.server.kill();
          if (at.closed) notes[index] = 'killed late: the pipeline had finished';
          else if (at.completed > point.completedAtMost!) notes[index] = `killed late: ${at.completed} steps done`;
          else if (at.completed > point.completed!) notes[index] = `${at.completed} steps done (side by side)`;
          lane.pendingCrash = undefined;
        } else {
          const worker = lane.worker!;
          // Each worker process counts its own crash points; a restarted one starts again from 1.
          const seen = target === 'worker' ? 1 : index + 1;
          const reached = await waitFor(
            () => {
              const points = worker.crashPoints();
              // A worker that died before its point shows up here (the marker may trail the exit a little).
              if (points.length < seen && !worker.running) throw new Error(`the worker exited: ${worker.lines.slice(-5).join(' / ')}`);
              return points[seen - 1];
            },
            { timeoutMs: 60_000, intervalMs: 20, description: `the crash point ${point.crashAfter} in ${started.workflowId}` },
          );
          notes[index] = `attempt ${reached.attempt}`;
          if (target === 'worker') {
            await worker.exited;
            lane.pendingCrash = run.points.slice(index + 1).map((p) => p.crashAfter).join(',') || undefined;
          } else {
            await h.server.kill();
          }
        }
        await restart(lane, target);
        if (run.kind === 'mid' && target === 'server') lane.worker!.resume();
      }
      const result = await resultOf(h, started.workflowId);
      const deployed = result.environments.length === ENVIRONMENTS.length && result.environments.every((e) => e.state === 'DEPLOYED');
      outcome = result.status === 'SUCCEEDED' && deployed ? 'finished' : `${result.status}: ${result.failure ?? ''}`;
    } catch (err) {
      outcome = `NOT FINISHED: ${(err as Error).message.split('\n')[0]}`;
      // What is left of this lane (its lanes of Temporal, a worker) may be stuck; go on with a clean task queue.
      lane.taskQueue = uniqueTaskQueue('crash');
      lane.pendingCrash = undefined;
      await lane.worker?.kill();
      lane.worker = undefined;
      if (!h.server.running) await h.server.start().catch(() => undefined);
    }
    const effects = sha ? await sideEffects(h, sha) : undefined;
    const seconds = Math.round((Date.now() - begun) / 100) / 10;
    return run.points.map((point, index) => ({
      point: point.label,
      target,
      outcome,
      ...(effects ? effectsFor(effects, point) : { duplicates: '?', missing: '?' }),
      seconds,
      note: notes[index]!,
    }));
  }

  it('learns the steps of an undisturbed pipeline', async () => {
    const lane = lanes[0]!;
    await ensureWorker(lane);
    const run = await startRun(lane);
    const result = await resultOf(lane.h, run.workflowId);
    expect(result.status).toBe('SUCCEEDED');
    const effects = await sideEffects(lane.h, run.sha);
    expect([...effects.duplicates.values(), ...effects.missing.values()].flat()).toEqual([]);
    steps = await stepsOf(lane.h, run.workflowId, lane.worker!.stepsDone());
    expect(steps.map(stepName)).toEqual(
      expect.arrayContaining(['resolveRelease', 'imageExists', 'dispatchImageBuild', 'waitForImage', ...ENVIRONMENTS.map((e) => `bumpImageTag@${e}`)]),
    );
  });

  it('finishes every pipeline with no side effect doubled or lost, whatever is killed where', async () => {
    expect(steps.length).toBeGreaterThan(10);
    const runs = plan(steps);
    let next = 0;
    await Promise.all(
      lanes.map(async (lane) => {
        while (next < runs.length) {
          const run = runs[next++]!;
          let result = await runPipeline(lane, run);
          // Only a clean run is run again: anything doubled or lost, even by a late kill, stays in the table.
          for (let retry = 1; retry <= LATE_KILL_RETRIES && result.some(isLate) && result.every(isClean); retry++) {
            const again = await runPipeline(lane, run);
            result = again.map((row) => ({ ...row, note: [row.note, `run ${retry + 1}: the kill before was late`].filter(Boolean).join('; ') }));
          }
          rows.push(...result);
        }
      }),
    );

    const order = new Map(runs.flatMap((run) => run.points.map((p) => `${p.label}|${run.target}`)).map((key, i) => [key, i]));
    rows.sort((a, b) => order.get(`${a.point}|${a.target}`)! - order.get(`${b.point}|${b.target}`)!);
    printTable(rows, runs.length, Date.now() - started);
    const unclean = rows.filter((r) => !isClean(r) || isLate(r));
    expect(unclean).toEqual([]);
    expect(rows).toHaveLength(order.size);
  }, 20 * 60_000);
});

function printTable(rows: Row[], pipelines: number, elapsedMs: number): void {
  const header: (keyof Row)[] = ['point', 'target', 'outcome', 'duplicates', 'missing', 'seconds', 'note'];
  const cells = rows.map((r) => header.map((k) => String(r[k])));
  const widths = header.map((h, i) => Math.min(60, Math.max(h.length, ...cells.map((c) => c[i]!.length))));
  const line = (values: string[]) => values.map((v, i) => v.slice(0, 60).padEnd(widths[i]!)).join(' | ');
  const text = [
    '',
    `Crash matrix: ${rows.length} kills (kill -9 of the worker or the Temporal server) in ${pipelines} pipelines, ${Math.round(elapsedMs / 1000)} s in all`,
    '(seconds: the whole pipeline, shared by the kills it took; duplicates and missing: of the environment killed in)',
    line(header),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...cells.map(line),
    '',
  ].join('\n');
  process.stdout.write(`${text}\n`);
}
