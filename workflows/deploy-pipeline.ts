import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  TimeoutFailure,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { PipelineActivities } from '../activities/pipeline-activities';
import { formatDuration } from '../common/duration';
import { shortSha, validateApprover } from '../common/names';
import type {
  ApprovalReceipt,
  ApproveRequest,
  DeployStatus,
  EnvironmentPlan,
  EnvironmentState,
  EnvironmentStatus,
  PipelineInput,
  PipelineStatus,
  RejectRequest,
  ReleasePlan,
} from '../common/types';
import { FailureTypes } from '../common/types';
import {
  approveSignal,
  approveUpdate,
  DeployApp,
  DeployCommit,
  DeployEnvironment,
  DeployStatusAttribute,
  DeployTrigger,
  rejectSignal,
  rejectUpdate,
  statusQuery,
} from './definitions';
import { renderDetails } from './details';

const PERMANENT_FAILURES = Object.values(FailureTypes);

/** Calls to GitHub, ECR, git and the release app: transient faults retried with backoff, for a few minutes at most. */
const calls = proxyActivities<PipelineActivities>({
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 10,
    nonRetryableErrorTypes: PERMANENT_FAILURES,
  },
});

/** Long waits: they heartbeat, so a dead worker is noticed within the heartbeat timeout and the wait resumes elsewhere. */
const waits = proxyActivities<PipelineActivities>({
  // Each call sets its own bound from the catalogue (build and sync timeouts); this is the fallback.
  scheduleToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    nonRetryableErrorTypes: PERMANENT_FAILURES,
  },
});

interface PendingDecision {
  environment: string;
  approved?: ApproveRequest & { at: string };
  rejected?: RejectRequest & { at: string };
}

