/**
 * Who may approve or reject a promotion, and when: the refusal rules of the approval gate as pure functions (no
 * Temporal calls), so they are tested without a server. Each returns the reason it refuses, or undefined.
 */
import { shortSha, validateApprover } from '../common/names';
import type { ApproveRequest, DeployStatus, EnvironmentPlan, EnvironmentStatus, LaneDeployed, RejectRequest } from '../common/types';

export type Decision = 'approved' | 'rejected';

export interface DecisionRequest {
  environment: string;
  approver: string;
}

/** The approval the pipeline waits for, and what came while it waits. */
export interface PendingDecision {
  environment: string;
  approved?: ApproveRequest & { at: string };
  rejected?: RejectRequest & { at: string };
  /** Newer releases deployed to this environment while we wait; each may supersede us. */
  newer: LaneDeployed[];
}

/** What the rules look at: the pipeline as it stands. */
export interface GateView {
  workflowId: string;
  status: DeployStatus;
  environments: EnvironmentStatus[];
  pending?: PendingDecision;
  /** The plan of the environment awaiting approval (once the release is resolved). */
  environmentPlan?: EnvironmentPlan;
  sha?: string;
  /** GitHub login of the commit's author. */
  authorLogin?: string;
}

/** Longest comment or rejection reason: they are kept in the pipeline's state and history. */
export const MAX_DECISION_TEXT = 1000;

/** An approval or rejection as sent (the Web UI sends anything): an object, with a reason to reject, and texts of bounded length. */
export function malformedDecision(request: unknown, decision: Decision): string | undefined {
  if (!request || typeof request !== 'object' || Array.isArray(request)) {
    return 'an approval is {"environment", "approver", "comment"?} and a rejection {"environment", "approver", "reason"}';
  }
  const { comment, reason } = request as Record<string, unknown>;
  if (decision === 'rejected' && (typeof reason !== 'string' || !reason.trim())) return 'a rejection gives a reason';
  for (const [name, text] of [
    ['comment', comment],
    ['reason', reason],
  ] as const) {
    if (text !== undefined && text !== null && typeof text !== 'string') return `the ${name} must be text`;
    if (typeof text === 'string' && text.length > MAX_DECISION_TEXT) return `the ${name} is longer than ${MAX_DECISION_TEXT} characters`;
  }
  return undefined;
}

export function invalidApprover(request: DecisionRequest): string | undefined {
  try {
    validateApprover(request.approver);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A decision stands: a second one names the first, also once the pipeline has moved on from that environment. */
export function alreadyDecided(request: DecisionRequest, view: GateView): string | undefined {
  const decided = view.environments.find((e) => e.environment === request.environment);
  if (decided?.approval) return `${request.environment} was already approved by ${decided.approval.by}`;
  if (decided?.rejection) return `${request.environment} was already rejected by ${decided.rejection.by}: ${decided.rejection.comment}`;
  const { pending } = view;
  if (pending?.environment !== request.environment) return undefined;
  if (pending.approved) return `${pending.environment} was already approved by ${pending.approved.approver}`;
  if (pending.rejected) return `${pending.environment} was already rejected by ${pending.rejected.approver}: ${pending.rejected.reason}`;
  return undefined;
}

export function notAwaiting(view: GateView): string | undefined {
  return view.pending ? undefined : `pipeline ${view.workflowId} is not awaiting approval (status ${view.status})`;
}

export function wrongEnvironment(request: DecisionRequest, view: GateView): string | undefined {
  const awaited = view.pending?.environment;
  return awaited === undefined || awaited === request.environment ? undefined : `pipeline ${view.workflowId} is awaiting approval for ${awaited}, not ${request.environment}`;
}

/** The commit's author may not approve its own deploy, unless the environment allows it. */
export function selfApproval(request: DecisionRequest, view: GateView): string | undefined {
  const { environmentPlan, authorLogin, sha } = view;
  if (!environmentPlan || environmentPlan.allowSelfApproval || !authorLogin || authorLogin.toLowerCase() !== request.approver.toLowerCase()) return undefined;
  return `${request.approver} wrote ${shortSha(sha ?? '')} and may not approve its deploy to ${request.environment}`;
}

function notAnApproverMessage(request: DecisionRequest, approvers: string[]): string {
  return `${request.approver} may not approve deploys to ${request.environment} (approvers: ${approvers.join(', ')})`;
}

const isTeam = (approver: string) => approver.startsWith('@');

/** Approvers named by login only: whoever is not on the list may not decide. Teams need GitHub (teamRefusal). */
export function notAnApprover(request: DecisionRequest, approvers: string[]): string | undefined {
  const users = approvers.filter((a) => !isTeam(a)).map((a) => a.toLowerCase());
  if (approvers.length === 0 || approvers.some(isTeam) || users.includes(request.approver.toLowerCase())) return undefined;
  return notAnApproverMessage(request, approvers);
}

/**
 * Every rule that needs no I/O, in the order they are told, so the update's validator can refuse at once: the
 * request's shape and texts, the approver's login, an earlier decision, whether and where the pipeline awaits
 * approval, self-approval, the list of approvers.
 */
export function approvalRefusal(request: DecisionRequest, decision: Decision, view: GateView): string | undefined {
  return (
    malformedDecision(request, decision) ??
    invalidApprover(request) ??
    alreadyDecided(request, view) ??
    notAwaiting(view) ??
    wrongEnvironment(request, view) ??
    selfApproval(request, view) ??
    notAnApprover(request, view.environmentPlan?.approvers ?? [])
  );
}

/**
 * Team membership needs GitHub, so it is asked after the rules above, one team after another until one has the
 * approver. Someone on the list by login needs no team.
 */
export async function teamRefusal(request: DecisionRequest, approvers: string[], isMember: (team: string) => Promise<boolean>): Promise<string | undefined> {
  const teams = approvers.filter(isTeam);
  if (teams.length === 0 || approvers.some((a) => a.toLowerCase() === request.approver.toLowerCase())) return undefined;
  for (const team of teams) {
    if (await isMember(team)) return undefined;
  }
  return notAnApproverMessage(request, approvers);
}
