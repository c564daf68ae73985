/**
 * TEST-ONLY worker entry point for the crash matrix (test/crash-matrix.test.ts). It builds the production worker
 * as worker/main.ts does (same settings from the environment, same adapters, same JSON logs), plus one activity
 * interceptor that lets a test stop the process at the hardest moment: right after an activity's real side effect is
 * done and before its result reaches Temporal. Production never loads this file.
 *
 *   DEPLOY_TEST_STICKY_TIMEOUT=<duration>                    the worker's sticky queue schedule-to-start timeout
 *   DEPLOY_TEST_CRASH_AFTER=<activityType>[@<env>][#<n>],…   each listed activity (its n-th completion in this
 *                                                            process, default the first) once it completes …
 *   DEPLOY_TEST_CRASH_MODE=kill (default)                    … SIGKILLs this process before the activity returns;
 *   DEPLOY_TEST_CRASH_MODE=pause                             … holds the result until a line arrives on stdin
 *                                                              (the test kills the Temporal server meanwhile).
 *                                                              Not a signal: the SDK shuts the worker down on SIGUSR2.
 *
 * Either way a line `crash-point {"activityType":…}` is written to stderr first, synchronously. Every step that
 * completes also writes a line `step-done {"activityType":…}`: a local activity's marker does not say which
 * environment it worked on.
 */
import { writeSync } from 'node:fs';
import type { Duration, Logger } from '@temporalio/common';
import { Worker, type ActivityInterceptorsFactory } from '@temporalio/worker';
import { loadCatalogue } from '../../common/catalogue';
import { loadWorkerSettings } from '../../common/settings';
import { createProductionDependencies } from '../../worker/adapters';
import { deployWorkerOptions } from '../../worker/create-worker';
import { createJsonLogger, secretValuesFrom } from '../../worker/logging';
import { connectWorker } from '../../worker/temporal-connection';
import { installRuntime, loadTelemetrySettings } from '../../worker/telemetry';

export const CRASH_POINT_MARKER = 'crash-point';
export const STEP_DONE_MARKER = 'step-done';

export interface StepDone {
  activityType: string;
  environment?: string;
  activityId: string;
  isLocal: boolean;
  workflowId?: string;
}

interface CrashTarget {
  activityType: string;
  environment?: string;
  /** The n-th successful completion of that activity (and environment) in this process; default the first. */
  occurrence: number;
}

interface CrashSpec {
  targets: CrashTarget[];
  mode: 'kill' | 'pause';
}

/** `type[@environment][#n]`, comma-separated. */
function crashSpec(env: NodeJS.ProcessEnv): CrashSpec | undefined {
  const raw = env.DEPLOY_TEST_CRASH_AFTER?.trim();
  if (!raw) return undefined;
  const targets = raw.split(',').map((entry): CrashTarget => {
    const match = /^([A-Za-z]+)(?:@([a-z0-9-]+))?(?:#(\d+))?$/.exec(entry.trim());
    if (!match) throw new Error(`DEPLOY_TEST_CRASH_AFTER entry "${entry}" is not <activityType>[@<environment>][#<n>]`);
    return { activityType: match[1]!, environment: match[2], occurrence: Number(match[3] ?? 1) };
  });
  const mode = env.DEPLOY_TEST_CRASH_MODE?.trim() || 'kill';
  if (mode !== 'kill' && mode !== 'pause') throw new Error(`DEPLOY_TEST_CRASH_MODE must be kill or pause, not "${mode}"`);
  return { targets, mode };
}

/** The environment an activity works on, when its one argument names one (EnvironmentStep, LaneSignalRequest, …). */
function environmentOf(args: unknown[]): string | undefined {
  const [first] = args;
  if (first && typeof first === 'object' && typeof (first as { environment?: unknown }).environment === 'string') {
    return (first as { environment: string }).environment;
  }
  return undefined;
}

const stepLogInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const result = await next(input);
      const { activityType, activityId, isLocal, workflowExecution } = ctx.info;
      const done: StepDone = { activityType, environment: environmentOf(input.args), activityId, isLocal, workflowId: workflowExecution?.workflowId };
      writeSync(2, `${STEP_DONE_MARKER} ${JSON.stringify(done)}\n`);
      return result;
    },
  },
});

function crashInterceptor(spec: CrashSpec): ActivityInterceptorsFactory {
  const completions = new Map<string, number>();
  const pending = new Set(spec.targets);
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const result = await next(input);
        const { activityType, attempt, workflowExecution } = ctx.info;
        const environment = environmentOf(input.args);
        const key = `${activityType}@${environment ?? ''}`;
        const count = (completions.get(key) ?? 0) + 1;
        completions.set(key, count);
        const target = [...pending].find(
          (t) => t.activityType === activityType && (t.environment === undefined || t.environment === environment) && t.occurrence === count,
        );
        if (!target) return result;
        pending.delete(target);
        const point = { activityType, environment, occurrence: count, attempt, workflowId: workflowExecution?.workflowId, mode: spec.mode, pid: process.pid };
        writeSync(2, `${CRASH_POINT_MARKER} ${JSON.stringify(point)}\n`);
        if (spec.mode === 'kill') {
          process.kill(process.pid, 'SIGKILL');
          // SIGKILL is not delivered synchronously; never let the result out meanwhile.
          await new Promise(() => undefined);
        }
        await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
        writeSync(2, `${CRASH_POINT_MARKER}-resumed ${JSON.stringify(point)}\n`);
        return result;
      },
    },
  });
}

/** As worker/main.ts, with the crash interceptor. */
async function main(logger: Logger): Promise<void> {
  const telemetry = loadTelemetrySettings();
  installRuntime(telemetry, logger);
  const spec = crashSpec(process.env);
  const settings = loadWorkerSettings();
  const catalogue = loadCatalogue(settings.cataloguePath);
  const temporal = await connectWorker(logger);
  const { connection, namespace } = temporal;
  const options = deployWorkerOptions({
    connection,
    namespace,
    taskQueue: settings.taskQueue,
    dependencies: createProductionDependencies(settings, catalogue),
    workflowBundlePath: settings.workflowBundlePath,
    // The step log runs outside the crash: a step killed before it returns is not done.
    activityInterceptors: [stepLogInterceptor, ...(spec ? [crashInterceptor(spec)] : [])],
  });
  const stickyTimeout = process.env.DEPLOY_TEST_STICKY_TIMEOUT?.trim();
  // A killed worker leaves the next tasks of the workflows it had cached waiting for it, 10 s by default.
  const worker = await Worker.create({ ...options, ...(stickyTimeout ? { stickyQueueScheduleToStartTimeout: stickyTimeout as Duration } : {}) });
  logger.info('deploy worker polling', { taskQueue: settings.taskQueue, crashAfter: spec ?? null });
  try {
    await worker.run();
  } finally {
    await temporal.close();
  }
}

// The harness imports the marker; only a process started with this file as its entry runs a worker.
if (require.main === module) {
  const logger = createJsonLogger({ level: loadTelemetrySettings().logLevel, secrets: secretValuesFrom(process.env) });
  main(logger).then(
    () => logger.info('deploy worker stopped'),
    (err: unknown) => {
      logger.error('deploy worker failed', { error: err });
      process.exit(1);
    },
  );
}
