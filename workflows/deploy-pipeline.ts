import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { formatDuration } from '../common/duration';
import { shortSha } from '../common/names';
import type {
  ApprovalReceipt,
  ApproveRequest,
  DeployStatus,
  EnvironmentPlan,
  EnvironmentState,
  EnvironmentStatus,
  LaneDeployed,
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
  laneGrantedSignal,
  laneHolderCheckSignal,
  laneWaitingSignal,
  laneWorkflowId,
  newerDeployedSignal,
  rejectSignal,
  rejectUpdate,
  releaseLaneSignal,
  setHoldSignal,
  statusQuery,
  stoppedAwaitingSignal,
} from './definitions';
import { approvalRefusal, type Decision, type DecisionRequest, type GateView, type PendingDecision, teamRefusal } from './approval-rules';
import { renderDetails } from './details';
import { allSettledThenThrow, describeFailure, PipelineEnded, rollbackCause } from './failures';
import { inputRefusal } from './input-checks';
import { Steps } from './steps';

type ApprovalOutcome = 'approved' | 'rejected' | 'expired' | 'superseded';
type DeployOutcome = 'deployed' | 'superseded';

export async function DeployPipeline(input: PipelineInput): Promise<PipelineStatus> {
  const refused = inputRefusal(input);
  if (refused) throw ApplicationFailure.create({ type: FailureTypes.InvalidInput, message: refused, nonRetryable: true });
  const state: PipelineStatus = {
    workflowId: workflowInfo().workflowId,
    app: input.app,
    ref: input.ref,
    trigger: input.trigger,
    status: 'RESOLVING',
    environments: [],
  };
  let plan: ReleasePlan | undefined;
  const steps = new Steps();
  let pending: PendingDecision | undefined;
  const granted = new Set<string>();
  /**
   * After an approval the lane is told we stopped waiting in the same workflow task as we ask it for the lane, not
   * first: one server round trip less between an approval and the deploy. The lane handles the two in either order.
   */
  let laneToldStoppedAwaiting: Promise<void> | undefined;
  let rolledBack = false;

  /** Every upsert is a write to the server's visibility store, and most steps change only the details. */
  let upserted: string | undefined;

  function publish(): void {
    const attributes = [
      { key: DeployApp, value: state.app },
      { key: DeployTrigger, value: state.trigger },
      { key: DeployStatusAttribute, value: state.status },
      ...(state.sha ? [{ key: DeployCommit, value: state.sha }] : []),
      ...(state.currentEnvironment ? [{ key: DeployEnvironment, value: state.currentEnvironment }] : []),
    ];
    const values = JSON.stringify(attributes.map(({ key, value }) => [key.name, value]));
    if (values !== upserted) upsertSearchAttributes(attributes);
    upserted = values;
    setCurrentDetails(renderDetails(state));
  }

  function setStatus(status: DeployStatus, environment?: EnvironmentStatus, environmentState?: EnvironmentState): void {
    state.status = status;
    if (environment && environmentState) {
      if (environment.state !== environmentState) {
        (environment.transitions ??= []).push({ state: environmentState, at: new Date().toISOString() });
      }
      environment.state = environmentState;
      if (environmentState !== 'WAITING_FOR_LANE' && environmentState !== 'FROZEN' && environmentState !== 'OUTSIDE_WINDOW') {
        environment.waitingFor = undefined;
      }
      state.currentEnvironment = environment.environment;
    }
    publish();
  }

  function headline(): string {
    return `${state.app} ${state.sha ? shortSha(state.sha) : state.ref} (${state.workflowId})`;
  }

  function environmentPlan(name: string): EnvironmentPlan | undefined {
    return plan?.environments.find((e) => e.name === name);
  }

  function gateView(): GateView {
    return {
      workflowId: state.workflowId,
      status: state.status,
      environments: state.environments,
      pending,
      environmentPlan: pending ? environmentPlan(pending.environment) : undefined,
      sha: plan?.sha,
      authorLogin: plan?.authorLogin,
    };
  }

  /** Checks that need no I/O, so the update's validator can refuse at once. */
  function refusal(request: DecisionRequest, decision: Decision): string | undefined {
    return approvalRefusal(request, decision, gateView());
  }

  /** Team membership needs GitHub, so it is checked in the handler, after the validator. */
  function teamRefusalOf(request: DecisionRequest): Promise<string | undefined> {
    const approvers = environmentPlan(request.environment)?.approvers ?? [];
    return teamRefusal(request, approvers, (team) => steps.calls.isTeamMember({ team, login: request.approver }));
  }

  async function decide(request: ApproveRequest | RejectRequest, decision: 'approved' | 'rejected'): Promise<ApprovalReceipt> {
    const reason = refusal(request, decision) ?? (await teamRefusalOf(request)) ?? refusal(request, decision);
    if (reason) throw ApplicationFailure.create({ type: FailureTypes.ApprovalRefused, message: reason, nonRetryable: true });
    const at = new Date().toISOString();
    if (decision === 'approved') pending!.approved = { ...(request as ApproveRequest), at };
    else pending!.rejected = { ...(request as RejectRequest), at };
    return { environment: request.environment, approver: request.approver, at, decision };
  }

  function validate(request: { environment: string; approver: string }, decision: 'approved' | 'rejected'): void {
    const reason = refusal(request, decision);
    if (reason) throw new Error(reason);
  }

  async function decideBySignal(request: ApproveRequest | RejectRequest, decision: 'approved' | 'rejected'): Promise<void> {
    // Signals cannot answer back (Web UI sends these); a refused one is logged and ignored.
    try {
      await decide(request, decision);
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === FailureTypes.ApprovalRefused) log.warn(`${decision} signal ignored`, { reason: err.message });
      else throw err;
    }
  }

  setHandler(statusQuery, () => state);
  setHandler(approveUpdate, (request) => decide(request, 'approved'), { validator: (request) => validate(request, 'approved') });
  setHandler(rejectUpdate, (request) => decide(request, 'rejected'), { validator: (request) => validate(request, 'rejected') });
  setHandler(approveSignal, (request) => decideBySignal(request, 'approved'), {
    description: 'Approve the promotion: {"environment": "staging", "approver": "<GitHub login>", "comment": "optional"}',
  });
  setHandler(rejectSignal, (request) => decideBySignal(request, 'rejected'), {
    description: 'Reject the promotion: {"environment": "staging", "approver": "<GitHub login>", "reason": "why"}',
  });
  const internal = { description: 'Internal: sent by the deploy lane. Do not send by hand.' };
  setHandler(
    laneGrantedSignal,
    ({ environment }) => {
      granted.add(environment);
    },
    internal,
  );
  setHandler(
    laneWaitingSignal,
    ({ environment, reason }) => {
      const env = state.environments.find((e) => e.environment === environment);
      if (env && env.state === 'WAITING_FOR_LANE') {
        env.waitingFor = reason;
        publish();
      }
    },
    internal,
  );
  setHandler(laneHolderCheckSignal, () => undefined, internal);
  setHandler(
    newerDeployedSignal,
    (news) => {
      if (pending?.environment === news.environment) pending.newer.push(news);
    },
    internal,
  );

  /** Outside reports must never turn a pipeline's outcome into another: a failed one is logged. */
  async function bestEffort(what: string, report: () => Promise<void>): Promise<void> {
    try {
      await report();
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.warn(`could not ${what}`, { error: (err as Error).message });
    }
  }

  function tellPeople(text: string): Promise<void> {
    return bestEffort('notify people', () => steps.calls.notifyPeople.executeWithOptions({ summary: 'Tell people on Slack' }, [{ text }]));
  }

  function reportDeployment(environment: string, deploymentState: 'in_progress' | 'success' | 'failure' | 'inactive', description: string): Promise<void> {
    if (!plan) return Promise.resolve();
    const request = { app: plan.app, environment, sha: plan.sha, state: deploymentState, description };
    return bestEffort('record the GitHub deployment', () =>
      steps.calls.recordGitHubDeployment.executeWithOptions({ summary: `GitHub deployment ${environment}: ${deploymentState}` }, [request]),
    );
  }

  publish();
  try {
    plan = await steps.calls.resolveRelease.executeWithOptions({ summary: `Resolve ${input.app} ${input.ref}` }, [input]);
    steps.usePlan(plan);
    state.sha = plan.sha;
    state.tag = plan.tag;
    state.environments = plan.environments.map((env) => ({ environment: env.name, state: 'PENDING', tag: plan!.tag }));
    publish();

    await ensureImage(plan);

    for (const [index, envPlan] of plan.environments.entries()) {
      const env = state.environments[index]!;
      if (index > 0 && !envPlan.continuousDeployment) {
        const outcome = await awaitApproval(plan, env);
        if (outcome === 'rejected') throw new PipelineEnded('REJECTED', `${env.environment} rejected by ${env.rejection!.by}: ${env.rejection!.comment}`);
        if (outcome === 'expired') throw new PipelineEnded('EXPIRED', `nobody approved ${env.environment} within ${formatDuration(plan.approvalTimeoutMs)}`);
        if (outcome === 'superseded') throw new PipelineEnded('SUPERSEDED', env.waitingFor!);
      }
      if ((await deployWithLane(plan, envPlan, env)) === 'superseded') throw new PipelineEnded('SUPERSEDED', env.waitingFor!);
    }
    setStatus('SUCCEEDED');
    return state;
  } catch (err) {
    const current = state.environments.find((e) => e.environment === state.currentEnvironment);
    if (err instanceof PipelineEnded) {
      state.failure = err.message;
      setStatus(err.status);
      if (err.status === 'SUPERSEDED') await tellPeople(`${headline()} was superseded: ${err.message}`);
      return state;
    }
    if (isCancellation(err)) {
      if (current && !isFinished(current.state)) current.state = 'CANCELLED';
      setStatus('CANCELLED');
      if (current?.chartsCommit && current.state === 'CANCELLED') {
        await CancellationScope.nonCancellable(() => reportDeployment(current.environment, 'inactive', 'pipeline cancelled'));
      }
      throw err;
    }
    const reason = describeFailure(err, plan, state.currentEnvironment);
    state.failure = reason.message;
    if (current && !isFinished(current.state)) {
      current.state = 'FAILED';
      current.error = reason.message;
    }
    setStatus(rolledBack ? 'ROLLED_BACK' : 'FAILED');
    if (current?.chartsCommit) await reportDeployment(current.environment, 'failure', reason.message);
    await tellPeople(`${headline()} ${rolledBack ? 'was rolled back' : 'failed'}: ${reason.message}`);
    throw ApplicationFailure.create({ type: reason.type, message: reason.message, nonRetryable: true });
  }

  async function ensureImage(release: ReleasePlan): Promise<void> {
    if (await steps.calls.imageExists.executeWithOptions({ summary: `Look for image ${release.tag}` }, [release.app, release.tag])) return;
    setStatus('BUILDING');
    const request = { app: release.app, sha: release.sha, tag: release.tag };
    await steps.calls.dispatchImageBuild.executeWithOptions({ summary: `Build image ${release.tag}` }, [request]);
    await steps.waits.waitForImage.executeWithOptions({ summary: `Wait for image ${release.tag}`, scheduleToCloseTimeout: release.buildTimeoutMs }, [request]);
  }

  /** Waits for the deploy window (automatic deploys), takes the lane, deploys; a freeze sends it back to wait. */
  async function deployWithLane(release: ReleasePlan, envPlan: EnvironmentPlan, env: EnvironmentStatus): Promise<DeployOutcome> {
    const automatic = input.trigger === 'ci';
    for (;;) {
      if (automatic && envPlan.hasDeployWindows) await awaitDeployWindow(release, env);
      await takeLane(release, env);
      let frozenAt: string | undefined;
      try {
        if (automatic) {
          const deployed = await steps.calls.compareWithDeployed.executeWithOptions({ summary: `Compare with what ${env.environment} runs` }, [
            { app: release.app, environment: env.environment, tag: release.tag, sha: release.sha },
          ]);
          if (deployed.relation === 'behind') {
            env.state = 'SUPERSEDED';
            env.waitingFor = `${env.environment} already runs ${deployed.tag}, newer than ${shortSha(release.sha)}`;
            return 'superseded';
          }
          if (deployed.relation === 'identical') {
            env.state = 'DEPLOYED';
            env.waitingFor = undefined;
            env.finishedAt = new Date().toISOString();
            publish();
            return 'deployed';
          }
        }
        frozenAt = await deploy(release, envPlan, env, automatic);
        if (frozenAt === undefined) return 'deployed';
      } finally {
        await releaseLane(release, env.environment);
      }
      env.waitingFor = `automatic deploys to ${env.environment} are turned off (automatic_deploys_enabled: false in ${frozenAt})`;
      setStatus('DEPLOYING', env, 'FROZEN');
      await sleep(release.freezeRecheckIntervalMs, { summary: `Frozen: look again in ${formatDuration(release.freezeRecheckIntervalMs)}` });
    }
  }

  async function awaitDeployWindow(release: ReleasePlan, env: EnvironmentStatus): Promise<void> {
    // The wait is counted from the instant we asked about: the activity itself takes time (and may be retried).
    const askedAt = Date.now();
    const waitMs = await steps.calls.msUntilDeployWindow.executeWithOptions({ summary: `Check the deploy window of ${env.environment}` }, [
      { app: release.app, environment: env.environment, nowMs: askedAt },
    ]);
    if (waitMs <= 0) return;
    const opensAtMs = askedAt + waitMs;
    const opensAt = new Date(opensAtMs).toISOString();
    env.waitingFor = `the deploy window for ${env.environment} opens at ${opensAt}`;
    setStatus('DEPLOYING', env, 'OUTSIDE_WINDOW');
    const remaining = opensAtMs - Date.now();
    if (remaining > 0) await sleep(remaining, { summary: `Wait for the ${env.environment} deploy window (${opensAt})` });
  }

  async function takeLane(release: ReleasePlan, env: EnvironmentStatus): Promise<void> {
    env.waitingFor = 'waiting for the lane';
    setStatus('DEPLOYING', env, 'WAITING_FOR_LANE');
    const request = { pipelineId: state.workflowId, runId: workflowInfo().runId, sha: release.sha, trigger: input.trigger };
    await steps.calls.signalLane.executeWithOptions({ summary: `Ask for the ${env.environment} lane` }, [
      { app: release.app, environment: env.environment, signal: 'acquire', request },
    ]);
    const told = laneToldStoppedAwaiting;
    laneToldStoppedAwaiting = undefined;
    await told;
    await condition(() => granted.has(env.environment));
  }

  /** Hands the lane back, with the news of our deploy when there is one. */
  async function releaseLane(release: ReleasePlan, environment: string, deployed?: LaneDeployed): Promise<void> {
    if (!granted.delete(environment)) return;
    // Even a cancelled pipeline must hand the lane back.
    await CancellationScope.nonCancellable(() =>
      getExternalWorkflowHandle(laneWorkflowId(workflowInfo().taskQueue, release.app, environment)).signal(releaseLaneSignal, {
        pipelineId: state.workflowId,
        ...(deployed ? { deployed } : {}),
      }),
    );
  }

  async function tellLane(release: ReleasePlan, environment: string, send: (lane: ReturnType<typeof getExternalWorkflowHandle>) => Promise<void>) {
    await CancellationScope.nonCancellable(() => send(getExternalWorkflowHandle(laneWorkflowId(workflowInfo().taskQueue, release.app, environment))));
  }

  /** Steps 3.2–3.7 while holding the lane. Returns the frozen file's path when a freeze stopped it. */
  async function deploy(release: ReleasePlan, envPlan: EnvironmentPlan, env: EnvironmentStatus, automatic: boolean): Promise<string | undefined> {
    const step = { app: release.app, environment: envPlan.name, tag: release.tag };
    const where = `${release.app} ${release.tag} to ${envPlan.name}`;
    env.startedAt ??= new Date().toISOString();
    setStatus('DEPLOYING', env, 'DEPLOYING');
    const change = await steps.calls.bumpImageTag.executeWithOptions({ summary: `Bump image tag: ${where}` }, [{ ...step, respectFreeze: automatic }]);
    if (change.frozen) return change.path;
    env.chartsCommit = change.chartsCommit;
    env.previousTag = change.previousTag;
    publish();
    // Steps that do not depend on one another run side by side: each server round trip saved is a few tens of
    // milliseconds per environment.
    await allSettledThenThrow([
      reportDeployment(envPlan.name, 'in_progress', `deploying ${release.tag}`),
      steps.calls.tagImage.executeWithOptions({ summary: `Tag image deployed-to-${envPlan.name}` }, [step]),
      steps.calls.notifyReleaseApp.executeWithOptions({ summary: `Tell the release app: ${where}` }, [step]),
    ]);

    try {
      setStatus('WAITING_FOR_SYNC', env, 'WAITING_FOR_SYNC');
      await waitForSync(release, envPlan, change.chartsCommit, release.tag);
      setStatus('SMOKE_TESTING', env, 'SMOKE_TESTING');
      await steps.waits.runSmokeTests.executeWithOptions({ summary: `Smoke test ${where}`, startToCloseTimeout: '30 minutes' }, [step]);
    } catch (err) {
      const cause = rollbackCause(err);
      if (!cause || !env.previousTag || env.previousTag === release.tag) throw err;
      await rollBack(release, envPlan, env, cause.message);
    }
    env.finishedAt = new Date().toISOString();
    setStatus('DEPLOYING', env, 'DEPLOYED');
    const reported = reportDeployment(envPlan.name, 'success', `${release.tag} is Synced, Healthy and passed its smoke tests`);
    const toldLane = (async () => {
      if (!automatic) {
        await tellLane(release, envPlan.name, (lane) =>
          lane.signal(setHoldSignal, {
            reason: `manual deploy of ${input.ref} (${shortSha(release.sha)})`,
            setBy: input.requestedBy ?? 'manual deploy',
            setAt: env.finishedAt!,
            pipelineId: state.workflowId,
          }),
        );
      }
      // The lane's release carries the news of our deploy to pipelines waiting for approval there.
      await releaseLane(release, envPlan.name, { pipelineId: state.workflowId, sha: release.sha });
    })();
    await allSettledThenThrow([reported, toldLane]);
    return undefined;
  }

  async function waitForSync(release: ReleasePlan, envPlan: EnvironmentPlan, chartsCommit: string, tag: string): Promise<void> {
    await steps.waits.waitForArgoSync.executeWithOptions(
      { summary: `Wait for Argo CD: ${envPlan.name} at charts ${shortSha(chartsCommit)}`, scheduleToCloseTimeout: envPlan.syncTimeoutMs },
      [{ app: release.app, environment: envPlan.name, tag, chartsCommit }],
    );
  }

  /** Step 3.7: put back the tag the environment ran, wait for it, and hold automatic deploys here. */
  async function rollBack(release: ReleasePlan, envPlan: EnvironmentPlan, env: EnvironmentStatus, reason: string): Promise<never> {
    const previousTag = env.previousTag!;
    const step = { app: release.app, environment: envPlan.name, tag: previousTag, purpose: 'rollback' as const };
    rolledBack = true;
    env.error = reason;
    setStatus('DEPLOYING', env, 'ROLLING_BACK');
    const revert = await steps.calls.bumpImageTag.executeWithOptions({ summary: `Roll back ${envPlan.name} to ${previousTag}` }, [
      { ...step, respectFreeze: false, reason: `${release.tag} failed` },
    ]);
    if (revert.frozen) throw new Error('a rollback never stops at a freeze');
    await steps.calls.tagImage.executeWithOptions({ summary: `Tag image ${previousTag} deployed-to-${envPlan.name}` }, [step]).catch((err: unknown) => {
      // The old image may be gone from ECR; the charts revert is what puts it back in the cluster.
      log.warn('could not move the deployed-to tag back', { error: (err as Error).message });
    });
    await steps.calls.notifyReleaseApp.executeWithOptions({ summary: `Tell the release app: ${envPlan.name} back on ${previousTag}` }, [step]);
    await tellLane(release, envPlan.name, (lane) =>
      lane.signal(setHoldSignal, {
        reason: `rolled back from ${release.tag}: ${reason}`,
        setBy: 'deploy pipeline',
        setAt: new Date().toISOString(),
        pipelineId: state.workflowId,
      }),
    );
    await waitForSync(release, envPlan, revert.chartsCommit, previousTag);
    env.state = 'ROLLED_BACK';
    env.finishedAt = new Date().toISOString();
    throw ApplicationFailure.create({
      type: FailureTypes.RolledBack,
      message: `${reason}; rolled ${envPlan.name} back to ${previousTag} and put a hold on automatic deploys there`,
      nonRetryable: true,
    });
  }

  async function awaitApproval(release: ReleasePlan, env: EnvironmentStatus): Promise<ApprovalOutcome> {
    pending = { environment: env.environment, newer: [] };
    state.awaitingApprovalFor = env.environment;
    setStatus('AWAITING_APPROVAL', env, 'AWAITING_APPROVAL');
    await tellPeople(`${headline()} waits for approval to deploy to ${env.environment}: deploy approve ${state.workflowId} --environment ${env.environment}`);
    await steps.calls.signalLane.executeWithOptions({ summary: `Tell the ${env.environment} lane we wait for approval` }, [
      { app: release.app, environment: env.environment, signal: 'awaitingApproval', request: { pipelineId: state.workflowId, sha: release.sha, trigger: input.trigger } },
    ]);
    const deadline = Date.now() + release.approvalTimeoutMs;
    let outcome: ApprovalOutcome | undefined;
    try {
      while (!outcome) {
        const remaining = deadline - Date.now();
        const woke = remaining > 0 && (await condition(() => Boolean(pending!.approved || pending!.rejected || pending!.newer.length > 0), remaining, {
          summary: `Wait for approval to deploy to ${env.environment}`,
        }));
        if (pending.approved) outcome = 'approved';
        else if (pending.rejected) outcome = 'rejected';
        else if (!woke) outcome = 'expired';
        else {
          const news = pending.newer.shift()!;
          const relation = await steps.calls.compareCommits.executeWithOptions({ summary: `Is ${shortSha(news.sha)} newer than ours?` }, [
            { app: release.app, base: release.sha, head: news.sha },
          ]);
          if (relation === 'ahead') {
            env.waitingFor = `superseded by ${shortSha(news.sha)} (${news.pipelineId}), already deployed to ${env.environment}`;
            outcome = 'superseded';
          }
        }
      }
    } finally {
      const { approved, rejected } = pending;
      pending = undefined;
      state.awaitingApprovalFor = undefined;
      if (approved) env.approval = { by: approved.approver, at: approved.at, comment: approved.comment };
      if (rejected) env.rejection = { by: rejected.approver, at: rejected.at, comment: rejected.reason };
      const told = tellLane(release, env.environment, (lane) => lane.signal(stoppedAwaitingSignal, { pipelineId: state.workflowId }));
      if (approved) {
        // Handled now so that a failure is not an unhandled rejection; takeLane awaits it.
        told.catch(() => undefined);
        laneToldStoppedAwaiting = told;
      } else {
        await told;
      }
    }
    if (outcome === 'rejected') env.state = 'REJECTED';
    if (outcome === 'expired') env.state = 'EXPIRED';
    if (outcome === 'superseded') env.state = 'SUPERSEDED';
    return outcome;
  }
}

function isFinished(state: EnvironmentState): boolean {
  return ['DEPLOYED', 'REJECTED', 'EXPIRED', 'FAILED', 'CANCELLED', 'ROLLED_BACK', 'SUPERSEDED'].includes(state);
}