export async function DeployPipeline(input: PipelineInput): Promise<PipelineStatus> {
  const state: PipelineStatus = {
    workflowId: workflowInfo().workflowId,
    app: input.app,
    ref: input.ref,
    trigger: input.trigger,
    status: 'RESOLVING',
    environments: [],
  };
  let plan: ReleasePlan | undefined;
  let pending: PendingDecision | undefined;

  function publish(): void {
    upsertSearchAttributes([
      { key: DeployApp, value: state.app },
      { key: DeployTrigger, value: state.trigger },
      { key: DeployStatusAttribute, value: state.status },
      ...(state.sha ? [{ key: DeployCommit, value: state.sha }] : []),
      ...(state.currentEnvironment ? [{ key: DeployEnvironment, value: state.currentEnvironment }] : []),
    ]);
    setCurrentDetails(renderDetails(state));
  }

  function setStatus(status: DeployStatus, environment?: EnvironmentStatus, environmentState?: EnvironmentState): void {
    state.status = status;
    if (environment && environmentState) {
      environment.state = environmentState;
      state.currentEnvironment = environment.environment;
    }
    publish();
  }

  function refusal(request: { environment: string; approver: string }): string | undefined {
    try {
      validateApprover(request.approver);
    } catch (err) {
      return (err as Error).message;
    }
    if (!pending) return `pipeline ${state.workflowId} is not awaiting approval (status ${state.status})`;
    if (request.environment !== pending.environment) {
      return `pipeline ${state.workflowId} is awaiting approval for ${pending.environment}, not ${request.environment}`;
    }
    if (pending.approved) return `${pending.environment} was already approved by ${pending.approved.approver}`;
    if (pending.rejected) return `${pending.environment} was already rejected by ${pending.rejected.approver}`;
    const allowed = plan?.environments.find((e) => e.name === pending!.environment)?.approvers ?? [];
    if (allowed.length > 0 && !allowed.includes(request.approver)) {
      return `${request.approver} may not approve deploys to ${pending.environment} (approvers: ${allowed.join(', ')})`;
    }
    return undefined;
  }

  function decide(request: ApproveRequest | RejectRequest, decision: 'approved' | 'rejected'): ApprovalReceipt {
    const at = new Date().toISOString();
    if (decision === 'approved') pending!.approved = { ...(request as ApproveRequest), at };
    else pending!.rejected = { ...(request as RejectRequest), at };
    return { environment: request.environment, approver: request.approver, at, decision };
  }

  function rejectInvalid(request: { environment: string; approver: string }): void {
    const reason = refusal(request);
    if (reason) throw new Error(reason);
  }

  setHandler(statusQuery, () => state);
  setHandler(approveUpdate, (request) => decide(request, 'approved'), { validator: rejectInvalid });
  setHandler(rejectUpdate, (request) => decide(request, 'rejected'), { validator: rejectInvalid });
  // Signals cannot answer back (Web UI sends these); an invalid one is logged and ignored.
  setHandler(approveSignal, (request) => {
    const reason = refusal(request);
    if (reason) log.warn('approve signal ignored', { reason });
    else decide(request, 'approved');
  });
  setHandler(rejectSignal, (request) => {
    const reason = refusal(request);
    if (reason) log.warn('reject signal ignored', { reason });
    else decide(request, 'rejected');
  });

  publish();
  try {
    plan = await calls.resolveRelease.executeWithOptions({ summary: `Resolve ${input.app} ${input.ref}` }, [input]);
    state.sha = plan.sha;
    state.tag = plan.tag;
    state.environments = plan.environments.map((env) => ({ environment: env.name, state: 'PENDING', tag: plan!.tag }));
    publish();

    await ensureImage(plan);

    for (const [index, envPlan] of plan.environments.entries()) {
      const env = state.environments[index]!;
      if (index > 0 && !envPlan.continuousDeployment) {
        const outcome = await awaitApproval(env, plan.approvalTimeoutMs);
        if (outcome !== 'approved') {
          state.currentEnvironment = env.environment;
          setStatus(outcome === 'rejected' ? 'REJECTED' : 'EXPIRED');
          return state;
        }
      }
      await deploy(plan, envPlan, env);
    }
    setStatus('SUCCEEDED');
    return state;
  } catch (err) {
    const current = state.environments.find((e) => e.environment === state.currentEnvironment);
    if (isCancellation(err)) {
      if (current && !isFinished(current.state)) current.state = 'CANCELLED';
      setStatus('CANCELLED');
      throw err;
    }
    const reason = describeFailure(err, plan, state.currentEnvironment);
    state.failure = reason.message;
    if (current && !isFinished(current.state)) {
      current.state = 'FAILED';
      current.error = reason.message;
    }
    setStatus('FAILED');
    throw ApplicationFailure.create({ type: reason.type, message: reason.message, nonRetryable: true });
  }

  async function ensureImage(release: ReleasePlan): Promise<void> {
    if (await calls.imageExists.executeWithOptions({ summary: `Look for image ${release.tag}` }, [release.app, release.tag])) return;
    setStatus('BUILDING');
    const request = { app: release.app, sha: release.sha, tag: release.tag };
    await calls.dispatchImageBuild.executeWithOptions({ summary: `Build image ${release.tag}` }, [request]);
    await waits.waitForImage.executeWithOptions(
      { summary: `Wait for image ${release.tag}`, scheduleToCloseTimeout: release.buildTimeoutMs },
      [request],
    );
  }

  async function deploy(release: ReleasePlan, envPlan: EnvironmentPlan, env: EnvironmentStatus): Promise<void> {
    const step = { app: release.app, environment: envPlan.name, tag: release.tag };
    const where = `${release.app} ${release.tag} to ${envPlan.name}`;
    env.startedAt = new Date().toISOString();
    setStatus('DEPLOYING', env, 'DEPLOYING');
    const change = await calls.bumpImageTag.executeWithOptions({ summary: `Bump image tag: ${where}` }, [step]);
    env.chartsCommit = change.chartsCommit;
    env.previousTag = change.previousTag;
    publish();
    await calls.tagImage.executeWithOptions({ summary: `Tag image deployed-to-${envPlan.name}` }, [step]);
    await calls.notifyReleaseApp.executeWithOptions({ summary: `Tell the release app: ${where}` }, [step]);

    setStatus('WAITING_FOR_SYNC', env, 'WAITING_FOR_SYNC');
    await waits.waitForArgoSync.executeWithOptions(
      { summary: `Wait for Argo CD: ${envPlan.name} at charts ${shortSha(change.chartsCommit)}`, scheduleToCloseTimeout: envPlan.syncTimeoutMs },
      [{ ...step, chartsCommit: change.chartsCommit }],
    );

    setStatus('SMOKE_TESTING', env, 'SMOKE_TESTING');
    await waits.runSmokeTests.executeWithOptions({ summary: `Smoke test ${where}`, startToCloseTimeout: '30 minutes' }, [step]);
    env.finishedAt = new Date().toISOString();
    setStatus('DEPLOYING', env, 'DEPLOYED');
  }

  async function awaitApproval(env: EnvironmentStatus, timeoutMs: number): Promise<'approved' | 'rejected' | 'expired'> {
    pending = { environment: env.environment };
    state.awaitingApprovalFor = env.environment;
    setStatus('AWAITING_APPROVAL', env, 'AWAITING_APPROVAL');
    const decided = await condition(() => Boolean(pending!.approved || pending!.rejected), timeoutMs, {
      summary: `Wait for approval to deploy to ${env.environment}`,
    });
    const { approved, rejected } = pending;
    pending = undefined;
    state.awaitingApprovalFor = undefined;
    if (approved) {
      env.approval = { by: approved.approver, at: approved.at, comment: approved.comment };
      return 'approved';
    }
    if (rejected) {
      env.rejection = { by: rejected.approver, at: rejected.at, comment: rejected.reason };
      env.state = 'REJECTED';
      return 'rejected';
    }
    if (!decided) env.state = 'EXPIRED';
    return 'expired';
  }
}

