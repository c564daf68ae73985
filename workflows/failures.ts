/** How a pipeline's failures are told apart and put into words. */
import { ActivityFailure, ApplicationFailure, CancelledFailure, TimeoutFailure } from '@temporalio/workflow';
import { formatDuration } from '../common/duration';
import type { DeployStatus, ReleasePlan } from '../common/types';
import { FailureTypes } from '../common/types';

/** A pipeline ending that is not an error of ours: it completes with this status. */
export class PipelineEnded extends Error {
  constructor(
    readonly status: DeployStatus,
    reason: string,
  ) {
    super(reason);
  }
}

/** Failures after our bump that mean "this release is bad here": the environment goes back to what it ran. */
const ROLLBACK_CAUSES: string[] = [FailureTypes.SmokeTestFailed, FailureTypes.ArgoCdDegraded, FailureTypes.ArgoCdSyncFailed];

/**
 * Why the release is bad here, when a failure after our bump says so: the step's own verdict (smoke tests,
 * Degraded, a failed sync), or Argo CD never reporting it Synced and Healthy in time, which leaves the cluster
 * trying to run it just as a Degraded rollout does.
 */
export function rollbackCause(err: unknown, plan: ReleasePlan | undefined, environment: string): string | undefined {
  if (!(err instanceof ActivityFailure)) return undefined;
  if (err.cause instanceof ApplicationFailure && ROLLBACK_CAUSES.includes(err.cause.type ?? '')) return err.cause.message;
  if (err.activityType === 'waitForArgoSync' && err.cause instanceof TimeoutFailure) return describeFailure(err, plan, environment).message;
  return undefined;
}

/** Argo CD could not tell us what runs after our bump (it refused us, or lost the application): nobody knows. */
export function unverifiedAfterBump(err: unknown): boolean {
  return err instanceof ActivityFailure && err.activityType === 'waitForArgoSync' && !(err.cause instanceof CancelledFailure) && !(err.cause instanceof TimeoutFailure);
}

/** Waits for every step begun side by side (none is left running unseen), then fails with the first failure. */
export async function allSettledThenThrow(steps: Promise<unknown>[]): Promise<void> {
  const settled = await Promise.allSettled(steps);
  const failed = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

function timeoutMessage(activityType: string, plan: ReleasePlan | undefined, environment: string | undefined): string {
  const release = plan ? `${plan.app} ${plan.tag}` : 'the release';
  if (activityType === 'waitForImage') {
    return `image build timed out: no image for ${release} appeared in ECR within ${formatDuration(plan?.buildTimeoutMs ?? 0)}`;
  }
  if (activityType === 'waitForArgoSync') {
    const limit = plan?.environments.find((e) => e.name === environment)?.syncTimeoutMs ?? 0;
    return `Argo CD did not report ${release} Synced and Healthy in ${environment} within ${formatDuration(limit)}`;
  }
  return `step ${activityType} timed out`;
}

/** The root cause in words: the activity's own message, or what a timeout means for that step. */
export function describeFailure(err: unknown, plan: ReleasePlan | undefined, environment: string | undefined): { type: string; message: string } {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'ActivityFailed', message: cause.message };
    if (cause instanceof TimeoutFailure) {
      const type =
        err.activityType === 'waitForImage' ? FailureTypes.ImageBuildTimedOut : err.activityType === 'waitForArgoSync' ? FailureTypes.ArgoCdSyncTimedOut : 'StepTimedOut';
      return { type, message: timeoutMessage(err.activityType, plan, environment) };
    }
    return { type: 'ActivityFailed', message: `${err.activityType} failed: ${cause?.message ?? err.message}` };
  }
  if (err instanceof ApplicationFailure) return { type: err.type ?? 'PipelineFailed', message: err.message };
  return { type: 'PipelineFailed', message: err instanceof Error ? err.message : String(err) };
}
