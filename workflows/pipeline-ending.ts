/** How a pipeline that stops before it succeeds ends: its status, what GitHub and people hear, and its result. */
import { ApplicationFailure, CancellationScope, ContinueAsNew, isCancellation } from '@temporalio/workflow';
import type { PipelineStatus } from '../common/types';
import { describeFailure, PipelineEnded } from './failures';
import type { PipelineContext } from './pipeline-context';
import { isFinished } from './pipeline-state';

/**
 * Superseded, rejected and expired pipelines complete with that status; cancelled ones end cancelled; any other
 * failure fails the workflow with its reason as the message (ROLLED_BACK after a rollback, FAILED otherwise).
 */
export async function endPipeline({ pipeline, reports }: PipelineContext, err: unknown): Promise<PipelineStatus> {
  // A long wait goes on in a new run: not an ending.
  if (err instanceof ContinueAsNew) throw err;
  const { status } = pipeline;
  const current = pipeline.environment(status.currentEnvironment);
  if (err instanceof PipelineEnded) {
    status.failure = err.message;
    pipeline.setStatus(err.status);
    if (err.status === 'SUPERSEDED') await reports.tellPeople(`${pipeline.headline()} was superseded: ${err.message}`);
    return status;
  }
  if (isCancellation(err)) {
    if (current && !isFinished(current.state)) current.state = 'CANCELLED';
    pipeline.setStatus('CANCELLED');
    if (current?.chartsCommit && current.state === 'CANCELLED') {
      await CancellationScope.nonCancellable(() => reports.reportDeployment(current.environment, 'inactive', 'pipeline cancelled'));
    }
    throw err;
  }
  const reason = describeFailure(err, pipeline.plan, status.currentEnvironment);
  status.failure = reason.message;
  if (current && !isFinished(current.state)) {
    current.state = 'FAILED';
    current.error = reason.message;
  }
  pipeline.setStatus(pipeline.rolledBack ? 'ROLLED_BACK' : 'FAILED');
  if (current?.chartsCommit) await reports.reportDeployment(current.environment, 'failure', reason.message);
  await reports.tellPeople(`${pipeline.headline()} ${pipeline.rolledBack ? 'was rolled back' : 'failed'}: ${reason.message}`);
  throw ApplicationFailure.create({ type: reason.type, message: reason.message, nonRetryable: true });
}
