/**
 * Clearing a lane's hold: a person's decision like an approval, so it is proved the same way. Where the
 * environment's decisions are verified, only a verified approver of that environment may clear its hold; the
 * proof names the lane and the hold (by when it was set), so it clears nothing else.
 */
import { ActivityFailure, ApplicationFailure, log, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { PipelineActivities } from '../activities';
import { validateApprover } from '../common/names';
import { FailureTypes, type Hold } from '../common/types';
import type { ClearHoldRequest } from './lane-protocol';
import { clearHoldUpdate } from './lane-protocol';
import type { LaneQueue } from './lane-queue';

/** 1.1: a hold is cleared only by an approver of its environment, proved where decisions are verified. */
const VERIFIED_HOLD_CLEAR = 'verified-hold-clear';

const checks = proxyActivities<PipelineActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: Object.values(FailureTypes) },
});

function refused(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: FailureTypes.ApprovalRefused, message, nonRetryable: true });
}

async function whoClears(lane: LaneQueue, request: ClearHoldRequest): Promise<{ login: string; channel: string }> {
  const { app, environment, hold } = lane.state;
  let login = request.by;
  let channel = 'claimed';
  if (request.proof) {
    const question = { pipelineId: workflowInfo().workflowId, environment, commit: hold!.setAt, action: 'clear-hold' as const, claimedLogin: request.by };
    try {
      const person = await checks.verifyIdentity({ question, proof: request.proof });
      ({ login, channel } = person);
    } catch (err) {
      const cause = err instanceof ActivityFailure && err.cause ? err.cause : (err as Error);
      throw refused(`the proof is refused: ${cause.message}`);
    }
  }
  let refusal: string | undefined;
  try {
    refusal = await checks.holdClearRefusal({ app, environment, login, verified: channel !== 'claimed' });
  } catch (err) {
    const cause = err instanceof ActivityFailure && err.cause ? err.cause : (err as Error);
    throw refused(`could not check now who may clear holds on ${app} in ${environment}: ${cause.message}; the hold stays`);
  }
  if (refusal) throw refused(refusal);
  return { login, channel };
}

export function handleHoldClearing(lane: LaneQueue): void {
  const verified = patched(VERIFIED_HOLD_CLEAR);
  setHandler(
    clearHoldUpdate,
    async (request): Promise<Hold> => {
      const { login, channel } = verified ? await whoClears(lane, request) : { login: request.by, channel: 'claimed' };
      // Another clear may have come while we asked.
      const refusal = lane.clearHoldRefusal();
      if (refusal) throw refused(refusal);
      const cleared = lane.clearHold();
      log.info('hold cleared', { app: lane.state.app, environment: lane.state.environment, by: login, channel, reason: cleared.reason });
      return cleared;
    },
    {
      validator: ({ by }) => {
        validateApprover(by);
        const refusal = lane.clearHoldRefusal();
        if (refusal) throw new Error(refusal);
      },
    },
  );
}
