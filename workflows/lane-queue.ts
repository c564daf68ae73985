/**
 * A lane's queue and hold, and what the pipelines in it should hear: plain state and rules, no Temporal calls, so
 * it is tested without a server. `DeployLane` feeds it the signals it receives and does the talking.
 */
import type { FollowerWatch, Hold, LaneDeployed, LaneHolder, LaneRelease, LaneRequest, LaneState, LaneView, NewerFollows } from './lane-protocol';
import { passesHold, waitingReason } from './lane-hold-rules';
import { markBehind, newestFrom, pairToRank, reordered } from './lane-order';
import { holderLeft, pairWithHolder, rankedWithHolder } from './lane-supersede';
import { followedLeft, followerCompared, followerToCompare, oweFollower } from './lane-follow';

export function emptyLane(app: string, environment: string): LaneState {
  return { app, environment, queue: [], awaitingApproval: [] };
}

export class LaneQueue {
  /** Set by every change; the lane's loop clears it before it looks, so a change made while it talks brings it round again. */
  changed = false;
  /** What each queued pipeline was last told about why it waits: it is told again only when that changes. */
  private readonly told = new Map<string, string>();
  /** A pipeline queued behind the holder where none waited: time to check the holder still runs. */
  private firstBehindHolder = false;
  /** Which holder's commit each request queued alone was compared with (lane-supersede.ts). */
  private readonly comparedWithHolder = new Map<string, string>();

  /**
   * `newToken`: a fresh token per grant (the lane's uuid4; undefined in lanes started before 1.1, which gave none).
   * 1.1's rules, off in lanes started before: safety holds stop manual deploys too; the newest CI commit goes first.
   * 1.2's: a deploy takes the queued commits behind it out of the queue (lane-supersede.ts).
   * 1.4's: a pipeline handing the lane back may hear whether a newer commit follows it here (lane-follow.ts).
   */
  constructor(
    readonly state: LaneState,
    private readonly newToken: () => string | undefined,
    private readonly safetyHoldsStopManualDeploys = true,
    private readonly newestFirst = true,
    private readonly supersedesQueued = true,
    readonly tellsFollower = true,
  ) {}

  /**
   * Queues a pipeline, once. A pipeline that continued as new while it waited asks from its new run: the request
   * takes the old run's place in the queue. Returns the holder it replaces when the request comes from a new run of
   * the holding pipeline: one pipeline ID has one open run at most, so the run holding the lane has ended, and the
   * new run goes first (it held the lane before anyone queued).
   */
  acquire(request: LaneRequest): LaneRequest | undefined {
    const { state } = this;
    this.changed = true;
    const otherRun = (r: LaneRequest) => r.pipelineId === request.pipelineId && request.runId !== undefined && r.runId !== undefined && r.runId !== request.runId;
    const { holder } = state;
    if (holder && otherRun(holder)) {
      state.holder = undefined;
      state.queue = [request, ...state.queue.filter((r) => r.pipelineId !== request.pipelineId)];
      this.told.delete(request.pipelineId);
      return holder;
    }
    if (holder?.pipelineId === request.pipelineId) return undefined;
    const queued = state.queue.findIndex((r) => r.pipelineId === request.pipelineId);
    if (queued >= 0) {
      if (otherRun(state.queue[queued]!)) {
        state.queue[queued] = request;
        // The new run shows only that it waits for the lane until it is told why.
        this.told.delete(request.pipelineId);
      }
      return undefined;
    }
    if (holder && state.queue.length === 0) this.firstBehindHolder = true;
    state.queue.push(request);
    return undefined;
  }

  /** Hands the lane back when the release carries the holder's token; returns whether it did. */
  release({ pipelineId, token, deployed, awaitsFollower }: LaneRelease): boolean {
    const { holder } = this.state;
    // A lane that granted before tokens existed (1.0) knows its holder by pipeline ID alone.
    const untokened = holder !== undefined && holder.token === undefined && pipelineId === holder.pipelineId;
    if (!holder || (!untokened && (typeof token !== 'string' || token !== holder.token))) return false;
    if (deployed) (this.state.news ??= []).push(deployed);
    if (deployed && this.newestFirst) this.state.lastDeployed = deployed;
    this.state.holder = undefined;
    this.state.queue = this.state.queue.filter((r) => r.pipelineId !== holder.pipelineId);
    if (this.newestFirst && this.supersedesQueued) holderLeft(this.state, holder.pipelineId, deployed);
    if (this.tellsFollower) {
      followedLeft(this.state, holder.pipelineId, deployed !== undefined);
      if (deployed && awaitsFollower === true && this.newestFirst) oweFollower(this.state, holder, deployed.sha);
    }
    this.changed = true;
    return true;
  }

  /** The state as the `laneState` query shows it: all but the holder's token. */
  view(): LaneView {
    const { holder, ...rest } = this.state;
    if (!holder) return rest;
    const { token: _token, ...request } = holder;
    return { ...rest, holder: request };
  }

  awaitingApproval(request: LaneRequest): void {
    if (!this.state.awaitingApproval.some((r) => r.pipelineId === request.pipelineId)) this.state.awaitingApproval.push(request);
    this.changed = true;
  }

  stoppedAwaiting(pipelineId: string): void {
    this.state.awaitingApproval = this.state.awaitingApproval.filter((r) => r.pipelineId !== pipelineId);
    this.changed = true;
  }

  setHold(hold: Hold): void {
    this.state.hold = hold;
    this.changed = true;
  }

  /** Why a hold cannot be cleared now, if it cannot. */
  clearHoldRefusal(): string | undefined {
    return this.state.hold ? undefined : `there is no hold on ${this.state.app} in ${this.state.environment}`;
  }

