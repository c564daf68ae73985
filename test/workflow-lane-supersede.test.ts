import type { LaneDeployed, LaneRequest } from '../common/types';
import { emptyLane, LaneQueue } from '../workflows/lane-queue';
import { rankBySha } from './support/lane-queue';

/** A deploy takes the queued commits behind it out of the queue (workflows/lane-supersede.ts), without a server. */
const listening = (pipelineId: string): LaneRequest => ({ pipelineId, runId: `${pipelineId}-run`, sha: `${pipelineId}-sha`, trigger: 'ci', queue: 'newest-first', hearsNewerDeployed: true });
const deaf = (pipelineId: string): LaneRequest => {
  const { hearsNewerDeployed: _listens, ...request } = listening(pipelineId);
  return request;
};
const deployedBy = (pipelineId: string): LaneDeployed => ({ pipelineId, sha: `${pipelineId}-sha` });

function lane(supersedesQueued = true): LaneQueue {
  let granted = 0;
  return new LaneQueue(emptyLane('whitehall', 'integration'), () => `token-${++granted}`, true, true, supersedesQueued);
}

function handBack(q: LaneQueue, deployed?: LaneDeployed): void {
  const { pipelineId, token } = q.state.holder!;
  expect(q.release({ pipelineId, token, ...(deployed ? { deployed } : {}) })).toBe(true);
}


const ids = (requests: { pipelineId: string }[]) => requests.map((r) => r.pipelineId);

describe('a deploy through the lane supersedes the queued commits behind it', () => {
  it('takes every queued commit behind the newest out of the queue when the newest deploys, to be told at once', () => {
    const q = lane();
    q.acquire(listening('a'));
    expect(q.grantNext()!.pipelineId).toBe('a');
    for (const id of ['b', 'd', 'c', 'e']) q.acquire(listening(id));
    // Three compares among the queued, and one of the newest with the holder's commit, older than it.
    expect(rankBySha(q)).toBe(4);
    handBack(q, deployedBy('a'));
    // a's deploy is behind all of them: nobody leaves.
    expect(q.takeObsoleted()).toEqual([]);
    expect(q.grantNext()!.pipelineId).toBe('e');
    handBack(q, deployedBy('e'));
    expect(q.state.queue).toEqual([]);
    expect(q.takeObsoleted()).toEqual(['b', 'd', 'c'].map((pipelineId) => ({ pipelineId, news: deployedBy('e') })));
    expect(q.takeObsoleted()).toEqual([]);
    expect(q.grantNext()).toBeUndefined();
  });

  it('compares a commit queued alone with the holder’s, once, and supersedes it when the holder deploys', () => {
    const q = lane();
    q.acquire(listening('e'));
    q.grantNext();
    q.acquire(listening('b'));
    expect(ids(q.pairToRank()!)).toEqual(['b', 'e']);
    expect(rankBySha(q)).toBe(1);
    expect(q.state.queue[0]!.behind).toBe('e');
    // One queued later is compared with the holder too, not with the one already behind it.
    q.acquire(listening('c'));
    expect(rankBySha(q)).toBe(1);
    handBack(q, deployedBy('e'));
    expect(ids(q.takeObsoleted())).toEqual(['b', 'c']);

    // Newer than the holder: it stays, is not compared with that holder again, and goes next.
    const newer = lane();
    newer.acquire(listening('a'));
    newer.grantNext();
    newer.acquire(listening('b'));
    expect(rankBySha(newer)).toBe(1);
    expect(rankBySha(newer)).toBe(0);
    handBack(newer, deployedBy('a'));
    expect(newer.takeObsoleted()).toEqual([]);
    expect(newer.grantNext()!.pipelineId).toBe('b');
  });

  it('ranks again what was behind a holder that left without deploying', () => {
    const q = lane();
    q.acquire(listening('e'));
    q.grantNext();
    q.acquire(listening('b'));
    rankBySha(q);
    // e ended (superseded, failed) without deploying: b is no longer known to be behind anything queued.
    handBack(q);
    expect(q.takeObsoleted()).toEqual([]);
    expect(q.state.queue.map((r) => r.behind)).toEqual([undefined]);
    q.acquire(listening('c'));
    expect(ids(q.pairToRank()!)).toEqual(['b', 'c']);
  });

  it('leaves in the queue pipelines that do not listen while queued, manual deploys, and the chain past a request that left', () => {
    const q = lane();
    q.acquire(listening('a'));
    q.grantNext();
    for (const request of [deaf('b'), listening('c'), listening('d'), listening('e')]) q.acquire(request);
    rankBySha(q);
    // c lost to d, d to e: with d gone (cancelled, say), c's chain no longer reaches e.
    q.state.queue = q.state.queue.filter((r) => r.pipelineId !== 'd');
    handBack(q);
    expect(q.grantNext()!.pipelineId).toBe('e');
    handBack(q, deployedBy('e'));
    expect(q.takeObsoleted()).toEqual([]);
    expect(ids(q.state.queue)).toEqual(['b', 'c']);

    const manual = lane();
    manual.acquire(listening('a'));
    manual.grantNext();
    manual.acquire({ ...listening('m'), trigger: 'manual' });
    expect(manual.pairToRank()).toBeUndefined();
    handBack(manual, deployedBy('a'));
    expect(manual.takeObsoleted()).toEqual([]);
  });

  it('is off in lanes started before it: the older commits are granted in turn', () => {
    const q = lane(false);
    q.acquire(listening('a'));
    q.grantNext();
    for (const id of ['b', 'c']) q.acquire(listening(id));
    expect(rankBySha(q)).toBe(1);
    handBack(q, deployedBy('a'));
    expect(q.grantNext()!.pipelineId).toBe('c');
    handBack(q, deployedBy('c'));
    expect(q.takeObsoleted()).toEqual([]);
    expect(q.grantNext()!.pipelineId).toBe('b');
  });

  it('keeps the pipelines still to be told across continue-as-new', () => {
    const q = lane();
    q.acquire(listening('b'));
    q.acquire(listening('e'));
    rankBySha(q);
    q.grantNext();
    handBack(q, deployedBy('e'));
    const carried = new LaneQueue(JSON.parse(JSON.stringify(q.state)), () => 'token', true, true, true);
    expect(carried.takeObsoleted()).toEqual([{ pipelineId: 'b', news: deployedBy('e') }]);
  });
});
