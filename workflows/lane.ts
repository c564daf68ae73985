import {
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { validateApprover } from '../common/names';
import type { LaneRequest, LaneState } from '../common/types';
import {
  acquireLaneSignal,
  awaitingApprovalSignal,
  clearHoldUpdate,
  DeployApp,
  DeployEnvironment,
  laneGrantedSignal,
  laneHolderCheckSignal,
  laneStateQuery,
  laneWaitingSignal,
  newerDeployedSignal,
  releaseLaneSignal,
  setHoldSignal,
  stoppedAwaitingSignal,
} from './definitions';

export interface LaneInput {
  app: string;
  environment: string;
  /** Carried over by continue-as-new. */
  state?: LaneState;
  /** How often a lane with pipelines waiting checks that its holder still runs (default one minute). */
  holderCheckIntervalMs?: number;
}

/** How long an idle lane with nothing to remember stays open before it completes. */
const IDLE_MS = 10 * 60_000;
const DEFAULT_HOLDER_CHECK_INTERVAL_MS = 60_000;

/**
 * A lane continues as new once its history passes this many events, long before the server would suggest it:
 * a busy app's lane hears of every pipeline, and a lane out of the worker's cache replays its whole history for
 * its next signal (the parked-pipelines benchmark slowed to a crawl on it).
 */
const MAX_LANE_HISTORY = 500;

/**
 * Signals sent side by side, at most this many at once: the server fails (and retries forever) a workflow task
 * that would leave more than 2,000 of a workflow's signals in flight.
 */
const SIGNALS_AT_ONCE = 500;

/**
 * One lane per (app, environment): it lets one pipeline at a time deploy there, keeps the hold that
 * stops automatic deploys after a rollback or a manual deploy, and tells pipelines waiting for
 * approval to deploy here when a newer release got here first. Pipelines reach it by signal-with-start.
 */
export async function DeployLane(input: LaneInput): Promise<void> {
  const state: LaneState = input.state ?? { app: input.app, environment: input.environment, queue: [], awaitingApproval: [] };
  let changed = false;
  const touch = () => {
    changed = true;
  };

  upsertSearchAttributes([
    { key: DeployApp, value: state.app },
    { key: DeployEnvironment, value: state.environment },
  ]);

  async function tell<T>(pipelineId: string, send: (handle: ReturnType<typeof getExternalWorkflowHandle>) => Promise<T>, runId?: string): Promise<boolean> {
    try {
      await send(getExternalWorkflowHandle(pipelineId, runId));
      return true;
    } catch (err) {
      if (isCancellation(err)) throw err;
      // The pipeline has ended (cancelled, terminated): nothing to wait for.
      log.warn('lane could not reach pipeline', { pipelineId, error: (err as Error).message });
      return false;
    }
  }

  function eligible(request: LaneRequest): boolean {
    return request.trigger === 'manual' || state.hold === undefined;
  }

  function waitingReason(request: LaneRequest): string | undefined {
    const holderReason = () => `${state.holder!.pipelineId} is deploying ${state.app} to ${state.environment}`;
    const holdReason = () =>
      `hold on ${state.app} in ${state.environment}: ${state.hold!.reason} (set by ${state.hold!.setBy} at ${state.hold!.setAt}); clear it with "deploy hold clear"`;
    // Only the pipeline next in line is told who holds the lane: telling every one at each hand-over costs n² signals.
    if (state.holder && state.queue.find(eligible) === request) return holderReason();
    if (!eligible(request)) return holdReason();
    // Behind others in the queue the pipeline shows that it waits for the lane, as it asked; unless it was told
    // something else before (a hold since cleared), there is nothing to say.
    return told.has(request.pipelineId) ? `queued behind other pipelines deploying ${state.app} to ${state.environment}` : undefined;
  }

  /** A pipeline queued behind the holder where none waited: time to check the holder still runs. */
  let firstBehindHolder = false;
  setHandler(laneStateQuery, () => state);
  setHandler(acquireLaneSignal, (request) => {
    // One pipeline ID has one open run at most: a request from another run means the holder's run has ended.
    if (state.holder?.pipelineId === request.pipelineId && request.runId && state.holder.runId && request.runId !== state.holder.runId) {
      log.warn('a new run of the lane holder asks for the lane; the run holding it has ended', { holder: state.holder, request });
      state.holder = undefined;
    }
    state.queue = state.queue.filter((r) => r.pipelineId !== request.pipelineId || !request.runId || r.runId === request.runId);
    const known = state.holder?.pipelineId === request.pipelineId || state.queue.some((r) => r.pipelineId === request.pipelineId);
    if (!known && state.holder && state.queue.length === 0) firstBehindHolder = true;
    if (!known) state.queue.push(request);
    touch();
  });
  const pendingNews: { pipelineId: string; sha: string }[] = [];
  setHandler(releaseLaneSignal, ({ pipelineId, deployed }) => {
    if (deployed) pendingNews.push(deployed);
    if (state.holder?.pipelineId === pipelineId) state.holder = undefined;
    state.queue = state.queue.filter((r) => r.pipelineId !== pipelineId);
    touch();
  });
  setHandler(awaitingApprovalSignal, (request) => {
    if (!state.awaitingApproval.some((r) => r.pipelineId === request.pipelineId)) state.awaitingApproval.push(request);
    touch();
  });
  setHandler(stoppedAwaitingSignal, ({ pipelineId }) => {
    state.awaitingApproval = state.awaitingApproval.filter((r) => r.pipelineId !== pipelineId);
    touch();
  });
  setHandler(setHoldSignal, (hold) => {
    state.hold = hold;
    touch();
  });
  setHandler(
    clearHoldUpdate,
    ({ by }) => {
      const cleared = state.hold!;
      log.info('hold cleared', { app: state.app, environment: state.environment, by, reason: cleared.reason });
      state.hold = undefined;
      touch();
      return cleared;
    },
    {
      validator: ({ by }) => {
        validateApprover(by);
        if (!state.hold) throw new Error(`there is no hold on ${state.app} in ${state.environment}`);
      },
    },
  );

  /** `tell` for each, side by side in slices; a pipeline that has ended leaves the queue when its grant fails. */
  async function tellEach<T>(recipients: T[], send: (recipient: T) => Promise<boolean>): Promise<void> {
    for (let start = 0; start < recipients.length; start += SIGNALS_AT_ONCE) {
      await Promise.all(recipients.slice(start, start + SIGNALS_AT_ONCE).map(send));
    }
  }

  /** Whether the holder still runs: a signal to a run that has ended cannot be delivered. */
  async function holderRuns(holder: LaneRequest): Promise<boolean> {
    const delivered = await tell(holder.pipelineId, (h) => h.signal(laneHolderCheckSignal, { environment: state.environment }), holder.runId);
    if (delivered) return true;
    log.warn('the pipeline holding the lane has ended without handing it back; the lane is free', { holder });
    if (state.holder === holder) state.holder = undefined;
    return false;
  }

  const told = new Map<string, string>();
  const holderCheckIntervalMs = input.holderCheckIntervalMs ?? DEFAULT_HOLDER_CHECK_INTERVAL_MS;
  let holderCheckDue = false;
  for (;;) {
    // Reset before looking, not after: a signal handled while we await a signal to a pipeline below must
    // bring us round again (a release arriving then would otherwise leave the lane free with pipelines queued).
    changed = false;
    // Who deployed a newer release: every pipeline waiting for approval here decides if it is now superseded.
    for (const news of pendingNews.splice(0)) {
      // One at a time: each pipeline told runs a compare, and a hundred told at once are a burst of work (with
      // them side by side, the parked-pipelines bench gave approvals p95 257 ms and a peak of 300 MiB).
      for (const waiting of state.awaitingApproval.filter((r) => r.pipelineId !== news.pipelineId)) {
        const delivered = await tell(waiting.pipelineId, (h) => h.signal(newerDeployedSignal, { environment: state.environment, ...news }));
        // It ended without saying so (terminated): nothing waits, and the lane may go idle.
        if (!delivered) state.awaitingApproval = state.awaitingApproval.filter((r) => r !== waiting);
      }
    }
    if (!state.holder) {
      const next = state.queue.find(eligible);
      if (next) {
        state.queue = state.queue.filter((r) => r !== next);
        state.holder = next;
        // Should it queue again (a freeze sends it back), it is told why it waits afresh.
        told.delete(next.pipelineId);
        if (!(await tell(next.pipelineId, (h) => h.signal(laneGrantedSignal, { environment: state.environment }), next.runId))) state.holder = undefined;
        continue;
      }
    } else if (holderCheckDue || firstBehindHolder) {
      holderCheckDue = false;
      firstBehindHolder = false;
      if (!(await holderRuns(state.holder))) continue;
      // Let go while we looked: hand the lane on before telling anyone why they wait.
      if (!state.holder) continue;
    }
    const tellWhy = (request: LaneRequest, reason: string) => {
      told.set(request.pipelineId, reason);
      return tell(request.pipelineId, (h) => h.signal(laneWaitingSignal, { environment: state.environment, reason }));
    };
    const toTell = state.queue.flatMap((request) => {
      const reason = waitingReason(request);
      return reason !== undefined && told.get(request.pipelineId) !== reason ? [{ request, reason }] : [];
    });
    await tellEach(toTell, ({ request, reason }) => tellWhy(request, reason));

    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > MAX_LANE_HISTORY) {
      await continueAsNew<typeof DeployLane>({ ...input, state });
    }
    const idle = !state.holder && state.queue.length === 0 && !state.hold && state.awaitingApproval.length === 0;
    if (!idle) {
      if (state.holder && state.queue.length > 0) holderCheckDue = !(await condition(() => changed, holderCheckIntervalMs));
      else await condition(() => changed);
    } else if (!(await condition(() => changed, IDLE_MS))) {
      return;
    }
  }
}
