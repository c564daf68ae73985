/** The approval gate before an environment: the wait, and the decisions people send while it lasts. */
import { ApplicationFailure, condition, log } from '@temporalio/workflow';
import { formatDuration } from '../common/duration';
import { shortSha } from '../common/names';
import type { ApprovalReceipt, ApproveRequest, EnvironmentStatus, IdentityChannel, PipelineInput, RejectRequest, VerifiedPerson } from '../common/types';
import { FailureTypes } from '../common/types';
import { approvalRefusal, type Decision, type DecisionRequest, gateView, type GateView, type PendingDecision, replayedProof } from './approval-rules';
import { changesLine, decisionRecord } from './approval-records';
import { learnReleasePeople, proofOwner, senderMayProve, signalSender, teamCheck } from './decision-checks';
import { PipelineEnded } from './failures';
import type { NewerDeployed } from './lane-protocol';
import type { PipelineContext } from './pipeline-context';
import type { PipelineLanes } from './pipeline-lanes';
import type { PipelineState } from './pipeline-state';
import type { Reports } from './reports';
import type { Steps } from './steps';

/** Shown in Web UI, which sends the signals. */
export const APPROVE_SIGNAL_DESCRIPTION =
  'Approve the promotion: {"environment": "staging", "approver": "<GitHub login>", "comment": "optional"}. Environments that take only verified decisions refuse a bare name, unless the worker maps your Temporal principal to that login: else use deploy approve --sign-with, or the approve workflow.';
export const REJECT_SIGNAL_DESCRIPTION =
  'Reject the promotion: {"environment": "staging", "approver": "<GitHub login>", "reason": "why"}. Environments that take only verified decisions refuse a bare name, unless the worker maps your Temporal principal to that login: else use deploy reject --sign-with, or the approve workflow.';

type Outcome = 'approved' | 'rejected' | 'expired' | 'superseded';

export class ApprovalGate {
  private pending?: PendingDecision;
  /** Decision signals received of each name, counted whatever they say: the count names each one's event (signal-principal.ts). */
  private readonly signalsReceived: Record<Decision, number> = { approved: 0, rejected: 0 };

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

  /** `signal`: the decision came by the `signal`-th signal of its name, whose sender may prove it. */
  async decide(request: ApproveRequest | RejectRequest, decision: Decision, signal?: number): Promise<ApprovalReceipt> {
    const bySender = signal !== undefined && senderMayProve(request, this.view());
    const claimed = approvalRefusal(request, decision, this.view(), bySender);
    if (claimed) this.refuse(request, claimed);
    const sender = bySender ? () => signalSender(this.steps, this.pipeline, request, decision, signal, this.view()) : undefined;
    const person = request.proof ? await proofOwner(this.steps, this.pipeline, request, decision) : sender ? await sender() : undefined;
    if (typeof person === 'string') this.refuse(request, person);
    return this.settle(request, decision, person);
  }

  /** The rules again with the login the proof gave, then GitHub's answers; records the decision when all pass. */
  private async settle(request: ApproveRequest | RejectRequest, decision: Decision, person: VerifiedPerson | undefined): Promise<ApprovalReceipt> {
    const decider = person ? { ...request, approver: person.login, verified: true } : request;
    const unknown = await learnReleasePeople(this.steps, this.pipeline, this.pending, request.environment, 'to decide');
    if (unknown) this.refuse(request, unknown);
    // Asked again after each answer from GitHub: another decision may have come meanwhile.
    const reason =
      approvalRefusal(decider, decision, this.view()) ??
      (person ? replayedProof(person.proofId, this.view()) : undefined) ??
      (await teamCheck(this.steps, this.pipeline, decider)) ??
      approvalRefusal(decider, decision, this.view());
    if (reason) this.refuse(request, reason);
    const at = new Date().toISOString();
    const channel: IdentityChannel = person?.channel ?? 'claimed';
    const proven = person ? { channel, evidence: person.evidence, proofId: person.proofId } : { channel };
    // The proof itself is not kept: a token could still work for a few minutes.
    const { proof: _proof, verified: _verified, ...decided } = decider as (ApproveRequest | RejectRequest) & { verified?: boolean };
    if (decision === 'approved') this.pending!.approved = { ...(decided as ApproveRequest), at, ...proven };
    else this.pending!.rejected = { ...(decided as RejectRequest), at, ...proven };
    log.info(`${decision} by ${decider.approver} (${channel})`, { environment: request.environment });
    return { environment: request.environment, approver: decider.approver, at, decision, channel };
  }

