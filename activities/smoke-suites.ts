import { createHash } from 'node:crypto';
import { Context, log } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { EnvironmentConfig } from '../common/catalogue';
import { formatDuration } from '../common/duration';
import type { SmokeSuite } from '../common/smoke-suites';
import { FailureTypes } from '../common/types';
import { suiteDriver, type SuiteDriver, type SuiteVerdict } from './smoke-suite-kinds';
import { permanent, type EnvironmentStep, type Stage } from './stage';

/**
 * The end-to-end suites of one environment, one after another, each retried up to the environment's smokeAttempts.
 * Every attempt has a key of its own (pipeline, run, environment, suite, attempt): the Argo workflow's name, or the
 * GitHub run's `smokeRun` input. A step retried after its worker died therefore finds what the dead one started
 * (its heartbeats also carry it), and never starts a suite twice.
 */

/** What the step's heartbeats carry while a suite runs. */
export interface SuiteProgress {
  /** Index of the suite running; those before it passed. */
  suite: number;
  attempt: number;
  /** The Argo workflow's name or the GitHub run's ID, once known. */
  run?: string;
  /** A GitHub dispatch was sent: its run may not be listed yet, and must not be dispatched again. */
  dispatched?: boolean;
  /** When this attempt started, for its timeout. */
  startedAtMs: number;
}

export interface SuiteOutcome {
  suite: string;
  ok: true;
  run: string;
  detail: string;
}

/** The progress a retried step resumes from, when an earlier attempt got as far as the suites. */
export function resumedSuiteProgress(): SuiteProgress | undefined {
  const details = Context.current().info.heartbeatDetails as Partial<SuiteProgress> | undefined;
  if (!details || typeof details.suite !== 'number' || typeof details.attempt !== 'number') return undefined;
  return { suite: details.suite, attempt: details.attempt, run: details.run, dispatched: details.dispatched, startedAtMs: details.startedAtMs ?? Date.now() };
}

function attemptKey(step: EnvironmentStep, suite: number, attempt: number): string {
  const { workflowExecution, activityId } = Context.current().info;
  return createHash('sha256')
    .update([workflowExecution?.workflowId ?? activityId, workflowExecution?.runId ?? '', step.app, step.environment, suite, attempt].join('\n'))
    .digest('hex')
    .slice(0, 16);
}

export async function runSmokeSuites(stage: Stage, step: EnvironmentStep, env: EnvironmentConfig, resumed: SuiteProgress | undefined): Promise<SuiteOutcome[]> {
  const ctx = Context.current();
  const outcomes: SuiteOutcome[] = [];
  for (let index = resumed?.suite ?? 0; index < env.smokeSuites.length; index++) {
    const suite = env.smokeSuites[index]!;
    const driver = suiteDriver(stage, step, env, suite);
    const carriedOn = resumed?.suite === index ? resumed : undefined;
    let verdict: (SuiteVerdict & { run: string }) | undefined;
    for (let attempt = carriedOn?.attempt ?? 1; attempt <= env.smokeAttempts; attempt++) {
      const progress: SuiteProgress = attempt === carriedOn?.attempt ? { ...carriedOn } : { suite: index, attempt, startedAtMs: Date.now() };
      ctx.heartbeat(progress);
      verdict = await followAttempt(stage, suite, driver, progress, attemptKey(step, index, attempt));
      if (verdict.ok) break;
      log.warn('smoke suite failed', { suite: suite.name, attempt, detail: verdict.detail });
      if (attempt < env.smokeAttempts) {
        ctx.heartbeat({ suite: index, attempt: attempt + 1, startedAtMs: Date.now() + env.smokeRetryIntervalMs } satisfies SuiteProgress);
        await ctx.sleep(env.smokeRetryIntervalMs);
      }
    }
    if (!verdict?.ok) {
      throw permanent(
        FailureTypes.SmokeTestFailed,
        `smoke test failed for ${step.app} ${step.tag} in ${env.name}: suite ${suite.name}: ${verdict?.detail ?? 'it never ran'} (after ${env.smokeAttempts} attempts)`,
      );
    }
    outcomes.push({ suite: suite.name, ok: true, run: verdict.run, detail: verdict.detail });
  }
  return outcomes;
}

/** Starts (or finds) one attempt's run and follows it to its verdict, its timeout, or the pipeline's cancellation. */
async function followAttempt(stage: Stage, suite: SmokeSuite, driver: SuiteDriver, progress: SuiteProgress, key: string): Promise<SuiteVerdict & { run: string }> {
  const ctx = Context.current();
  const deadline = progress.startedAtMs + suite.timeoutMs;
  const { initialIntervalMs, maxIntervalMs } = stage.deps.polling;
  let interval = initialIntervalMs;
  const pause = async () => {
    ctx.heartbeat(progress);
    await ctx.sleep(Math.max(1, Math.min(interval, deadline - Date.now())));
    interval = Math.min(Math.ceil(interval * 1.5), maxIntervalMs);
  };
  const timedOut = () => ({ ok: false, detail: `${driver.what} did not finish within ${formatDuration(suite.timeoutMs)}` });
  try {
    progress.run ??= await driver.find(key);
    if (progress.run === undefined && !progress.dispatched) {
      progress.run = await driver.start(key);
      progress.dispatched = true;
      ctx.heartbeat(progress);
    }
    while (progress.run === undefined) {
      if (Date.now() >= deadline) return { ...timedOut(), run: '' };
      await pause();
      progress.run = await driver.find(key);
    }
    const run = progress.run;
    for (;;) {
      const verdict = await driver.verdict(run);
      if (verdict) return { ...verdict, run };
      if (Date.now() >= deadline) {
        await driver.stop(run, `did not finish within ${formatDuration(suite.timeoutMs)}`);
        const ended = timedOut();
        return { ...ended, detail: `${ended.detail}; stopped ${driver.describe(run)}`, run };
      }
      await pause();
    }
  } catch (err) {
    if (err instanceof CancelledFailure && progress.run !== undefined && cancelledForGood()) {
      // The pipeline was cancelled: the suite must not go on testing a release nobody deploys. A worker shutting
      // down, or an attempt timing out, leaves it running for the next attempt to follow.
      await driver.stop(progress.run, 'the deploy pipeline was cancelled').catch((stopErr: unknown) => {
        log.warn('could not stop the smoke suite', { suite: suite.name, run: progress.run, error: (stopErr as Error).message });
      });
    }
    throw err;
  }
}

function cancelledForGood(): boolean {
  const details = Context.current().cancellationDetails;
  return details?.cancelRequested === true || details?.notFound === true;
}
