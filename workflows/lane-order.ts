/**
 * Newest first: which of an app's CI pipelines queued for a lane goes next. When several commits of one app are
 * merged close together, deploying each in turn makes the newest wait behind all the others (GitHub Actions'
 * concurrency groups keep only the newest pending run, Spinnaker runs the latest execution, Kargo promotes the
 * newest freight); the lane grants the newest first, and the older ones, granted after it, find the environment
 * ahead of them and end SUPERSEDED without deploying.
 *
 * Commit order is GitHub's compare, the same that keeps an environment from moving backwards, not the commits'
 * dates: committer dates have one-second resolution (merges within a second tie), come from the committer's clock
 * for pushed commits, and say nothing of ancestry. The lane compares two queued commits at a time as they queue,
 * mostly while the holder deploys, so the order is known when the lane frees. Plain rules, no Temporal calls.
 */
import type { LaneRequest, LaneState } from './lane-protocol';

/** A CI request of an app whose queue is newest-first: the lane may grant a newer commit before it. */
export function reordered(request: LaneRequest): boolean {
  return request.trigger === 'ci' && request.queue === 'newest-first';
}

/**
 * Two queued requests whose commits are not yet ordered, or none. Each answer sets one aside (`markBehind`), so
 * n requests queued take n - 1 compares.
 */
export function pairToRank(state: LaneState): [LaneRequest, LaneRequest] | undefined {
  const unranked = state.queue.filter((r) => reordered(r) && r.behind === undefined);
  return unranked.length >= 2 ? [unranked[0]!, unranked[1]!] : undefined;
}

/** `older`'s commit is behind `newer`'s; false when either has left the queue meanwhile. */
export function markBehind(state: LaneState, older: LaneRequest, newer: LaneRequest): boolean {
  if (!state.queue.includes(older) || !state.queue.includes(newer)) return false;
  older.behind = newer.pipelineId;
  return true;
}

/**
 * The request no other outranks, from `first` (the first that may deploy, a newest-first CI request) up to the next
 * manual request, which keeps its place; `first` when there is none.
 */
export function newestFrom(state: LaneState, first: LaneRequest, eligible: (r: LaneRequest) => boolean): LaneRequest {
  for (const request of state.queue.slice(state.queue.indexOf(first))) {
    if (request.trigger === 'manual') break;
    if (reordered(request) && request.behind === undefined && eligible(request)) return request;
  }
  return first;
}
