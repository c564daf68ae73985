import type { Hold, LaneDeployed, LaneHolder, LaneRequest } from '../common/types';
import type { LaneRelease } from '../workflows/lane-protocol';
import { emptyLane, LaneQueue } from '../workflows/lane-queue';
import { laneWorkflowId } from '../workflows/lane-protocol';
import { rankBySha } from './support/lane-queue';

/** The lane's queue and hold rules, without a server: DeployLane only carries messages to and from them. */
const ci = (pipelineId: string, runId = `${pipelineId}-run`): LaneRequest => ({ pipelineId, runId, sha: `${pipelineId}-sha`, trigger: 'ci' });
const manual = (pipelineId: string): LaneRequest => ({ pipelineId, runId: `${pipelineId}-run`, sha: `${pipelineId}-sha`, trigger: 'manual' });
const HOLD: Hold = { reason: 'rolled back from v2: smoke test failed', setBy: 'deploy pipeline', setAt: '2026-01-01T00:00:00.000Z' };
/** What a manual deploy leaves: automatic deploys wait, other manual deploys may go. */
const MANUAL_HOLD: Hold = { reason: 'manual deploy of hotfix (1a2b3c4)', setBy: 'alice', setAt: '2026-01-01T00:00:00.000Z', kind: 'manual-deploy' };

/** Tokens token-1, token-2, … in the order the lane grants: uuid4 in the workflow. */
function lane(): LaneQueue {
  let granted = 0;
  return new LaneQueue(emptyLane('whitehall', 'staging'), () => `token-${++granted}`);
}

const holding = (request: LaneRequest, token: string): LaneHolder => ({ ...request, token });

/** What the holding pipeline sends: its ID and the token the lane gave it. */
function handBack(q: LaneQueue, deployed?: LaneDeployed): boolean {
  const { pipelineId, token } = q.state.holder!;
  return q.release({ pipelineId, ...(token ? { token } : {}), ...(deployed ? { deployed } : {}) });
}

