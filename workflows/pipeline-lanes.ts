/** The pipeline's side of its lanes: asking for one, waiting for it, handing it back, and what else it tells them. */
import { CancellationScope, condition, getExternalWorkflowHandle, isCancellation, log, patched, workflowInfo } from '@temporalio/workflow';
import { shortSha } from '../common/names';
import type { EnvironmentStatus, Hold, LaneDeployed, PipelineInput } from '../common/types';
import { compareWithDeployed } from './environment-deploy';
import { PipelineEnded } from './failures';
import { LANE_TELLS_FOLLOWER } from './lane-follow';
import { type LaneGrant, laneWorkflowId, type NewerDeployed, type NewerFollows, releaseLaneSignal, stoppedAwaitingSignal } from './lane-protocol';
import { LANE_SUPERSEDES_QUEUED } from './lane-supersede';
import { continueAsNewIfHistoryLong } from './long-waits';
import type { PipelineState } from './pipeline-state';
import type { Steps } from './steps';

type Lane = ReturnType<typeof getExternalWorkflowHandle>;

/** How long to wait for a lane to say whether a newer commit follows us there: it answers at once, unless it has ended. */
const FOLLOWER_ANSWER_MS = 5 * 60_000;
/**
 * How long to wait for the newer commit following us to deploy there before going on anyway: its sync and smoke
 * tests, with room. At worst the next environment then deploys both commits, newest last.
 */
const FOLLOWER_DEPLOY_MS = 60 * 60_000;

/** What a lane we handed back said of the commit following us there (lane-follow.ts). */
interface Follow {
  environment: string;
  newer?: LaneDeployed;
  heard: boolean;
  deployed: boolean;
}

export class PipelineLanes {
  /** Environments whose lane we hold, with the token of each grant: it goes back with the release. Lanes started before 1.1 give none. */
  private readonly held = new Map<string, string | undefined>();
  /** What each lane last said was deployed through it, with its grant: who got there first, when we are superseded. */
  private readonly deployedBefore = new Map<string, LaneDeployed>();
  /** The environment whose lane take() waits for: a grant of any other is one we did not ask for. */
  private waitingFor?: string;
  /** A newer commit deployed where we queue (1.2's lanes then take us out of the queue): it may supersede us. */
  private newerThere?: NewerDeployed;
  /** Whether take() listens for it: pipelines started before 1.2 do not. */
  private hearsNewerDeployed = false;
  /**
   * After an approval the lane is told we stopped waiting in the same workflow task as we ask it for the lane, not
   * first: one server round trip less between an approval and the deploy. The lane handles the two in either order.
   */
  private toldStoppedAwaiting?: Promise<void>;
  /** 1.4: lanes that tell who follows (their grant said so), and those of them where others queued behind us. */
  private readonly tellsFollower = new Set<string>();
  private readonly queuedBehind = new Set<string>();
  /** Set when we hand a lane back asking who follows us there; the next environment waits for the answer. */
  private follow?: Follow;

  constructor(
    private readonly pipeline: PipelineState,
    private readonly steps: Steps,
    private readonly input: PipelineInput,
  ) {}

  /**
   * The lane's `laneGranted` signal. A grant we are not waiting for (someone asked in our name, or the lane offered
   * a previous run's place to this one before it asks) goes back at once: holding it would stop the lane.
   */
  granted({ environment, token, lastDeployed, tellsFollower, othersQueued }: LaneGrant): void {
    if (this.waitingFor === environment && !this.held.has(environment)) {
      this.held.set(environment, token);
      if (lastDeployed) this.deployedBefore.set(environment, lastDeployed);
      if (tellsFollower) this.tellsFollower.add(environment);
      if (othersQueued) this.queuedBehind.add(environment);
      return;
    }
    log.warn('the lane granted what we did not ask for; handing it back', { environment, waitingFor: this.waitingFor });
    // Not awaited: the handler must not hold up the workflow; tell() cannot fail.
    void this.handBack(environment, token);
  }

  /** The lane's `laneHolderCheck` signal: it sends one while we hold it when a pipeline queues behind us, and while others wait. */
  holderChecked(environment: string): void {
    if (this.held.has(environment)) this.queuedBehind.add(environment);
  }

  /** The lane's `newerFollows` signal, after we handed it back asking. */
  newerFollows({ environment, newer, deployed }: NewerFollows): void {
    const follow = this.follow;
    if (!follow || follow.environment !== environment || follow.heard) return;
    if (newer) follow.newer = newer;
    if (!newer || deployed) {
      follow.heard = true;
      follow.deployed = deployed === true;
    }
  }

