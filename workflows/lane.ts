import { condition, continueAsNew, getExternalWorkflowHandle, isCancellation, log, patched, proxyActivities, proxyLocalActivities, setHandler, upsertSearchAttributes, uuid4, workflowInfo } from '@temporalio/workflow';
import type { PipelineActivities } from '../activities';
import type { LaneHolder, LaneRequest } from '../common/types';
import { DeployApp, DeployEnvironment } from './definitions';
import {
  acquireLaneSignal,
  awaitingApprovalSignal,
  laneGrantedSignal,
  laneHolderCheckSignal,
  type LaneInput,
  laneStateQuery,
  laneWaitingSignal,
  newerDeployedSignal,
  newerFollowsSignal,
  releaseLaneSignal,
  setHoldSignal,
  stoppedAwaitingSignal,
} from './lane-protocol';
import { handleHoldClearing } from './lane-holds';
import { emptyLane, LaneQueue } from './lane-queue';
import { LANE_SUPERSEDES_QUEUED } from './lane-supersede';
import { LANE_TELLS_FOLLOWER } from './lane-follow';
import { QUICK_STEPS_LOCAL } from './steps';

/** 1.1: a grant carries a token, and only a release with it frees the lane. */
const LANE_GRANT_TOKENS = 'lane-grant-tokens';
/** 1.1: a rollback's or an unverified deploy's hold stops manual deploys too. */
const SAFETY_HOLDS_STOP_MANUAL_DEPLOYS = 'safety-holds-stop-manual-deploys';

/** 1.1: the newest of an app's queued CI commits goes first (lane-order.ts), and a grant names the last deploy. */
const LANE_NEWEST_FIRST = 'lane-newest-first';

/**
 * Which of two queued commits is newer. A few quick tries: GitHub unreachable, the lane keeps the queue's order
 * rather than hold up every deploy of the app (each pipeline's own compare still keeps the environment from going back).
 */
const COMPARE_OPTIONS = { startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3, initialInterval: '1 second' } } as const;
const compareAsActivity = proxyActivities<PipelineActivities>(COMPARE_OPTIONS).compareCommits;
/** 1.3, as the pipeline's quick steps (steps.ts). */
const compareLocally = proxyLocalActivities<PipelineActivities>(COMPARE_OPTIONS).compareCommits;

/** How long an idle lane with nothing to remember stays open before it completes. */
const IDLE_MS = 10 * 60_000;
const DEFAULT_HOLDER_CHECK_INTERVAL_MS = 60_000;

/**
 * A lane continues as new once its history passes this many events, long before the server would suggest it:
 * a busy app's lane hears of every pipeline, and a lane out of the worker's cache replays its whole history for
 * its next signal. 1.3 (`patched('lane-shorter-runs')`): 150, not 500: with thousands of pipelines parked, the
 * cache holds lanes no longer than a few seconds, and each pipeline's lane signals replayed a longer history
 * than the last (BENCHMARKS.md, item 3).
 */
const LANE_SHORTER_RUNS = 'lane-shorter-runs';
const SHORT_LANE_HISTORY = 150;
/** Asked only once a run is past the shorter bound, so that a lane's history holds the patch marker only then. */
const maxLaneHistory = () => (patched(LANE_SHORTER_RUNS) ? SHORT_LANE_HISTORY : 500);
/**
 * Signals sent side by side, at most this many at once: the server fails (and retries forever) a workflow task
 * that would leave more than 2,000 of a workflow's signals in flight.
 */
const SIGNALS_AT_ONCE = 500;

type Pipeline = ReturnType<typeof getExternalWorkflowHandle>;

/** Web UI lists a workflow's signals: these are for pipelines to send, and say so. */
const FROM_PIPELINES = { description: 'Internal: sent by deploy pipelines. Do not send by hand.' };
/**
 * A hold is taken from anyone, with no token: it only stops automatic deploys, so a forged one fails safe (and
 * `deploy hold list` shows who set it).
 */
const SET_HOLD = {
  description: 'Internal: sent by deploy pipelines after a rollback or a manual deploy; stops automatic deploys here until "deploy hold clear".',
};