describe('the lane queue', () => {
  it('grants the lane to one pipeline at a time, in the order they asked', () => {
    const q = lane();
    q.acquire(ci('a'));
    q.acquire(ci('b'));
    expect(q.grantNext()).toEqual(holding(ci('a'), 'token-1'));
    expect(q.state.holder).toEqual(holding(ci('a'), 'token-1'));
    expect(q.grantNext()).toBeUndefined();
    expect(handBack(q)).toBe(true);
    expect(q.state.holder).toBeUndefined();
    expect(q.grantNext()).toEqual(holding(ci('b'), 'token-2'));
    expect(q.state.queue).toEqual([]);
  });

  it('queues a pipeline once however often it asks, and marks every change', () => {
    const q = lane();
    q.acquire(ci('a'));
    q.changed = false;
    q.acquire(ci('a'));
    expect(q.changed).toBe(true);
    expect(q.state.queue).toEqual([ci('a')]);
    q.grantNext();
    q.acquire(ci('a'));
    expect(q.state.queue).toEqual([]);
    expect(q.state.holder).toEqual(holding(ci('a'), 'token-1'));
  });

  it('frees the lane when a new run of its holder asks for it, and names the run that ended', () => {
    const q = lane();
    q.acquire(ci('a', 'first'));
    q.grantNext();
    expect(q.acquire(ci('a', 'second'))).toEqual(holding(ci('a', 'first'), 'token-1'));
    expect(q.state.holder).toBeUndefined();
    expect(q.state.queue).toEqual([ci('a', 'second')]);
  });

  it('replaces a queued request of an older run with the new run', () => {
    const q = lane();
    q.acquire(ci('a', 'first'));
    expect(q.acquire(ci('a', 'second'))).toBeUndefined();
    expect(q.state.queue).toEqual([ci('a', 'second')]);
  });

  describe('handing the lane back', () => {
    it('takes only a release with the token of the grant: the holder keeps the lane, nobody else is granted it, news without the token is dropped', () => {
      const q = lane();
      q.awaitingApproval(ci('waiting'));
      q.acquire(ci('a'));
      q.acquire(ci('b'));
      q.grantNext();
      q.changed = false;
      // Anyone can send a signal naming the holder; it does not know the token.
      const forged = { pipelineId: 'a', sha: 'forged-sha' };
      expect(q.release({ pipelineId: 'a' } as LaneRelease)).toBe(false);
      expect(q.release({ pipelineId: 'a', token: 'token-2', deployed: forged })).toBe(false);
      expect(q.release({ pipelineId: 'b', token: '', deployed: forged })).toBe(false);
      expect(q.state.holder).toEqual(holding(ci('a'), 'token-1'));
      expect(q.state.queue).toEqual([ci('b')]);
      expect(q.changed).toBe(false);
      expect(q.grantNext()).toBeUndefined();
      expect(q.takeNews()).toEqual([]);

      expect(q.release({ pipelineId: 'a', token: 'token-1', deployed: { pipelineId: 'a', sha: 'a-sha' } })).toBe(true);
      expect(q.takeNews()).toEqual([{ pipelineId: 'a', sha: 'a-sha' }]);
      expect(q.grantNext()).toEqual(holding(ci('b'), 'token-2'));
    });

    it('does not take back from a later holder the token of an earlier grant', () => {
      const q = lane();
      q.acquire(ci('a'));
      q.grantNext();
      handBack(q);
      q.acquire(ci('a'));
      q.grantNext();
      expect(q.release({ pipelineId: 'a', token: 'token-1' })).toBe(false);
      expect(q.state.holder).toEqual(holding(ci('a'), 'token-2'));
    });

    it('keeps the token out of what the laneState query shows', () => {
      const q = lane();
      q.acquire(ci('a'));
      q.acquire(ci('b'));
      q.grantNext();
      expect(q.view()).toEqual({ app: 'whitehall', environment: 'staging', holder: ci('a'), queue: [ci('b')], awaitingApproval: [] });
      expect(JSON.stringify(q.view())).not.toContain('token-1');
      expect(q.state.holder?.token).toBe('token-1');
    });

    it('keeps the holder and its token when the lane continues as new', () => {
      const q = lane();
      q.acquire(ci('a'));
      q.grantNext();
      const resumed = new LaneQueue(JSON.parse(JSON.stringify(q.state)) as typeof q.state, () => 'token-9');
      expect(resumed.release({ pipelineId: 'a', token: 'token-9' })).toBe(false);
      expect(resumed.release({ pipelineId: 'a', token: 'token-1' })).toBe(true);
    });
  });

  describe('a pipeline that continues as new while it waits', () => {
    it('keeps its place in the queue: its new run takes the old run’s place', () => {
      const q = lane();
      q.acquire(ci('holder'));
      q.grantNext();
      q.acquire(ci('a', 'a-first'));
      q.acquire(ci('b'));
      q.acquire(ci('c'));
      q.acquire(ci('a', 'a-second'));
      expect(q.state.queue).toEqual([ci('a', 'a-second'), ci('b'), ci('c')]);
      q.acquire(ci('b', 'b-second'));
      expect(q.state.queue).toEqual([ci('a', 'a-second'), ci('b', 'b-second'), ci('c')]);
      handBack(q);
      expect(q.grantNext()).toEqual(holding(ci('a', 'a-second'), 'token-2'));
    });

    it('is told why it waits afresh in its new run', () => {
      const q = lane();
      q.acquire(ci('holder'));
      q.grantNext();
      q.acquire(ci('a', 'a-first'));
      expect(q.reasonsToTell()).toEqual([{ request: ci('a', 'a-first'), reason: 'holder is deploying whitehall to staging' }]);
      q.acquire(ci('a', 'a-second'));
      expect(q.reasonsToTell()).toEqual([{ request: ci('a', 'a-second'), reason: 'holder is deploying whitehall to staging' }]);
    });

    it('is not replaced by a request that names no run (sent by hand)', () => {
      const q = lane();
      q.acquire(ci('a', 'a-first'));
      q.acquire(ci('b'));
      q.acquire({ pipelineId: 'a', sha: 'other-sha', trigger: 'manual' });
      expect(q.state.queue).toEqual([ci('a', 'a-first'), ci('b')]);
    });

    it('goes first when it held the lane: the run that held it has ended, and the lane is free', () => {
      const q = lane();
      q.acquire(ci('a', 'a-first'));
      q.grantNext();
      q.acquire(ci('b'));
      q.acquire(ci('c'));
      expect(q.acquire(ci('a', 'a-second'))).toEqual(holding(ci('a', 'a-first'), 'token-1'));
      expect(q.state.holder).toBeUndefined();
      expect(q.state.queue).toEqual([ci('a', 'a-second'), ci('b'), ci('c')]);
      expect(q.grantNext()).toEqual(holding(ci('a', 'a-second'), 'token-2'));
    });

    it('is offered a grant its old run missed in its current run, once, while the grant is still the lane’s', () => {
      const q = lane();
      q.acquire(ci('a', 'a-first'));
      q.acquire(ci('b'));
      const granted = q.grantNext()!;
      expect(q.grantToCurrentRun(granted)).toBe(true);
      expect(q.state.holder).toEqual({ pipelineId: 'a', sha: 'a-sha', trigger: 'ci', token: 'token-1' });
      // The current run could not be reached either (terminated): the lane passes it over.
      expect(q.grantToCurrentRun(granted)).toBe(false);
      q.holderEnded(granted);
      expect(q.grantNext()).toEqual(holding(ci('b'), 'token-2'));
    });

    it('is not offered a grant that changed hands meanwhile (its new run asked first)', () => {
      const q = lane();
      q.acquire(ci('a', 'a-first'));
      q.acquire(ci('b'));
      const granted = q.grantNext()!;
      q.acquire(ci('a', 'a-second'));
      expect(q.grantToCurrentRun(granted)).toBe(false);
      q.holderEnded(granted);
      expect(q.state.queue).toEqual([ci('a', 'a-second'), ci('b')]);
      expect(q.grantNext()).toEqual(holding(ci('a', 'a-second'), 'token-2'));
    });
  });

  it('forgets a grant that could not be delivered, unless the lane changed hands meanwhile', () => {
    const q = lane();
    q.acquire(ci('a'));
    const first = q.grantNext()!;
    q.holderEnded(holding(ci('a'), 'token-1'));
    expect(q.state.holder).toBe(first);
    q.holderEnded(first);
    expect(q.state.holder).toBeUndefined();
  });

  describe('holds', () => {
    it("a manual deploy's hold stops automatic deploys but lets manual ones past", () => {
      const q = lane();
      q.setHold(MANUAL_HOLD);
      q.acquire(ci('a'));
      q.acquire(manual('m'));
      expect(q.grantNext()).toEqual(holding(manual('m'), 'token-1'));
      handBack(q);
      expect(q.grantNext()).toBeUndefined();
      expect(q.state.queue).toEqual([ci('a')]);
    });

    it("a rollback's hold stops manual deploys too; lanes started before 1.1 let them by, and old manual holds are read from their reason", () => {
      const q = lane();
      q.setHold({ ...HOLD, kind: 'safety' });
      q.acquire(manual('m'));
      expect(q.grantNext()).toBeUndefined();
      q.setHold(HOLD);
      expect(q.grantNext()).toBeUndefined();
      expect(q.reasonsToTell()[0]!.reason).toMatch(/^hold on whitehall in staging: rolled back from v2/);
      const { kind: _kind, ...oldManualHold } = MANUAL_HOLD;
      q.setHold(oldManualHold);
      expect(q.grantNext()).toEqual(holding(manual('m'), 'token-1'));

      const old = new LaneQueue(emptyLane('whitehall', 'staging'), () => 'token-1', false);
      old.setHold(HOLD);
      old.acquire(manual('m'));
      expect(old.grantNext()).toEqual(holding(manual('m'), 'token-1'));
    });

    it('are cleared once, and only when there is one', () => {
      const q = lane();
      expect(q.clearHoldRefusal()).toBe('there is no hold on whitehall in staging');
      q.setHold(HOLD);
      expect(q.clearHoldRefusal()).toBeUndefined();
      expect(q.clearHold()).toEqual(HOLD);
      expect(q.state.hold).toBeUndefined();
      expect(q.clearHoldRefusal()).toBe('there is no hold on whitehall in staging');
    });
  });

  describe('what queued pipelines are told', () => {
    it('tells the pipeline next in line who holds the lane, and the others nothing until they were told something', () => {
      const q = lane();
      q.acquire(ci('a'));
      q.grantNext();
      q.acquire(ci('b'));
      q.acquire(ci('c'));
      expect(q.reasonsToTell()).toEqual([{ request: ci('b'), reason: 'a is deploying whitehall to staging' }]);
      expect(q.reasonsToTell()).toEqual([]);
    });

    it('tells pipelines stopped by a hold why, and tells them again when the hold is cleared', () => {
      const q = lane();
      q.acquire(ci('a'));
      q.grantNext();
      q.acquire(ci('b'));
      q.acquire(ci('c'));
      q.reasonsToTell();
      q.setHold(HOLD);
      const held = 'hold on whitehall in staging: rolled back from v2: smoke test failed (set by deploy pipeline at 2026-01-01T00:00:00.000Z); clear it with "deploy hold clear"';
      expect(q.reasonsToTell()).toEqual([
        { request: ci('b'), reason: held },
        { request: ci('c'), reason: held },
      ]);
      q.clearHold();
      expect(q.reasonsToTell()).toEqual([
        { request: ci('b'), reason: 'a is deploying whitehall to staging' },
        { request: ci('c'), reason: 'queued behind other pipelines deploying whitehall to staging' },
      ]);
    });

    it('names the holder to the first pipeline that may deploy, not to one stopped by a hold', () => {
      const q = lane();
      q.acquire(manual('m'));
      q.grantNext();
      q.setHold(MANUAL_HOLD);
      q.acquire(ci('a'));
      q.acquire(manual('n'));
      const told = q.reasonsToTell();
      expect(told.map(({ request }) => request.pipelineId)).toEqual(['a', 'n']);
      expect(told[0]!.reason).toMatch(/^hold on whitehall in staging/);
      expect(told[1]!.reason).toBe('m is deploying whitehall to staging');
    });

    it('tells a pipeline that gets the lane and queues again (after a freeze) why it waits afresh', () => {
      const q = lane();
      q.acquire(ci('a'));
      q.grantNext();
      q.acquire(ci('b'));
      q.reasonsToTell();
      handBack(q);
      q.grantNext();
      q.acquire(ci('a'));
      expect(q.reasonsToTell()).toEqual([{ request: ci('a'), reason: 'b is deploying whitehall to staging' }]);
      handBack(q);
      q.grantNext();
      q.acquire(ci('b'));
      expect(q.reasonsToTell()).toEqual([{ request: ci('b'), reason: 'a is deploying whitehall to staging' }]);
    });
  });

  describe('checks of the holder', () => {
    it('are wanted when the first pipeline queues behind the holder, then only when due', () => {
      const q = lane();
      q.acquire(ci('a'));
      expect(q.holderCheckWanted(false)).toBe(false);
      q.grantNext();
      q.acquire(ci('b'));
      q.acquire(ci('c'));
      expect(q.holderCheckWanted(false)).toBe(true);
      expect(q.holderCheckWanted(false)).toBe(false);
      expect(q.holderCheckWanted(true)).toBe(true);
      expect(q.watchesHolder()).toBe(true);
    });

    it('are not wanted without a holder, even when due', () => {
      expect(lane().holderCheckWanted(true)).toBe(false);
    });

    it('free the lane from a holder that has ended, unless it changed hands meanwhile', () => {
      const q = lane();
      q.acquire(ci('a'));
      const holder = q.grantNext()!;
      q.holderEnded(holding(ci('a'), 'token-1'));
      expect(q.state.holder).toBe(holder);
      q.holderEnded(holder);
      expect(q.state.holder).toBeUndefined();
    });
  });

  describe('news of a deploy', () => {
    it('goes to every pipeline waiting for approval here but the one that deployed, once', () => {
      const q = lane();
      q.awaitingApproval(ci('a'));
      q.awaitingApproval(ci('a'));
      q.awaitingApproval(ci('b'));
      expect(q.state.awaitingApproval).toEqual([ci('a'), ci('b')]);
      q.acquire(ci('c'));
      q.grantNext();
      handBack(q, { pipelineId: 'c', sha: 'c-sha' });
      q.release({ pipelineId: 'x', token: 'token-1' });
      const news = q.takeNews();
      expect(news).toEqual([{ pipelineId: 'c', sha: 'c-sha' }]);
      expect(q.recipientsOf(news[0]!)).toEqual([ci('a'), ci('b')]);
      expect(q.recipientsOf({ pipelineId: 'a', sha: 'a-sha' })).toEqual([ci('b')]);
      expect(q.takeNews()).toEqual([]);
    });

    it('stops going to pipelines that stopped waiting or could not be reached', () => {
      const q = lane();
      q.awaitingApproval(ci('a'));
      q.awaitingApproval(ci('b'));
      q.stoppedAwaiting('a');
      expect(q.state.awaitingApproval).toEqual([ci('b')]);
      q.forgetAwaiting(q.state.awaitingApproval[0]!);
      expect(q.state.awaitingApproval).toEqual([]);
    });
  });

  it('is idle only with nothing held, queued, on hold or waiting for approval', () => {
    const q = lane();
    expect(q.isIdle()).toBe(true);
    q.awaitingApproval(ci('a'));
    expect(q.isIdle()).toBe(false);
    q.stoppedAwaiting('a');
    q.setHold(HOLD);
    expect(q.isIdle()).toBe(false);
    q.clearHold();
    q.acquire(ci('b'));
    expect(q.isIdle()).toBe(false);
    q.grantNext();
    expect(q.isIdle()).toBe(false);
    expect(q.watchesHolder()).toBe(false);
    handBack(q);
    expect(q.isIdle()).toBe(true);
  });
});

