/** What a lane's hold stops, and what a queued pipeline is told of why it waits: pure rules, tested without a server. */
import type { Hold, LaneRequest, LaneState } from './lane-protocol';

/** What a hold stops; holds set before kinds existed say it in their reason. */
export function holdKind(hold: Hold): NonNullable<Hold['kind']> {
  return hold.kind ?? (hold.reason.startsWith('manual deploy of') ? 'manual-deploy' : 'safety');
}

/**
 * Whether the request may have the lane while the hold stands: a manual deploy's hold stops automatic deploys;
 * a rollback's or an unverified deploy's stops every deploy (lanes started before 1.1: automatic ones only).
 */
export function passesHold(request: LaneRequest, hold: Hold | undefined, safetyHoldsStopManualDeploys: boolean): boolean {
  if (hold === undefined) return true;
  if (request.trigger !== 'manual') return false;
  return !safetyHoldsStopManualDeploys || holdKind(hold) === 'manual-deploy';
}

export function heldBackReason({ app, environment, hold }: LaneState): string {
  return `hold on ${app} in ${environment}: ${hold!.reason} (set by ${hold!.setBy} at ${hold!.setAt}); clear it with "deploy hold clear"`;
}

/**
 * Why a queued request waits, if there is something to tell it. `toldBefore`: it has been told something (a hold since
 * cleared, say), and hears that it waits in the queue rather than keep showing what no longer holds.
 */
export function waitingReason(state: LaneState, request: LaneRequest, eligible: (r: LaneRequest) => boolean, toldBefore: boolean): string | undefined {
  // Only the pipeline next in line is told who holds the lane: telling every one at each hand-over costs n² signals.
  if (state.holder && state.queue.find(eligible) === request) return `${state.holder.pipelineId} is deploying ${state.app} to ${state.environment}`;
  if (!eligible(request)) return heldBackReason(state);
  return toldBefore ? `queued behind other pipelines deploying ${state.app} to ${state.environment}` : undefined;
}
