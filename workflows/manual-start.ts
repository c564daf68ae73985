/**
 * A manual deploy passes the gates an automatic one does: who may start one here, a commit that is not on the
 * main branch, and the approval the environment needs. A person's say-so proves nothing: the starter counts only
 * with a proof (their Actions run's OIDC token, or a statement signed with their SSH key).
 */
import { ActivityFailure, ApplicationFailure, isCancellation } from '@temporalio/workflow';
import { shortSha } from '../common/names';
import { ANYONE, isAmong } from '../common/people';
import type { EnvironmentPlan, EnvironmentStatus, VerifiedPerson } from '../common/types';
import { FailureTypes } from '../common/types';
import type { ApprovalGate } from './approval-gate';
import type { PipelineContext } from './pipeline-context';

function refused(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: FailureTypes.IdentityRefused, message: `${message}; nothing was deployed`, nonRetryable: true });
}

async function verifiedStarter(ctx: PipelineContext, envPlan: EnvironmentPlan): Promise<VerifiedPerson | undefined> {
  const { input, pipeline, steps } = ctx;
  if (!input.proof) return undefined;
  const question = {
    pipelineId: pipeline.workflowId,
    environment: envPlan.name,
    commit: pipeline.plan!.sha,
    action: 'deploy' as const,
    claimedLogin: input.requestedBy,
    app: input.app,
    ref: input.ref,
  };
  try {
    return await steps.calls.verifyIdentity.executeWithOptions({ summary: 'Who started this manual deploy?' }, [{ question, proof: input.proof }]);
  } catch (err) {
    if (isCancellation(err)) throw err;
    const cause = err instanceof ActivityFailure && err.cause ? err.cause : (err as Error);
    throw refused(`the proof of who started this deploy is refused: ${cause.message}`);
  }
}

export async function admitManualDeploy(ctx: PipelineContext, gate: ApprovalGate, envPlan: EnvironmentPlan, env: EnvironmentStatus): Promise<void> {
  const { input, pipeline } = ctx;
  const plan = pipeline.plan!;
  const starter = await verifiedStarter(ctx, envPlan);
  if (!envPlan.deployers.includes(ANYONE)) {
    if (!starter) {
      throw refused(`only ${envPlan.deployers.join(', ')} may deploy to ${envPlan.name} by hand, and a name alone proves nothing: start it with --sign-with KEY, or from the deploy workflow`);
    }
    const login = starter.login;
    if (!(await isAmong(login, envPlan.deployers, (team) => ctx.steps.calls.isTeamMember({ team, login })))) throw refused(`${starter.login} may not deploy to ${envPlan.name} by hand (deployers: ${envPlan.deployers.join(', ')})`);
  }
  const unmerged = plan.onMainBranch === false;
  if (unmerged && !input.allowUnmerged) {
    throw ApplicationFailure.create({
      type: FailureTypes.InvalidInput,
      message: `${input.ref} (${shortSha(plan.sha)}) is not on ${plan.mainBranch ?? 'the main branch'}: deploying it needs --allow-unmerged; nothing was deployed`,
      nonRetryable: true,
    });
  }
  if (!envPlan.needsApproval) return;
  if (unmerged) {
    // Someone other than the starter looks at a change that was never reviewed for merging.
    await gate.pass(env, `${shortSha(plan.sha)} is not on ${plan.mainBranch ?? 'the main branch'}: an approver of ${envPlan.name} must approve this manual deploy`);
  } else {
    await gate.pass(env, `a manual deploy to ${envPlan.name} needs an approver's verified approval`, starter);
  }
}