describe('newest first', () => {
  const newest = (pipelineId: string): LaneRequest => ({ ...ci(pipelineId), queue: 'newest-first' });

  it('grants the newest queued commit of the app first, then the older ones, after n - 1 compares', () => {
    const q = lane();
    q.acquire(newest('a'));
    expect(q.grantNext()!.pipelineId).toBe('a');
    for (const id of ['b', 'd', 'c', 'e']) q.acquire(newest(id));
    expect(rankBySha(q)).toBe(3);
    expect(q.state.queue.map((r) => [r.pipelineId, r.behind])).toEqual([
      ['b', 'd'],
      ['d', 'e'],
      ['c', 'd'],
      ['e', undefined],
    ]);
    handBack(q, { pipelineId: 'a', sha: 'a-sha' });
    expect(q.grantNext()!.pipelineId).toBe('e');
    handBack(q, { pipelineId: 'e', sha: 'e-sha' });
    // The rest are older than what now runs there: they go in the order they queued, to end SUPERSEDED.
    expect(q.grantNext()!.pipelineId).toBe('b');
    expect(q.state.lastDeployed).toEqual({ pipelineId: 'e', sha: 'e-sha' });
  });

  it('keeps queue order for apps in-order, requests without an order, and lanes started before it', () => {
    const inOrder = lane();
    for (const id of ['a', 'b', 'c']) inOrder.acquire({ ...ci(id), queue: 'in-order' });
    inOrder.acquire(ci('d'));
    expect(inOrder.pairToRank()).toBeUndefined();
    expect(inOrder.grantNext()!.pipelineId).toBe('a');

    const before = new LaneQueue(emptyLane('whitehall', 'staging'), () => 'token', true, false);
    before.acquire(newest('a'));
    before.acquire(newest('b'));
    expect(before.pairToRank()).toBeUndefined();
    expect(before.grantNext()!.pipelineId).toBe('a');
    handBack(before, { pipelineId: 'a', sha: 'a-sha' });
    expect(before.state.lastDeployed).toBeUndefined();
  });

  it('lets no CI commit overtake a manual deploy queued before it, nor a hold stop the manual one', () => {
    const q = lane();
    for (const request of [newest('a'), manual('m'), newest('b')]) q.acquire(request);
    rankBySha(q);
    expect(q.state.queue.find((r) => r.pipelineId === 'a')!.behind).toBe('b');
    // Only older commits stand before the manual deploy: the first goes, then the manual one, then the newest.
    expect(q.grantNext()!.pipelineId).toBe('a');
    handBack(q);
    expect(q.grantNext()!.pipelineId).toBe('m');
    handBack(q);
    expect(q.grantNext()!.pipelineId).toBe('b');

    const held = lane();
    held.setHold({ ...HOLD, kind: 'manual-deploy' });
    for (const request of [newest('a'), newest('b'), manual('m')]) held.acquire(request);
    rankBySha(held);
    expect(held.grantNext()!.pipelineId).toBe('m');
  });

  it('ignores an order found for a request that left the queue meanwhile', () => {
    const q = lane();
    for (const id of ['a', 'b']) q.acquire(newest(id));
    const [earlier, later] = q.pairToRank()!;
    expect(q.grantNext()!.pipelineId).toBe('a');
    q.changed = false;
    q.ranked(earlier, later);
    expect(q.changed).toBe(false);
    expect(q.state.queue).toEqual([newest('b')]);
  });
});

