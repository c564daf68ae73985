/** What a lane's hold stops, and how a pipeline it stops is told: pure rules, tested without a server. */
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