  /**
   * Before the next environment, when we asked the last one's lane who follows us: a newer commit deploying there
   * is on its way here, and once it has deployed there (the charts say it runs there) we end SUPERSEDED naming it.
   * When it does not deploy there, or the lane does not answer, we go on.
   */
  async yieldToNewer(env: EnvironmentStatus): Promise<void> {
    const follow = this.follow;
    if (!follow) return;
    try {
      env.waitingFor = `waiting to hear whether a newer commit follows us in ${follow.environment}`;
      this.pipeline.setStatus('WAITING_FOR_LANE', env, 'WAITING_FOR_LANE');
      const answered = await condition(() => follow.heard || follow.newer !== undefined, FOLLOWER_ANSWER_MS);
      const newer = follow.newer;
      if (answered && newer && !follow.heard) {
        env.waitingFor = `waiting for ${shortSha(newer.sha)} (${newer.pipelineId}), newer, to deploy to ${follow.environment}`;
        this.pipeline.publish();
        await condition(() => follow.heard, FOLLOWER_DEPLOY_MS);
      }
      if (follow.deployed && newer && (await this.runsThere(follow.environment, newer))) {
        env.state = 'SUPERSEDED';
        env.waitingFor = `superseded by ${shortSha(newer.sha)} (${newer.pipelineId}), deployed to ${follow.environment} after us and on its way here`;
        throw new PipelineEnded('SUPERSEDED', env.waitingFor);
      }
      if (!follow.heard) log.warn('heard nothing of the commit following us; going on', { follow });
    } finally {
      this.follow = undefined;
    }
  }

  /**
   * Whether `environment` runs `newer`'s commit, newer than ours: anyone can send a signal in the lane's name, and
   * ours has deployed only if the charts say so. Unknown (GitHub or the charts unreachable), we go on.
   */
  private async runsThere(environment: string, newer: LaneDeployed): Promise<boolean> {
    try {
      const deployed = await compareWithDeployed({ pipeline: this.pipeline, steps: this.steps }, environment, `Does ${environment} run ${shortSha(newer.sha)}?`);
      if (deployed.relation === 'behind' && deployed.sha === newer.sha) return true;
      log.warn('told a newer commit deployed where we did, but it does not run there; going on', { environment, newer, runs: deployed.sha ?? deployed.tag });
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.warn('could not look at what runs where we deployed; going on', { environment, newer, error: (err as Error).message });
    }
    return false;
  }

  /** The lane's `newerDeployed` signal, while we queue there. */
  newerDeployed(news: NewerDeployed): void {
    if (this.hearsNewerDeployed && this.waitingFor === news.environment) this.newerThere = news;
  }

  /**
   * Waits for the lane of the environment at `environmentIndex`; a long wait continues as new on the way. A newer
   * commit deployed there meanwhile ends the pipeline SUPERSEDED, without the lane.
   */
  async take(env: EnvironmentStatus, environmentIndex: number): Promise<void> {
    const plan = this.pipeline.plan!;
    env.waitingFor = 'waiting for the lane';
    this.pipeline.setStatus('WAITING_FOR_LANE', env, 'WAITING_FOR_LANE');
    this.hearsNewerDeployed = patched(LANE_SUPERSEDES_QUEUED);
    const request = {
      pipelineId: this.pipeline.workflowId,
      runId: workflowInfo().runId,
      sha: plan.sha,
      trigger: this.input.trigger,
      ...(plan.queue ? { queue: plan.queue } : {}),
      ...(this.hearsNewerDeployed ? { hearsNewerDeployed: true } : {}),
    };
    const ask = (summary: string) =>
      this.steps.recorded.signalLane.executeWithOptions({ summary }, [{ app: plan.app, environment: env.environment, signal: 'acquire', request }]);
    this.waitingFor = env.environment;
    try {
      await ask(`Ask for the ${env.environment} lane`);
      const told = this.toldStoppedAwaiting;
      this.toldStoppedAwaiting = undefined;
      await told;
      // A lane terminated by hand has lost its queue: asking again starts it anew; a lane that runs knows us already.
      for (;;) {
        await condition(() => this.held.has(env.environment) || this.newerThere !== undefined, plan.laneRecheckIntervalMs);
        // The grant may come in the same workflow task as the timeout or the news: we hold the lane, and only this
        // run can hand it back. Holding it, the pipeline compares with what the environment runs before it deploys.
        if (this.held.has(env.environment)) break;
        const news = this.newerThere;
        this.newerThere = undefined;
        if (news) {
          const superseded = await this.supersededBy(news);
          if (this.held.has(env.environment)) break;
          if (superseded) {
            env.state = 'SUPERSEDED';
            env.waitingFor = `superseded by ${shortSha(news.sha)} (${news.pipelineId}), already deployed to ${env.environment}`;
            throw new PipelineEnded('SUPERSEDED', env.waitingFor);
          }
        } else {
          // The new run asks from where this one stood; the lane gives it this run's place in the queue.
          await continueAsNewIfHistoryLong(this.input, this.pipeline, environmentIndex);
        }
        // The lane took us out of the queue with its news, or has lost its queue: it knows us again either way.
        await ask(`Ask again for the ${env.environment} lane`);
      }
    } finally {
      this.waitingFor = undefined;
    }
  }