  /** Signals cannot answer back (Web UI sends these); a refused one is logged and shown in the status. */
  async decideBySignal(request: ApproveRequest | RejectRequest, decision: Decision): Promise<void> {
    const signal = ++this.signalsReceived[decision];
    try {
      await this.decide(request, decision, signal);
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === FailureTypes.ApprovalRefused) log.warn(`${decision} signal ignored`, { reason: err.message });
      else throw err;
    }
  }

  /** Refuses the decision: the reason goes to the caller, the log, and the environment's status, where Web UI shows it. */
  private refuse(request: ApproveRequest | RejectRequest, reason: string): never {
    const env = this.pipeline.status.environments.find((e) => e.environment === (request as { environment?: unknown })?.environment);
    const claimedBy = typeof request?.approver === 'string' ? request.approver.slice(0, 100) : undefined;
    if (env) {
      env.refusedDecision = { reason, at: new Date().toISOString(), ...(claimedBy ? { claimedBy } : {}) };
      this.pipeline.publish();
    }
    throw ApplicationFailure.create({ type: FailureTypes.ApprovalRefused, message: reason, nonRetryable: true });
  }

  private async announceWait(env: EnvironmentStatus, reason: string | undefined): Promise<void> {
    const { pipeline } = this;
    const release = pipeline.plan!;
    pipeline.status.awaitingApprovalFor = env.environment;
    pipeline.setStatus('AWAITING_APPROVAL', env, 'AWAITING_APPROVAL');
    if (reason) {
      env.waitingFor = reason;
      pipeline.publish();
    }
    await this.reports.tellPeople(
      `${pipeline.headline()} waits for approval to deploy to ${env.environment}${reason ? ` (${reason})` : ''}${changesLine(env)}: deploy approve ${pipeline.workflowId} --environment ${env.environment}`,
    );
    await this.steps.recorded.signalLane.executeWithOptions({ summary: `Tell the ${env.environment} lane we wait for approval` }, [
      { app: release.app, environment: env.environment, signal: 'awaitingApproval', request: { pipelineId: pipeline.workflowId, sha: release.sha, trigger: this.input.trigger } },
    ]);
  }

  /** The person who started a manual deploy approves it, if the rules let them; if not, the reason is shown and the wait goes on. */
  private async starterApproves(env: EnvironmentStatus, starter: VerifiedPerson): Promise<string | undefined> {
    const request = { environment: env.environment, approver: starter.login, comment: 'started this manual deploy' };
    try {
      await this.settle(request, 'approved', starter);
      return undefined;
    } catch (err) {
      if (!(err instanceof ApplicationFailure && err.type === FailureTypes.ApprovalRefused)) throw err;
      return `${starter.login} started this deploy but cannot approve it (${err.message}): an approver must`;
    }
  }

  /** The lane's news of a newer deploy where we wait: it may supersede us. */
  newerDeployed(news: NewerDeployed): void {
    if (this.pending?.environment === news.environment) this.pending.newer.push(news);
  }

  /**
   * Waits until the environment is approved; a rejection, an expiry or a newer release there ends the pipeline.
   * `starter`: the verified person who started a manual deploy, whose own approval is tried first.
   */
  async pass(env: EnvironmentStatus, reason?: string, starter?: VerifiedPerson): Promise<void> {
    const outcome = await this.wait(env, reason, starter);
    if (outcome === 'rejected') throw new PipelineEnded('REJECTED', `${env.environment} rejected by ${env.rejection!.by}: ${env.rejection!.comment}`);
    if (outcome === 'expired') throw new PipelineEnded('EXPIRED', `nobody approved ${env.environment} within ${formatDuration(this.pipeline.plan!.approvalTimeoutMs)}`);
    if (outcome === 'superseded') throw new PipelineEnded('SUPERSEDED', env.waitingFor!);
  }

  /** `reason`: what the approver must know beyond the usual (the environment has diverged), shown while it waits. */
  private async wait(env: EnvironmentStatus, reason?: string, starter?: VerifiedPerson): Promise<Outcome> {
    const { pipeline } = this;
    const release = pipeline.plan!;
    const pending: PendingDecision = { environment: env.environment, newer: [] };
    this.pending = pending;
    // A verified starter who may approve here goes on at once: nobody is told to approve, nothing shows a wait.
    const starterRefused = starter ? await this.starterApproves(env, starter) : undefined;
    // What the release brings, and who wrote it, is asked before the wait is announced: the approver is told what
    // they approve, and an approval needs no round trip for it.
    if (!pending.approved) {
      await learnReleasePeople(this.steps, pipeline, pending, env.environment, 'ahead');
      await this.announceWait(env, starterRefused ?? reason);
    }
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
      if (approved) env.approval = decisionRecord(approved, approved.comment);
      if (rejected) env.rejection = decisionRecord(rejected, rejected.reason);
      const told = this.lanes.stoppedAwaiting(env.environment, Boolean(approved));
      if (told) await told;
    }
    if (outcome === 'rejected') env.state = 'REJECTED';
    if (outcome === 'expired') env.state = 'EXPIRED';
    if (outcome === 'superseded') env.state = 'SUPERSEDED';
    return outcome;
  }

  private view(): GateView {
    return gateView(this.pipeline, this.pending);
  }
}
