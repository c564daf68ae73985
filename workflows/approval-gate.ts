/** The approval gate before an environment: the wait, and the decisions people send while it lasts. */
import { ActivityFailure, ApplicationFailure, condition, isCancellation, log } from '@temporalio/workflow';
import { formatDuration } from '../common/duration';
import { shortSha } from '../common/names';
import type { ApprovalReceipt, ApproveRequest, EnvironmentStatus, PipelineInput, RejectRequest } from '../common/types';
import { FailureTypes } from '../common/types';
import { approvalRefusal, type Decision, type DecisionRequest, type GateView, type PendingDecision, teamRefusal } from './approval-rules';
import { PipelineEnded } from './failures';
import type { NewerDeployed } from './lane-protocol';
import type { PipelineContext } from './pipeline-context';
import type { PipelineLanes } from './pipeline-lanes';
import type { PipelineState } from './pipeline-state';
import type { Reports } from './reports';
import type { Steps } from './steps';

/** Shown in Web UI, which sends the signals. */
export const APPROVE_SIGNAL_DESCRIPTION = 'Approve the promotion: {"environment": "staging", "approver": "<GitHub login>", "comment": "optional"}';
export const REJECT_SIGNAL_DESCRIPTION = 'Reject the promotion: {"environment": "staging", "approver": "<GitHub login>", "reason": "why"}';

type Outcome = 'approved' | 'rejected' | 'expired' | 'superseded';

export class ApprovalGate {
  private pending?: PendingDecision;

  private readonly input: PipelineInput;
  private readonly pipeline: PipelineState;
  private readonly steps: Steps;
  private readonly reports: Reports;
  private readonly lanes: PipelineLanes;

  constructor({ input, pipeline, steps, reports, lanes }: PipelineContext) {
    this.input = input;
    this.pipeline = pipeline;
    this.steps = steps;
    this.reports = reports;
    this.lanes = lanes;
  }

  /** The update's validator: refuses at once, with the reason, what needs no I/O to refuse. */
  validate(request: DecisionRequest, decision: Decision): void {
    const reason = approvalRefusal(request, decision, this.view());
    if (reason) throw new Error(reason);
  }

  async decide(request: ApproveRequest | RejectRequest, decision: Decision): Promise<ApprovalReceipt> {
    // Asked again after GitHub answers: another decision may have come meanwhile.
    const reason = approvalRefusal(request, decision, this.view()) ?? (await this.teamRefusal(request)) ?? approvalRefusal(request, decision, this.view());
    if (reason) throw ApplicationFailure.create({ type: FailureTypes.ApprovalRefused, message: reason, nonRetryable: true });
    const at = new Date().toISOString();
    if (decision === 'approved') this.pending!.approved = { ...(request as ApproveRequest), at };
    else this.pending!.rejected = { ...(request as RejectRequest), at };
    return { environment: request.environment, approver: request.approver, at, decision };
  }

