/** How the pipeline calls its activities: timeouts and retries, first from defaults, then from the release's plan. */
import { patched, proxyActivities, proxyLocalActivities, type ActivityOptions } from '@temporalio/workflow';
import type { PipelineActivities } from '../activities';
import type { ReleasePlan } from '../common/types';
import { FailureTypes } from '../common/types';

const PERMANENT_FAILURES = Object.values(FailureTypes);

/**
 * 1.3: the quick steps run as local activities. Each was a task on the queue with three history events and a
 * workflow task of its own after it; run in the worker that runs the workflow, one after another within one
 * workflow task, each is one marker event. That was most of what a pipeline cost the server and the worker
 * (BENCHMARKS.md, item 2b). The long waits stay activities: they heartbeat, and another worker takes them over.
 */
export const QUICK_STEPS_LOCAL = 'quick-steps-local';

type QuickSteps = ReturnType<typeof proxyActivities<PipelineActivities>> | ReturnType<typeof proxyLocalActivities<PipelineActivities>>;

/** Calls to GitHub, ECR, git and the release app: transient faults retried with backoff, up to the catalogue's limit. */
function stepCalls(retry: ReleasePlan['stepRetry'], local: boolean): QuickSteps {
  const options: ActivityOptions = {
    // Also how soon a step whose worker died is tried again.
    startToCloseTimeout: retry.attemptTimeoutMs ?? '2 minutes',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: retry.maximumIntervalMs,
      maximumAttempts: retry.maximumAttempts,
      nonRetryableErrorTypes: PERMANENT_FAILURES,
    },
  };
  // Every retry waits on a server timer, not in the worker's memory: each failed attempt is then in history (its
  // marker), where Web UI shows why the step is tried again, as it does for an activity's last failure.
  return local ? proxyLocalActivities<PipelineActivities>({ ...options, localRetryThreshold: 0 }) : proxyActivities<PipelineActivities>(options);
}

/** Long waits: they heartbeat, so a dead worker is noticed within the heartbeat timeout and the wait resumes elsewhere. */
function waitCalls(heartbeatTimeoutMs: number | undefined) {
  return proxyActivities<PipelineActivities>({
    // Each call sets its own bound from the catalogue (build and sync timeouts); this is the fallback.
    scheduleToCloseTimeout: '1 hour',
    heartbeatTimeout: heartbeatTimeoutMs ?? '1 minute',
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '30 seconds',
      nonRetryableErrorTypes: PERMANENT_FAILURES,
    },
  });
}

/**
 * The wait through a freeze, one activity for all its looks (activities/charts.ts). Its heartbeat timeout leaves a
 * look and its interval room; a worker that dies is noticed within it, and the retry (as many as it takes) looks on.
 * One attempt may last 60 days, past any freeze we expect; a longer one only starts another attempt.
 */
function freezeWaitCalls(recheckIntervalMs: number, heartbeatTimeoutMs: number | undefined) {
  return proxyActivities<PipelineActivities>({
    startToCloseTimeout: '60 days',
    heartbeatTimeout: recheckIntervalMs + (heartbeatTimeoutMs ?? 60_000),
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      nonRetryableErrorTypes: PERMANENT_FAILURES,
    },
  });
}

/** Before the plan (and its retry limits) is known. */
const RESOLVING = { maximumAttempts: 10, maximumIntervalMs: 30_000 };

export class Steps {
  private readonly local = patched(QUICK_STEPS_LOCAL);
  /** Quick steps. */
  calls = stepCalls(RESOLVING, this.local);
  /**
   * Quick steps whose result must be in history before the pipeline goes on: activities even from 1.3. A local
   * activity's result reaches history only with its workflow task; after a crash that lost the task it runs again,
   * and what it did the first time has changed the world: the look at what an environment runs would see our
   * own bump and skip the deploy, and the lane would grant a request the pipeline no longer knows it made. A
   * Slack post, too, finds the one a crashed attempt made by the attempt's number and time, which a local
   * activity run again does not keep.
   */
  recorded = stepCalls(RESOLVING, false);
  /** Long waits (build, Argo CD sync, smoke tests). */
  waits = waitCalls(undefined);
  /** The wait through a freeze. */
  freezeWaits = freezeWaitCalls(60_000, undefined);

  usePlan(plan: ReleasePlan): void {
    this.calls = stepCalls(plan.stepRetry, this.local);
    this.recorded = stepCalls(plan.stepRetry, false);
    this.waits = waitCalls(plan.stepRetry.heartbeatTimeoutMs);
    this.freezeWaits = freezeWaitCalls(plan.freezeRecheckIntervalMs, plan.stepRetry.heartbeatTimeoutMs);
  }
}
