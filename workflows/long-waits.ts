/**
 * Waits that can last weeks (a freeze, a lane held long by others) look again every few minutes, and each look
 * lengthens the history. Before it grows large the pipeline continues in a new run from where it stands: same
 * workflow ID, status, approvals and search attributes.
 */
import { continueAsNew, workflowInfo } from '@temporalio/workflow';
import type { PipelineInput, PipelineStatus } from '../common/types';
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