function isFinished(state: EnvironmentState): boolean {
  return state === 'DEPLOYED' || state === 'REJECTED' || state === 'EXPIRED' || state === 'FAILED' || state === 'CANCELLED';
}

function timeoutMessage(activityType: string, plan: ReleasePlan | undefined, environment: string | undefined): string {
  const release = plan ? `${plan.app} ${plan.tag}` : 'the release';
  if (activityType === 'waitForImage') {
    return `image build timed out: no image for ${release} appeared in ECR within ${formatDuration(plan?.buildTimeoutMs ?? 0)}`;
  }
  if (activityType === 'waitForArgoSync') {
    const limit = plan?.environments.find((e) => e.name === environment)?.syncTimeoutMs ?? 0;
    return `Argo CD did not report ${release} Synced and Healthy in ${environment} within ${formatDuration(limit)}`;
  }
  return `step ${activityType} timed out`;
}

/** The root cause in words: the activity's own message, or what a timeout means for that step. */
function describeFailure(err: unknown, plan: ReleasePlan | undefined, environment: string | undefined): { type: string; message: string } {
  if (err instanceof ActivityFailure) {
    const cause = err.cause;
    if (cause instanceof ApplicationFailure) return { type: cause.type ?? 'ActivityFailed', message: cause.message };
    if (cause instanceof TimeoutFailure) {
      const type = err.activityType === 'waitForImage' ? FailureTypes.ImageBuildTimedOut : err.activityType === 'waitForArgoSync' ? FailureTypes.ArgoCdSyncTimedOut : 'StepTimedOut';
      return { type, message: timeoutMessage(err.activityType, plan, environment) };
    }
    return { type: 'ActivityFailed', message: `${err.activityType} failed: ${cause?.message ?? err.message}` };
  }
  if (err instanceof ApplicationFailure) return { type: err.type ?? 'PipelineFailed', message: err.message };
  return { type: 'PipelineFailed', message: err instanceof Error ? err.message : String(err) };
}