  /** Signals cannot answer back (Web UI sends these); a refused one is logged and ignored. */
  async decideBySignal(request: ApproveRequest | RejectRequest, decision: Decision): Promise<void> {
    try {
      await this.decide(request, decision);
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === FailureTypes.ApprovalRefused) log.warn(`${decision} signal ignored`, { reason: err.message });
      else throw err;
    }
  }

  /**
   * A check that cannot be made now (GitHub refuses us or is down, after the step's own retries) refuses the
   * decision with the reason: a handler that threw would fail the whole pipeline, which must keep waiting.
   */
  private async teamRefusal(request: DecisionRequest): Promise<string | undefined> {
    const approvers = this.pipeline.environmentPlan(request.environment)?.approvers ?? [];
    try {
      return await teamRefusal(request, approvers, (team) => this.steps.calls.isTeamMember({ team, login: request.approver }));
    } catch (err) {
      if (isCancellation(err)) throw err;
      const cause = err instanceof ActivityFailure && err.cause ? err.cause.message : (err as Error).message;
      return `could not check now whether ${request.approver} may approve deploys to ${request.environment}: ${cause}; nothing was decided, send the decision again`;
    }
  }

  /** The lane's news of a newer deploy where we wait: it may supersede us. */
  newerDeployed(news: NewerDeployed): void {
    if (this.pending?.environment === news.environment) this.pending.newer.push(news);
  }

  /** Waits until the environment is approved; a rejection, an expiry or a newer release there ends the pipeline. */
  async pass(env: EnvironmentStatus, reason?: string): Promise<void> {
    const outcome = await this.wait(env, reason);
    if (outcome === 'rejected') throw new PipelineEnded('REJECTED', `${env.environment} rejected by ${env.rejection!.by}: ${env.rejection!.comment}`);
    if (outcome === 'expired') throw new PipelineEnded('EXPIRED', `nobody approved ${env.environment} within ${formatDuration(this.pipeline.plan!.approvalTimeoutMs)}`);
    if (outcome === 'superseded') throw new PipelineEnded('SUPERSEDED', env.waitingFor!);
  }

  /** `reason`: what the approver must know beyond the usual (the environment has diverged), shown while it waits. */
  private async wait(env: EnvironmentStatus, reason?: string): Promise<Outcome> {
    const { pipeline } = this;
    const release = pipeline.plan!;
    const pending: PendingDecision = { environment: env.environment, newer: [] };
    this.pending = pending;
    pipeline.status.awaitingApprovalFor = env.environment;
    pipeline.setStatus('AWAITING_APPROVAL', env, 'AWAITING_APPROVAL');
    if (reason) {
      env.waitingFor = reason;
      pipeline.publish();
    }
    await this.reports.tellPeople(
      `${pipeline.headline()} waits for approval to deploy to ${env.environment}${reason ? ` (${reason})` : ''}: deploy approve ${pipeline.workflowId} --environment ${env.environment}`,
    );
    await this.steps.calls.signalLane.executeWithOptions({ summary: `Tell the ${env.environment} lane we wait for approval` }, [
      { app: release.app, environment: env.environment, signal: 'awaitingApproval', request: { pipelineId: pipeline.workflowId, sha: release.sha, trigger: this.input.trigger } },
    ]);
    const deadline = Date.now() + release.approvalTimeoutMs;
    let outcome: Outcome | undefined;
    try {
      while (!outcome) {
        const remaining = deadline - Date.now();
        const woke =
          remaining > 0 &&
          (await condition(() => Boolean(pending.approved || pending.rejected || pending.newer.length > 0), remaining, {
            summary: `Wait for approval to deploy to ${env.environment}`,
          }));
        if (pending.approved) outcome = 'approved';
        else if (pending.rejected) outcome = 'rejected';
        else if (!woke) outcome = 'expired';
        else {
          const news = pending.newer.shift()!;
          const relation = await this.steps.calls.compareCommits.executeWithOptions({ summary: `Is ${shortSha(news.sha)} newer than ours?` }, [
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
      this.pending = undefined;
      pipeline.status.awaitingApprovalFor = undefined;
      if (approved) env.approval = { by: approved.approver, at: approved.at, comment: approved.comment };
      if (rejected) env.rejection = { by: rejected.approver, at: rejected.at, comment: rejected.reason };
      const told = this.lanes.stoppedAwaiting(env.environment, Boolean(approved));
      if (told) await told;
    }
    if (outcome === 'rejected') env.state = 'REJECTED';
    if (outcome === 'expired') env.state = 'EXPIRED';
    if (outcome === 'superseded') env.state = 'SUPERSEDED';
    return outcome;
  }

  private view(): GateView {
    const { pending, pipeline } = this;
    const { plan, status } = pipeline;
    return {
      workflowId: status.workflowId,
      status: status.status,
      environments: status.environments,
      pending,
      environmentPlan: pending ? pipeline.environmentPlan(pending.environment) : undefined,
      sha: plan?.sha,
      authorLogin: plan?.authorLogin,
    };
  }
}
