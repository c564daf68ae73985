/**
 * Waits that can last weeks (a freeze, a lane held long by others) look again every few minutes, and each look
 * lengthens the history. Before it grows large the pipeline continues in a new run from where it stands: same
 * workflow ID, status, approvals and search attributes.
 */
import { continueAsNew, patched, sleep, workflowInfo } from '@temporalio/workflow';
import { formatDuration } from '../common/duration';
import type { EnvironmentStatus, PipelineInput, PipelineStatus } from '../common/types';
import type { PipelineContext } from './pipeline-context';
import type { PipelineState } from './pipeline-state';

/**
 * Continues as new when the server suggests it or the history has passed the plan's limit; the new run resumes
 * at the environment of `environmentIndex`, its approval gate passed. Call it only where nothing is held (a lane):
 * the run that holds something must be the one that hands it back.
 */
export async function continueAsNewIfHistoryLong(input: PipelineInput, pipeline: PipelineState, environmentIndex: number): Promise<void> {
  const plan = pipeline.plan!;
  if (!workflowInfo().continueAsNewSuggested && workflowInfo().historyLength <= plan.historyLimit) return;
  const resume = { plan, status: pipeline.status, environmentIndex, rolledBack: pipeline.rolledBack };
  await continueAsNew<(input: PipelineInput) => Promise<PipelineStatus>>({ ...input, resume });
}

/**
 * How pipelines started before 1.1 wait out a freeze: sleep, look at the file, again and again, continuing as new
 * past the history limit. New pipelines wait in one heartbeating activity (waitForThaw) instead.
 */
async function waitForThawLookingAgain({ input, pipeline, steps }: PipelineContext, env: EnvironmentStatus, index: number): Promise<void> {
  const release = pipeline.plan!;
  const recheck = release.freezeRecheckIntervalMs;
  for (;;) {
    await continueAsNewIfHistoryLong(input, pipeline, index);
    await sleep(recheck, { summary: `Frozen: look again in ${formatDuration(recheck)}` });
    const freeze = await steps.calls.readFreeze.executeWithOptions({ summary: `Is ${env.environment} still frozen?` }, [{ app: release.app, environment: env.environment }]);
    if (!freeze.frozen) return;
  }
}

/** 1.1: a freeze is waited out in one heartbeating activity (1.0 looked again from the workflow, continuing as new). */
const FREEZE_WAIT_ACTIVITY = 'freeze-wait-activity';

/**
 * A freeze can last a weekend or a month: one activity looks at the file on its own, without the lane, and
 * heartbeats, so the pipeline's history gains a few events for the whole wait however many looks it takes.
 */
export async function waitForThaw(ctx: PipelineContext, env: EnvironmentStatus, index: number): Promise<void> {
  const { pipeline, steps } = ctx;
  if (!patched(FREEZE_WAIT_ACTIVITY)) return waitForThawLookingAgain(ctx, env, index);
  const { app, freezeRecheckIntervalMs } = pipeline.plan!;
  await steps.freezeWaits.waitForThaw.executeWithOptions({ summary: `Frozen: look at ${env.environment} every ${formatDuration(freezeRecheckIntervalMs)} until the freeze lifts` }, [
    { app, environment: env.environment, recheckIntervalMs: freezeRecheckIntervalMs },
  ]);
}
