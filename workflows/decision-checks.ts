/**
 * What the approval gate asks outside the workflow before a decision counts: who the proof (or the signal's
 * Temporal principal) names, who wrote the release, whether a team has the approver. Each returns the reason to
 * refuse when the answer cannot be had now: a handler that threw would fail the whole pipeline, which must keep
 * waiting.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, log, patched } from '@temporalio/workflow';
import type { ApproveRequest, RejectRequest, VerifiedPerson } from '../common/types';
import { FailureTypes } from '../common/types';
import { type Decision, type DecisionRequest, type GateView, type PendingDecision, teamRefusal, unverifiedDecision } from './approval-rules';
import { approveSignal, rejectSignal } from './definitions';
import type { PipelineState } from './pipeline-state';
import type { Steps } from './steps';

/** 1.1: self-approval counts everyone who wrote, committed or merged what the release brings, asked of GitHub. */
const RELEASE_PEOPLE = 'release-people';

function causeOf(err: unknown): Error {
  return err instanceof ActivityFailure && err.cause ? err.cause : (err as Error);
}

/** What the decision is about, as the pipeline knows it: any proof must be for exactly this. */
function questionOf(pipeline: PipelineState, request: ApproveRequest | RejectRequest, decision: Decision) {
  return {
    pipelineId: pipeline.workflowId,
    environment: request.environment,
    commit: pipeline.plan!.sha,
    action: decision === 'approved' ? ('approve' as const) : ('reject' as const),
    comment: decision === 'approved' ? (request as ApproveRequest).comment : (request as RejectRequest).reason,
    claimedLogin: request.approver,
  };
}

/** Who the proof says sent the decision, or why it proves nothing (or cannot be checked now). */
export async function proofOwner(steps: Steps, pipeline: PipelineState, request: ApproveRequest | RejectRequest, decision: Decision): Promise<VerifiedPerson | string> {
  try {
    return await steps.calls.verifyIdentity.executeWithOptions({ summary: `Who sent the ${decision} decision for ${request.environment}?` }, [
      { question: questionOf(pipeline, request, decision), proof: request.proof! },
    ]);
  } catch (err) {
    if (isCancellation(err)) throw err;
    const cause = causeOf(err);
    const refused = cause instanceof ApplicationFailure && cause.type === FailureTypes.IdentityRefused;
    return refused ? `the decision's proof is refused: ${cause.message}` : `could not check the decision's proof now: ${cause.message}; nothing was decided, send it again`;
  }
}

/**
 * 1.2: where decisions are verified, a decision signal without a proof (Web UI's, `temporal workflow signal`'s) is
 * proved by the principal the Temporal server recorded for its sender, if the worker maps it to a login. Updates
 * are not: their events are written when the worker completes its task, with the worker's principal.
 */
const SIGNAL_PRINCIPAL = 'signal-principal';

/** Whether the signal's sender is asked (which the workflow can know without I/O); records the guard when so. */
export function senderMayProve(request: unknown, view: GateView): boolean {
  if (!request || typeof request !== 'object') return false;
  const { proof, environment } = request as { proof?: unknown; environment?: unknown };
  if (proof !== undefined || view.environmentPlan?.identity !== 'verified' || view.pending?.environment !== environment) return false;
  return patched(SIGNAL_PRINCIPAL);
}

/**
 * Who sent the `ordinal`-th signal of its name that this run received (signal-principal.ts says why the count
 * names one event), or why a name alone still proves nothing: said as before 1.2, then why the principal does not.
 */
export async function signalSender(steps: Steps, pipeline: PipelineState, request: ApproveRequest | RejectRequest, decision: Decision, ordinal: number, view: GateView): Promise<VerifiedPerson | string> {
  const signal = { name: decision === 'approved' ? approveSignal.name : rejectSignal.name, ordinal };
  try {
    return await steps.calls.verifyIdentity.executeWithOptions({ summary: `Who sent ${signal.name} signal number ${ordinal}?` }, [
      { question: questionOf(pipeline, request, decision), signal },
    ]);
  } catch (err) {
    if (isCancellation(err)) throw err;
    const cause = causeOf(err);
    const refused = cause instanceof ApplicationFailure && cause.type === FailureTypes.IdentityRefused;
    if (refused) return `${unverifiedDecision(request, view)}; nor does the signal's Temporal principal prove it: ${cause.message}`;
    return `could not check now who sent the ${signal.name} signal: ${cause.message}; nothing was decided, send it again`;
  }
}

/**
 * Who wrote, committed or merged what the release brings to the environment, asked once per wait (while the wait
 * is announced, so that an approval needs no round trip for it) and kept in `pending`. Returns why a decision
 * cannot be judged now, when GitHub cannot say.
 */
export async function learnReleasePeople(
  steps: Steps,
  pipeline: PipelineState,
  pending: PendingDecision | undefined,
  environment: string,
  when: 'ahead' | 'to decide',
): Promise<string | undefined> {
  if (!pending || pending.environment !== environment || pending.releasePeople) return undefined;
  // Ahead of a wait it is asked anyway: the approver is shown what the release brings.
  if (when === 'to decide' && pipeline.environmentPlan(environment)?.allowSelfApproval) return undefined;
  // Pipelines started before 1.1 counted the head commit's author alone, and never asked.
  if (!patched(RELEASE_PEOPLE)) return undefined;
  const { app, sha } = pipeline.plan!;
  try {
    const people = await steps.calls.releasePeople.executeWithOptions({ summary: `What would ${environment} get, and who wrote it?` }, [{ app, environment, sha }]);
    pending.releasePeople = people;
    const env = pipeline.status.environments.find((e) => e.environment === environment);
    if (env && people.changes) env.changes = { total: people.totalChanges ?? people.changes.length, commits: people.changes };
    return undefined;
  } catch (err) {
    if (isCancellation(err)) throw err;
    const cause = causeOf(err).message;
    log.warn('could not ask GitHub who wrote the release; asked again at the next decision', { environment, error: cause });
    return `could not ask GitHub now who wrote the commits this release brings to ${environment}: ${cause}; nothing was decided, send the decision again`;
  }
}

/** The approvers' teams, asked of GitHub until one has the approver. */
export async function teamCheck(steps: Steps, pipeline: PipelineState, request: DecisionRequest): Promise<string | undefined> {
  const approvers = pipeline.environmentPlan(request.environment)?.approvers ?? [];
  try {
    return await teamRefusal(request, approvers, (team) => steps.calls.isTeamMember({ team, login: request.approver }));
  } catch (err) {
    if (isCancellation(err)) throw err;
    return `could not check now whether ${request.approver} may approve deploys to ${request.environment}: ${causeOf(err).message}; nothing was decided, send the decision again`;
  }
}