/** Whether the pipeline heard us; one that has ended (cancelled, terminated) cannot, and there is nothing to wait for. */
async function tell(pipelineId: string, send: (pipeline: Pipeline) => Promise<void>, runId?: string): Promise<boolean> {
  try {
    await send(getExternalWorkflowHandle(pipelineId, runId));
    return true;
  } catch (err) {
    if (isCancellation(err)) throw err;
    log.warn('lane could not reach pipeline', { pipelineId, error: (err as Error).message });
    return false;
  }
}

/** `tell` for each, side by side in slices. */
async function tellEach<T>(recipients: T[], send: (recipient: T) => Promise<boolean>): Promise<void> {
  for (let start = 0; start < recipients.length; start += SIGNALS_AT_ONCE) {
    await Promise.all(recipients.slice(start, start + SIGNALS_AT_ONCE).map(send));
  }
}

/**
 * One lane per (app, environment): it lets one pipeline at a time deploy there, keeps the hold that
 * stops automatic deploys after a rollback or a manual deploy, and tells pipelines waiting for
 * approval to deploy here when a newer release got here first. Pipelines reach it by signal-with-start.
 */
export async function DeployLane(input: LaneInput): Promise<void> {
  const tokens = patched(LANE_GRANT_TOKENS);
  const newestFirst = patched(LANE_NEWEST_FIRST);
  const rules = [patched(SAFETY_HOLDS_STOP_MANUAL_DEPLOYS), newestFirst, patched(LANE_SUPERSEDES_QUEUED), patched(LANE_TELLS_FOLLOWER)] as const;
  const lane = new LaneQueue(input.state ?? emptyLane(input.app, input.environment), () => (tokens ? uuid4() : undefined), ...rules);
  const { state } = lane;
  const { environment } = state;
  upsertSearchAttributes([
    { key: DeployApp, value: state.app },
    { key: DeployEnvironment, value: environment },
  ]);

  setHandler(laneStateQuery, () => lane.view());
  setHandler(
    acquireLaneSignal,
    (request) => {
      const ended = lane.acquire(request);
      if (ended) log.warn('a new run of the lane holder asks for the lane; the run holding it has ended', { holder: ended.pipelineId, request });
    },
    FROM_PIPELINES,
  );
  setHandler(
    releaseLaneSignal,
    (release) => {
      if (!lane.release(release)) log.warn('ignored a release without the token of the lane holder', { claimsToBe: release.pipelineId, holder: state.holder?.pipelineId });
    },
    FROM_PIPELINES,
  );
  setHandler(awaitingApprovalSignal, (request) => lane.awaitingApproval(request), FROM_PIPELINES);
  setHandler(stoppedAwaitingSignal, ({ pipelineId }) => lane.stoppedAwaiting(pipelineId), FROM_PIPELINES);
  setHandler(setHoldSignal, (hold) => lane.setHold(hold), SET_HOLD);
  handleHoldClearing(lane);

  /** Whether the holder still runs: a signal to a run that has ended cannot be delivered. */
  async function holderRuns(holder: LaneHolder): Promise<boolean> {
    if (await tell(holder.pipelineId, (p) => p.signal(laneHolderCheckSignal, { environment }), holder.runId)) return true;
    log.warn('the pipeline holding the lane has ended without handing it back; the lane is free', { holder });
    lane.holderEnded(holder);
    return false;
  }

  /**
   * Tells the run that asked it holds the lane. A pipeline continues as new while it waits long, and the grant may
   * find the run that asked closed: its new run (the pipeline's current run) is offered the lane in its place, and
   * hands it back at once unless it is waiting for it. A pipeline with no run open (terminated) is passed over.
   */
  async function grant(holder: LaneHolder): Promise<boolean> {
    const { lastDeployed } = state;
    const grant = {
      environment,
      token: holder.token,
      ...(newestFirst && lastDeployed ? { lastDeployed } : {}),
      ...(lane.tellsFollower ? { tellsFollower: true } : {}),
      ...(lane.tellsFollower && state.queue.length > 0 ? { othersQueued: true } : {}),
    };
    const granted = (p: Pipeline) => p.signal(laneGrantedSignal, grant);
    if (await tell(holder.pipelineId, granted, holder.runId)) return true;
    return lane.grantToCurrentRun(holder) && (await tell(holder.pipelineId, granted));
  }

  /** Whether GitHub says `later`'s commit is ahead of `earlier`'s; false when it cannot say. */
  async function isNewer(earlier: { pipelineId: string; sha: string }, later: { pipelineId: string; sha: string }): Promise<boolean> {
    try {
      const compareCommits = patched(QUICK_STEPS_LOCAL) ? compareLocally : compareAsActivity;
      return (await compareCommits({ app: state.app, base: earlier.sha, head: later.sha })) === 'ahead';
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.warn('could not compare two commits; the lane keeps the order it has', { earlier: earlier.pipelineId, later: later.pipelineId, error: (err as Error).message });
      return false;
    }
  }

  /** Orders two queued commits: the one GitHub says is behind goes after the other (unknown: the order they queued in). */
  async function rank([earlier, later]: [LaneRequest, LaneRequest]): Promise<void> {
    if (await isNewer(earlier, later)) lane.ranked(earlier, later);
    else lane.ranked(later, earlier);
  }

  const holderCheckIntervalMs = input.holderCheckIntervalMs ?? DEFAULT_HOLDER_CHECK_INTERVAL_MS;
  // On the clock, not "after a quiet interval": a busy lane hears signals all the time, and must still look.
  let nextHolderCheckAt = Date.now() + holderCheckIntervalMs;
  for (;;) {
    // Reset before looking, not after: a signal handled while we await a signal to a pipeline below must
    // bring us round again (a release arriving then would otherwise leave the lane free with pipelines queued).
    lane.changed = false;
    // Who deployed a newer release: every pipeline waiting for approval here decides if it is now superseded.
    for (const news of lane.takeNews()) {
      // One at a time: each pipeline told runs a compare, and a hundred told at once are a burst of work (with
      // them side by side, the parked-pipelines bench gave approvals p95 257 ms and a peak of 300 MiB).
      for (const waiting of lane.recipientsOf(news)) {
        if (!(await tell(waiting.pipelineId, (p) => p.signal(newerDeployedSignal, { environment, ...news })))) lane.forgetAwaiting(waiting);
      }
    }
    // Out of the queue already: side by side, as the point is that they all end at once, not one after another.
    await tellEach(lane.takeObsoleted(), ({ pipelineId, news }) => tell(pipelineId, (p) => p.signal(newerDeployedSignal, { environment, ...news })));
    await tellEach(lane.takeFollowerNews(), ({ to, news }) => tell(to.pipelineId, (p) => p.signal(newerFollowsSignal, news), to.runId));
    // Before a grant, and while the holder deploys: the order is known by the time the lane frees.
    const unordered = lane.pairToRank();
    if (unordered) {
      await rank(unordered);
      continue;
    }
    if (!state.holder) {
      const next = lane.grantNext();
      // Whoever deployed here last and goes on hears, before its next environment, whether a newer commit follows.
      const follower = lane.followerToCompare(next);
      if (follower) lane.followerCompared(...follower, await isNewer(...follower));
      if (next) {
        if (!(await grant(next))) lane.holderEnded(next);
        continue;
      }
    } else if (lane.holderCheckWanted(lane.watchesHolder() && Date.now() >= nextHolderCheckAt)) {
      nextHolderCheckAt = Date.now() + holderCheckIntervalMs;
      if (!(await holderRuns(state.holder))) continue;
      // Let go while we looked: hand the lane on before telling anyone why they wait.
      if (!state.holder) continue;
    }
    await tellEach(lane.reasonsToTell(), ({ request, reason }) => tell(request.pipelineId, (p) => p.signal(laneWaitingSignal, { environment, reason })));

    const { continueAsNewSuggested, historyLength } = workflowInfo();
    if (continueAsNewSuggested || (historyLength > SHORT_LANE_HISTORY && historyLength > maxLaneHistory())) {
      await continueAsNew<typeof DeployLane>({ ...input, state });
    }
    if (!lane.isIdle()) {
      if (lane.watchesHolder()) {
        const untilCheck = Math.max(1, nextHolderCheckAt - Date.now());
        await condition(() => lane.changed, untilCheck);
      } else await condition(() => lane.changed);
    } else if (!(await condition(() => lane.changed, IDLE_MS))) {
      return;
    }
  }
}