  /** Whether the commit deployed is newer than ours; GitHub unreachable, we ask for the lane and compare holding it. */
  private async supersededBy(news: NewerDeployed): Promise<boolean> {
    const { app, sha } = this.pipeline.plan!;
    try {
      const relation = await this.steps.calls.compareCommits.executeWithOptions({ summary: `Is ${shortSha(news.sha)} newer than ours?` }, [{ app, base: sha, head: news.sha }]);
      return relation === 'ahead';
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.warn('could not compare with the commit deployed where we queue; asking for the lane again', { news, error: (err as Error).message });
      return false;
    }
  }

  /** The last deploy the lane of `environment` named when it granted us the lane, if it named one. */
  lastDeployedTo(environment: string): LaneDeployed | undefined {
    return this.deployedBefore.get(environment);
  }

  /** Hands the lane back, with the news of our deploy when there is one. */
  async release(environment: string, deployed?: LaneDeployed): Promise<void> {
    if (!this.held.has(environment)) return;
    const token = this.held.get(environment);
    this.held.delete(environment);
    const asks = deployed !== undefined && this.asksWhoFollows(environment);
    this.tellsFollower.delete(environment);
    this.queuedBehind.delete(environment);
    if (asks) this.follow = { environment, heard: false, deployed: false };
    await this.handBack(environment, token, deployed, asks);
  }

  /**
   * Whether to ask the lane we hand back who follows us there: only when others queued behind us there, and we go
   * on by ourselves to the next environment (a pipeline that waits for approval there hears of a newer deploy anyway).
   */
  private asksWhoFollows(environment: string): boolean {
    if (!this.tellsFollower.has(environment) || !this.queuedBehind.has(environment) || this.input.trigger !== 'ci') return false;
    const plan = this.pipeline.plan!;
    if (plan.queue !== 'newest-first') return false;
    const index = plan.environments.findIndex((e) => e.name === environment);
    const next = plan.environments[index + 1];
    if (index < 0 || !next) return false;
    const goesOn = plan.promotion === 'chartsFlags' ? this.pipeline.status.environments[index]!.promotes === true : next.continuousDeployment;
    return goesOn && patched(LANE_TELLS_FOLLOWER);
  }

  /** Stops automatic deploys to the environment until someone clears the hold; it reaches a lane that has ended too. */
  async hold(environment: string, hold: Omit<Hold, 'pipelineId'>): Promise<void> {
    const request = { ...hold, pipelineId: this.pipeline.workflowId };
    await CancellationScope.nonCancellable(() =>
      this.steps.recorded.signalLane.executeWithOptions({ summary: `Hold automatic deploys to ${environment}` }, [
        { app: this.pipeline.plan!.app, environment, signal: 'setHold', request },
      ]),
    );
  }

  /**
   * We no longer wait for approval there. Returns the signal to wait for, or nothing once approved: then the lane
   * hears it while we ask for the lane, and take() waits for it.
   */
  stoppedAwaiting(environment: string, approved: boolean): Promise<void> | undefined {
    const told = this.tell(environment, (lane) => lane.signal(stoppedAwaitingSignal, { pipelineId: this.pipeline.workflowId }));
    if (!approved) return told;
    // Handled now so that a failure is not an unhandled rejection.
    told.catch(() => undefined);
    this.toldStoppedAwaiting = told;
    return undefined;
  }

  /** Even a cancelled pipeline must hand the lane back. */
  private handBack(environment: string, token: string | undefined, deployed?: LaneDeployed, awaitsFollower = false): Promise<void> {
    const release = { pipelineId: this.pipeline.workflowId, token, ...(deployed ? { deployed } : {}), ...(awaitsFollower ? { awaitsFollower } : {}) };
    return this.tell(environment, (lane) => lane.signal(releaseLaneSignal, release));
  }

  /**
   * A lane that has ended (terminated by hand) has nothing to hear: the pipeline goes on without it. The app is the
   * input's: a grant we did not ask for may come before the release is resolved (or resumed), and goes back then too.
   */
  private async tell(environment: string, send: (lane: Lane) => Promise<void>): Promise<void> {
    const id = laneWorkflowId(workflowInfo().taskQueue, this.input.app, environment);
    await CancellationScope.nonCancellable(async () => {
      try {
        await send(getExternalWorkflowHandle(id));
      } catch (err) {
        if (isCancellation(err)) throw err;
        log.warn('could not reach the lane; it has ended', { lane: id, error: (err as Error).message });
      }
    });
  }
}
