/**
 * Who may approve or reject a promotion, and when: the refusal rules of the approval gate as pure functions (no
 * Temporal calls), so they are tested without a server. Each returns the reason it refuses, or undefined.
 */
import { shortSha, validateApprover } from '../common/names';
import { ANYONE, isAmong, isTeam } from '../common/people';
import type { ReleasePeople } from '../common/ports';
import type { PipelineState } from './pipeline-state';
import type { ApproveRequest, DecisionProof, DeployStatus, IdentityChannel, EnvironmentPlan, EnvironmentStatus, LaneDeployed, RejectRequest } from '../common/types';

export type Decision = 'approved' | 'rejected';

export interface DecisionRequest {
  environment: string;
  approver: string;
  proof?: DecisionProof;
  /** Set by the gate once a proof named the approver. */
  verified?: boolean;
}

/** When a decision came, and how its sender was known. */
export interface Proven {
  at: string;
  channel: IdentityChannel;
  evidence?: Record<string, string>;
  proofId?: string;
}

/** The approval the pipeline waits for, and what came while it waits. */
export interface PendingDecision {
  environment: string;
  approved?: ApproveRequest & Proven;
  rejected?: RejectRequest & Proven;
  /** Who wrote, committed or merged the commits the release brings here, once GitHub said. */
  releasePeople?: ReleasePeople;
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
  /** Who wrote, committed or merged the commits the release adds to the environment, once GitHub said. */
  releasePeople?: ReleasePeople;
}

/** The pipeline as the rules see it, with the decision it waits for (if it waits). */
export function gateView(pipeline: Pick<PipelineState, 'status' | 'plan' | 'environmentPlan'>, pending: PendingDecision | undefined): GateView {
  const { plan, status } = pipeline;
  return {
    workflowId: status.workflowId,
    status: status.status,
    environments: status.environments,
    pending,
    environmentPlan: pending ? pipeline.environmentPlan(pending.environment) : undefined,
    sha: plan?.sha,
    authorLogin: plan?.authorLogin,
    releasePeople: pending?.releasePeople,
  };
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

/**
 * Nobody approves their own change, unless the environment allows it: the head commit's author, and anyone who
 * wrote, committed or merged a commit the release brings to the environment. Rejecting one's own release is fine.
 */
export function selfApproval(request: DecisionRequest, decision: Decision, view: GateView): string | undefined {
  const { environmentPlan, authorLogin, sha, releasePeople } = view;
  if (decision === 'rejected' || !environmentPlan || environmentPlan.allowSelfApproval) return undefined;
  const login = request.approver.toLowerCase();
  if (authorLogin?.toLowerCase() === login) return `${request.approver} wrote ${shortSha(sha ?? '')} and may not approve its deploy to ${request.environment}`;
  if (!releasePeople) return undefined;
  const role = releasePeople.authors.includes(login)
    ? 'wrote'
    : releasePeople.committers.includes(login)
      ? 'committed'
      : releasePeople.mergedBy.includes(login)
        ? 'merged'
        : undefined;
  if (role) return `${request.approver} ${role} a change in this release and may not approve its deploy to ${request.environment}`;
  if (releasePeople.truncated) {
    return `GitHub lists only part of the commits this release brings to ${request.environment}, so who wrote them is not known; nobody may approve it here (deploy a smaller step first)`;
  }
  return undefined;
}

/**
 * Where decisions must be proved, a name alone is refused; so is a proof seen before. `senderProves`: the signal's
 * Temporal principal is asked instead (decision-checks.ts).
 */
export function unverifiedDecision(request: DecisionRequest, view: GateView, senderProves = false): string | undefined {
  if (view.environmentPlan?.identity !== 'verified' || request.proof || request.verified || senderProves) return undefined;
  return (
    `${request.environment} takes only verified decisions, and a name alone ("${request.approver}") proves nothing: ` +
    'sign it (deploy approve … --sign-with ~/.ssh/id_ed25519) or send it from the approve workflow in GitHub Actions'
  );
}

/** A token or signature counts once: one that decided anything before (here or elsewhere in this pipeline) is a replay. */
export function replayedProof(proofId: string, view: GateView): string | undefined {
  const seen = view.environments.some((e) => e.approval?.proofId === proofId || e.rejection?.proofId === proofId);
  return seen ? 'this proof was used before: each decision needs a fresh token or signature' : undefined;
}

function notAnApproverMessage(request: DecisionRequest, approvers: string[]): string {
  return `${request.approver} may not approve deploys to ${request.environment} (approvers: ${approvers.join(', ')})`;
}


/**
 * Approvers named by login only: whoever is not on the list may not decide. Teams need GitHub (teamRefusal). An
 * empty list lets nobody: only `anyone`, written out, lets anyone.
 */
export function notAnApprover(request: DecisionRequest, approvers: string[], emptyMeansAnyone = false): string | undefined {
  if (approvers.length === 0 && emptyMeansAnyone) return undefined;
  if (approvers.length === 0) return `nobody may approve deploys to ${request.environment}: the catalogue names no approvers`;
  const users = approvers.filter((a) => !isTeam(a)).map((a) => a.toLowerCase());
  if (approvers.includes(ANYONE) || approvers.some(isTeam) || users.includes(request.approver.toLowerCase())) return undefined;
  return notAnApproverMessage(request, approvers);
}

/**
 * Every rule that needs no I/O, in the order they are told, so the update's validator can refuse at once: the
 * request's shape and texts, the approver's login, an earlier decision, whether and where the pipeline awaits
 * approval, self-approval, the list of approvers.
 */
export function approvalRefusal(request: DecisionRequest, decision: Decision, view: GateView, senderProves = false): string | undefined {
  return (
    malformedDecision(request, decision) ??
    invalidApprover(request) ??
    alreadyDecided(request, view) ??
    notAwaiting(view) ??
    wrongEnvironment(request, view) ??
    unverifiedDecision(request, view, senderProves) ??
    selfApproval(request, decision, view) ??
    // Plans recorded before identities were checked (no `identity`) took an empty list to mean anyone.
    notAnApprover(request, view.environmentPlan?.approvers ?? [], view.environmentPlan?.identity === undefined)
  );
}

/**
 * Team membership needs GitHub, so it is asked after the rules above, one team after another until one has the
 * approver. Someone on the list by login needs no team.
 */
export async function teamRefusal(request: DecisionRequest, approvers: string[], isMember: (team: string) => Promise<boolean>): Promise<string | undefined> {
  // Logins alone were judged without GitHub (notAnApprover).
  if (!approvers.some(isTeam)) return undefined;
  return (await isAmong(request.approver, approvers, isMember)) ? undefined : notAnApproverMessage(request, approvers);
}
