/**
 * Newest first, into the next environment (1.4). In a burst of merges the first commit to ask deploys an environment
 * before the newer ones have queued; the lane then grants the newest, and the first goes on to the next environment
 * ahead of it, so that environment deploys two commits, or more when the burst kept arriving (bench item 2a:
 * median 3 deploys per environment, 42 of 180 older pipelines deployed).
 *
 * So a pipeline that goes on by itself, and that had others queue behind it, asks when it hands the lane back to
 * hear who follows. If the lane's next grant goes to a newer commit of the app, the pipeline waits before its next
 * environment: when the newer one deploys here it ends SUPERSEDED naming it (the newer is on its way); when it does
 * not (its smoke tests fail, a freeze stops it, it ends), the pipeline goes on, so a bad newest commit never keeps a
 * good one from the next environment. Plain rules, no Temporal calls.
 */
import { reordered } from './lane-order';
import type { FollowerWatch, LaneHolder, LaneRequest, LaneState, NewerFollows } from './lane-protocol';

/** 1.4, in the lane and in the pipeline. */
export const LANE_TELLS_FOLLOWER = 'lane-tells-follower';

function tell(state: LaneState, to: FollowerWatch, news: Omit<NewerFollows, 'environment'>): void {
  (state.followerNews ??= []).push({ to, news: { environment: state.environment, ...news } });
}

/** The holder deployed and handed the lane back asking who follows: it hears at the lane's next grant. */
export function oweFollower(state: LaneState, holder: LaneHolder, sha: string): void {
  const { pipelineId, runId } = holder;
  state.owedFollower = { pipelineId, ...(runId ? { runId } : {}), sha };
}

/**
 * The lane granted `next`, or nobody. When `next` may be newer than the owed pipeline's commit, returns the two to
 * compare; otherwise the owed pipeline hears that nothing newer follows.
 */
export function followerToCompare(state: LaneState, next: LaneRequest | undefined): [FollowerWatch, LaneRequest] | undefined {
  const owed = state.owedFollower;
  if (!owed) return undefined;
  if (next && reordered(next) && next.pipelineId !== owed.pipelineId) return [owed, next];
  state.owedFollower = undefined;
  tell(state, owed, {});
  return undefined;
}

/** The compare's answer: the owed pipeline waits for `next` when its commit is newer and it still holds the lane. */
export function followerCompared(state: LaneState, owed: FollowerWatch, next: LaneRequest, nextIsNewer: boolean): void {
  if (state.owedFollower !== owed) return;
  state.owedFollower = undefined;
  if (!nextIsNewer || state.holder?.pipelineId !== next.pipelineId) return tell(state, owed, {});
  const newer = { pipelineId: next.pipelineId, sha: next.sha };
  state.followed = { ...owed, newer };
  tell(state, owed, { newer });
}

/** The pipeline a follower waits on left the lane: deployed, the follower is superseded; not, it goes on. */
export function followedLeft(state: LaneState, pipelineId: string, deployed: boolean): void {
  const { followed } = state;
  if (!followed || followed.newer.pipelineId !== pipelineId) return;
  state.followed = undefined;
  const { newer, ...follower } = followed;
  tell(state, follower, deployed ? { newer, deployed: true } : {});
}
