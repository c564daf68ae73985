import type { Hold, LaneRequest } from '../common/types';
import { emptyLane, LaneQueue } from '../workflows/lane-queue';
import { laneWorkflowId } from '../workflows/lane-protocol';

/** The lane's queue and hold rules, without a server: DeployLane only carries messages to and from them. */
const ci = (pipelineId: string, runId = `${pipelineId}-run`): LaneRequest => ({ pipelineId, runId, sha: `${pipelineId}-sha`, trigger: 'ci' });
const manual = (pipelineId: string): LaneRequest => ({ pipelineId, runId: `${pipelineId}-run`, sha: `${pipelineId}-sha`, trigger: 'manual' });
const HOLD: Hold = { reason: 'rolled back from v2: smoke test failed', setBy: 'deploy pipeline', setAt: '2026-01-01T00:00:00.000Z' };

function lane(): LaneQueue {
  return new LaneQueue(emptyLane('whitehall', 'staging'));
}

describe('the lane queue', () => {
  it('grants the lane to one pipeline at a time, in the order they asked', () => {
    const q = lane();
    q.acquire(ci('a'));
    q.acquire(ci('b'));
    expect(q.grantNext()).toEqual(ci('a'));
    expect(q.state.holder).toEqual(ci('a'));
    expect(q.grantNext()).toBeUndefined();
    q.release({ pipelineId: 'a' });
    expect(q.state.holder).toBeUndefined();
    expect(q.grantNext()).toEqual(ci('b'));
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
    expect(q.state.holder).toEqual(ci('a'));
  });

  it('frees the lane when a new run of its holder asks for it, and names the run that ended', () => {
    const q = lane();
    q.acquire(ci('a', 'first'));
    q.grantNext();
    expect(q.acquire(ci('a', 'second'))).toEqual(ci('a', 'first'));
    expect(q.state.holder).toBeUndefined();
    expect(q.state.queue).toEqual([ci('a', 'second')]);
  });

  it('replaces a queued request of an older run with the new run', () => {
    const q = lane();
    q.acquire(ci('a', 'first'));
    expect(q.acquire(ci('a', 'second'))).toBeUndefined();
    expect(q.state.queue).toEqual([ci('a', 'second')]);
  });

  it('takes a release from a pipeline still queued out of the queue', () => {
    const q = lane();
    q.acquire(ci('a'));
    q.acquire(ci('b'));
    q.grantNext();
    q.release({ pipelineId: 'b' });
    expect(q.state.queue).toEqual([]);
    expect(q.state.holder).toEqual(ci('a'));
  });

  it('forgets a grant that could not be delivered', () => {
    const q = lane();
    q.acquire(ci('a'));
    q.grantNext();
    q.grantUndelivered();
    expect(q.state.holder).toBeUndefined();
  });

  describe('holds', () => {
    it('stop automatic deploys but let manual ones past', () => {
      const q = lane();
      q.setHold(HOLD);
      q.acquire(ci('a'));
      q.acquire(manual('m'));
      expect(q.grantNext()).toEqual(manual('m'));
      q.release({ pipelineId: 'm' });
      expect(q.grantNext()).toBeUndefined();
      expect(q.state.queue).toEqual([ci('a')]);
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
      q.setHold(HOLD);
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
      q.release({ pipelineId: 'a' });
      q.grantNext();
      q.acquire(ci('a'));
      expect(q.reasonsToTell()).toEqual([{ request: ci('a'), reason: 'b is deploying whitehall to staging' }]);
      q.release({ pipelineId: 'b' });
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
      q.holderEnded(ci('a'));
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
      q.release({ pipelineId: 'c', deployed: { pipelineId: 'c', sha: 'c-sha' } });
      q.release({ pipelineId: 'x' });
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
    q.release({ pipelineId: 'b' });
    expect(q.isIdle()).toBe(true);
  });
});

describe('what a lane carries over when it continues as new', () => {
  it('keeps the news of a deploy that arrived while it was busy, for pipelines waiting for approval', () => {
    const lane = new LaneQueue(emptyLane('whitehall', 'staging'));
    lane.awaitingApproval(ci('waiting'));
    lane.release({ pipelineId: 'deployer', deployed: { pipelineId: 'deployer', sha: 'newer-sha' } });
    // continueAsNew carries the state as a payload: what survives is what survives JSON.
    const resumed = new LaneQueue(JSON.parse(JSON.stringify(lane.state)) as typeof lane.state);
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