  clearHold(): Hold {
    const cleared = this.state.hold!;
    this.state.hold = undefined;
    this.changed = true;
    return cleared;
  }

  /** The deploys not yet passed on. */
  takeNews(): LaneDeployed[] {
    return (this.state.news ?? []).splice(0);
  }

  /** Queued pipelines a deploy took out of the queue, with the deploy each is to hear of. */
  takeObsoleted(): { pipelineId: string; news: LaneDeployed }[] {
    return (this.state.obsoleted ?? []).splice(0);
  }

  /** Who should hear of a deploy: every pipeline waiting for approval here now, but the one that deployed. */
  recipientsOf(news: LaneDeployed): LaneRequest[] {
    return this.state.awaitingApproval.filter((r) => r.pipelineId !== news.pipelineId);
  }

  /** A pipeline waiting for approval could not be reached: it ended without saying so, and nothing waits. */
  forgetAwaiting(request: LaneRequest): void {
    this.state.awaitingApproval = this.state.awaitingApproval.filter((r) => r !== request);
  }

  /**
   * After a grant (of `next`, or of nobody): the pipeline owed word of who follows and the request to compare it
   * with, when that request may be newer; otherwise the owed pipeline is to hear that nothing newer follows.
   */
  followerToCompare(next: LaneRequest | undefined): [FollowerWatch, LaneRequest] | undefined {
    const owed = this.state.owedFollower;
    const pair = followerToCompare(this.state, next);
    if (this.state.owedFollower !== owed) this.changed = true;
    return pair;
  }

  /** The answer to a `followerToCompare` compare. */
  followerCompared(owed: FollowerWatch, next: LaneRequest, nextIsNewer: boolean): void {
    followerCompared(this.state, owed, next, nextIsNewer);
    this.changed = true;
  }

  /** What the pipelines waiting on a newer commit here are to hear. */
  takeFollowerNews(): { to: FollowerWatch; news: NewerFollows }[] {
    return (this.state.followerNews ?? []).splice(0);
  }

  /** Two queued CI requests whose commits the lane has yet to order (lane-order.ts), or none. */
  pairToRank(): [LaneRequest, LaneRequest] | undefined {
    if (!this.newestFirst) return undefined;
    return pairToRank(this.state) ?? (this.supersedesQueued ? pairWithHolder(this.state, this.comparedWithHolder) : undefined);
  }

  /** `older`'s commit is behind `newer`'s (or GitHub could not say, and the earlier request is taken as newer). */
  ranked(older: LaneRequest, newer: LaneRequest): void {
    if (rankedWithHolder(this.state, this.comparedWithHolder, older, newer) || markBehind(this.state, older, newer)) this.changed = true;
  }

  /**
   * Hands a free lane, with a new token, to the first pipeline the hold lets by; for a newest-first app's CI request,
   * to the newest commit queued before the next manual request instead (a manual deploy keeps its place).
   */
  grantNext(): LaneHolder | undefined {
    if (this.state.holder) return undefined;
    const first = this.state.queue.find((r) => this.eligible(r));
    if (!first) return undefined;
    const next = this.newestFirst && reordered(first) ? newestFrom(this.state, first, (r) => this.eligible(r)) : first;
    this.state.queue = this.state.queue.filter((r) => r !== next);
    const token = this.newToken();
    const holder = token === undefined ? { ...next } : { ...next, token };
    this.state.holder = holder;
    // Should it queue again (a freeze sends it back), it is told why it waits afresh.
    this.told.delete(next.pipelineId);
    return holder;
  }

  /**
   * The run granted the lane has ended before it heard: its pipeline may have continued as new while it waited.
   * Returns whether to offer the grant to the pipeline's current run, whichever it is: yes when the grant is still
   * the lane's and went to one run in particular. From now on the lane speaks to the current run.
   */
  grantToCurrentRun(holder: LaneHolder): boolean {
    if (this.state.holder !== holder || holder.runId === undefined) return false;
    delete holder.runId;
    return true;
  }

  /** Whether to check now that the holder still runs: when the first pipeline queues behind it, or when a check is due. */
  holderCheckWanted(due: boolean): boolean {
    const wanted = this.state.holder !== undefined && (due || this.firstBehindHolder);
    if (wanted) this.firstBehindHolder = false;
    return wanted;
  }

  /** The holder ended without handing the lane back, or before it heard of its grant: free unless it changed hands. */
  holderEnded(holder: LaneHolder): void {
    if (this.state.holder !== holder) return;
    this.state.holder = undefined;
    followedLeft(this.state, holder.pipelineId, false);
  }

  /** The queued pipelines whose reason to wait changed since they were last told, with the reason; recorded as told. */
  reasonsToTell(): { request: LaneRequest; reason: string }[] {
    const toTell = this.state.queue.flatMap((request) => {
      const reason = waitingReason(this.state, request, (r) => this.eligible(r), this.told.has(request.pipelineId));
      return reason !== undefined && this.told.get(request.pipelineId) !== reason ? [{ request, reason }] : [];
    });
    for (const { request, reason } of toTell) this.told.set(request.pipelineId, reason);
    return toTell;
  }

  /** Nothing held, queued, on hold or waiting for approval: the lane has nothing to remember. */
  isIdle(): boolean {
    const { state } = this;
    const followersToTell = state.owedFollower !== undefined || (state.followerNews?.length ?? 0) > 0;
    return !state.holder && state.queue.length === 0 && !state.hold && state.awaitingApproval.length === 0 && !followersToTell;
  }

  /** Pipelines wait behind a holder: the holder is checked every interval. */
  watchesHolder(): boolean {
    return this.state.holder !== undefined && this.state.queue.length > 0;
  }

  private eligible(request: LaneRequest): boolean {
    return passesHold(request, this.state.hold, this.safetyHoldsStopManualDeploys);
  }
}
