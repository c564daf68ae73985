/**
 * Newest first, to the end: when the newest queued commit of an app deploys, the older CI pipelines queued behind it
 * leave the queue and hear of the deploy at once, side by side; each compares (a read) and ends SUPERSEDED naming
 * it. Before this, each was granted the lane in turn only to find the environment ahead of it: three or four server
 * round trips apiece, one pipeline after another (bench item 2a). Only pipelines that say they listen while queued
 * (`hearsNewerDeployed`) are taken out: one that does not would wait for a grant that never comes. A commit that
 * queues alone while the lane is held is compared with the holder's, so it can leave with the others when the
 * holder deploys. Plain rules, no Temporal calls.
 */
import { reordered } from './lane-order';
import type { LaneDeployed, LaneRequest, LaneState } from './lane-protocol';

/** 1.2, in the lane and in the pipeline: a deploy takes the queued commits behind it out of the queue and tells them. */
export const LANE_SUPERSEDES_QUEUED = 'lane-supersedes-queued';

function listens(request: LaneRequest): boolean {
  return reordered(request) && request.hearsNewerDeployed === true;
}

/** Whether a chain of compares (`behind`, through the queue) puts the request behind `pipelineId`'s commit. */
function behindOf(state: LaneState, request: LaneRequest, pipelineId: string): boolean {
  const queued = new Map(state.queue.map((r) => [r.pipelineId, r]));
  const seen = new Set<string>();
  for (let next = request.behind; next !== undefined && !seen.has(next); next = queued.get(next)?.behind) {
    if (next === pipelineId) return true;
    seen.add(next);
  }
  return false;
}

/**
 * The holder of `pipelineId` handed the lane back, with `deployed` when it deployed: the listening requests behind
 * its commit leave the queue, to be told (`state.obsoleted`). Any others it outranked are ranked again: the holder
 * is gone, and what it beat is no longer known to be behind anything queued.
 */
export function holderLeft(state: LaneState, pipelineId: string, deployed: LaneDeployed | undefined): void {
  const obsolete = deployed ? state.queue.filter((r) => listens(r) && behindOf(state, r, pipelineId)) : [];
  state.queue = state.queue.filter((r) => !obsolete.includes(r));
  for (const request of state.queue) if (request.behind === pipelineId && listens(request)) delete request.behind;
  if (obsolete.length > 0) (state.obsoleted ??= []).push(...obsolete.map((r) => ({ pipelineId: r.pipelineId, news: deployed! })));
}

/** The listening request queued alone, unranked, to compare with the holder's commit, or none; each holder once. */
export function pairWithHolder(state: LaneState, comparedWith: Map<string, string>): [LaneRequest, LaneRequest] | undefined {
  const { holder } = state;
  if (!holder || !reordered(holder)) return undefined;
  const alone = state.queue.filter((r) => reordered(r) && r.behind === undefined);
  const request = alone.length === 1 ? alone[0]! : undefined;
  if (!request || !listens(request) || comparedWith.get(request.pipelineId) === holder.pipelineId) return undefined;
  return [request, holder];
}

/**
 * The answer to a `pairWithHolder` compare; false when it was no such pair, or the lane changed hands meanwhile.
 * Only a request behind the holder is marked: one newer than it waits to be ranked against whoever queues next.
 */
export function rankedWithHolder(state: LaneState, comparedWith: Map<string, string>, older: LaneRequest, newer: LaneRequest): boolean {
  const { holder } = state;
  if (!holder || (older !== holder && newer !== holder)) return false;
  const request = older === holder ? newer : older;
  if (!state.queue.includes(request)) return false;
  comparedWith.set(request.pipelineId, holder.pipelineId);
  if (newer === holder) request.behind = holder.pipelineId;
  return true;
}