describe('what a lane carries over when it continues as new', () => {
  it('keeps the news of a deploy that arrived while it was busy, for pipelines waiting for approval', () => {
    const lane = new LaneQueue(emptyLane('whitehall', 'staging'), () => 'token-1');
    lane.awaitingApproval(ci('waiting'));
    lane.acquire(ci('deployer'));
    lane.grantNext();
    lane.release({ pipelineId: 'deployer', token: 'token-1', deployed: { pipelineId: 'deployer', sha: 'newer-sha' } });
    // continueAsNew carries the state as a payload: what survives is what survives JSON.
    const resumed = new LaneQueue(JSON.parse(JSON.stringify(lane.state)) as typeof lane.state, () => 'token-2');
    expect(resumed.takeNews()).toEqual([{ pipelineId: 'deployer', sha: 'newer-sha' }]);
    expect(resumed.takeNews()).toEqual([]);
    expect(resumed.recipientsOf({ pipelineId: 'deployer', sha: 'newer-sha' }).map((r) => r.pipelineId)).toEqual(['waiting']);
  });
});

describe('lane IDs', () => {
  it('name one lane for every (task queue, app, environment), whatever hyphens and slashes the names hold', () => {
    expect(laneWorkflowId('deployments', 'search', 'api-staging')).not.toBe(laneWorkflowId('deployments', 'search-api', 'staging'));
    const names = ['a', 'a-b', 'b', 'a-b-c', 'b-c', 'c'];
    const queues = ['deployments', 'deployments-a', 'deployments/a', 'q/a/b'];
    const seen = new Map<string, string>();
    for (const queue of queues) {
      for (const app of names) {
        for (const environment of names) {
          const id = laneWorkflowId(queue, app, environment);
          const tuple = JSON.stringify([queue, app, environment]);
          expect({ id, tuple: seen.get(id) ?? tuple }).toEqual({ id, tuple });
          seen.set(id, tuple);
        }
      }
    }
    expect(seen.size).toBe(queues.length * names.length * names.length);
  });
});
