import type { LaneRequest } from '../common/types';
import { emptyLane, LaneQueue } from '../workflows/lane-queue';
import { rankBySha } from './support/lane-queue';

/** A pipeline that deployed here may hear whether a newer commit follows it (workflows/lane-follow.ts), without a server. */
const ci = (pipelineId: string): LaneRequest => ({ pipelineId, runId: `${pipelineId}-run`, sha: `${pipelineId}-sha`, trigger: 'ci', queue: 'newest-first', hearsNewerDeployed: true });
const watch = (pipelineId: string) => ({ pipelineId, runId: `${pipelineId}-run`, sha: `${pipelineId}-sha` });
const newer = (pipelineId: string) => ({ pipelineId, sha: `${pipelineId}-sha` });

function lane(tellsFollower = true): LaneQueue {
  let granted = 0;
  return new LaneQueue(emptyLane('whitehall', 'integration'), () => `token-${++granted}`, true, true, true, tellsFollower);
}

/** What DeployLane does when the lane is free: grant the next, and answer the pipeline owed word, comparing as GitHub would. */
function grantNext(q: LaneQueue): string | undefined {
  const next = q.grantNext();
  const follower = q.followerToCompare(next);
  if (follower) q.followerCompared(...follower, follower[1].sha > follower[0].sha);
  return next?.pipelineId;
}

function handBack(q: LaneQueue, options: { deployed?: boolean; awaitsFollower?: boolean } = {}): void {
  const { pipelineId, token } = q.state.holder!;
  const deployed = options.deployed === false ? {} : { deployed: newer(pipelineId) };
  expect(q.release({ pipelineId, token, ...deployed, ...(options.awaitsFollower ? { awaitsFollower: true } : {}) })).toBe(true);
}

/** The set-up most cases share: `a` holds the lane, `queued` waits behind it, and `a` deploys and hands back asking who follows. */
function aHandsBackAsking(queued: LaneRequest = ci('b')): LaneQueue {
  const q = lane();
  q.acquire(ci('a'));
  grantNext(q);
  q.acquire(queued);
  handBack(q, { awaitsFollower: true });
  return q;
}

describe('a lane tells the pipeline that deployed last whether a newer commit follows it', () => {
  it('names the newer commit it grants next, then says when that commit has deployed', () => {
    const q = lane();
    q.acquire(ci('a'));
    expect(grantNext(q)).toBe('a');
    for (const id of ['b', 'd', 'c']) q.acquire(ci(id));
    rankBySha(q);
    handBack(q, { awaitsFollower: true });
    expect(q.state.owedFollower).toEqual(watch('a'));
    expect(grantNext(q)).toBe('d');
    expect(q.takeFollowerNews()).toEqual([{ to: watch('a'), news: { environment: 'integration', newer: newer('d') } }]);
    expect(q.isIdle()).toBe(false);
    // d deploys: a is superseded on its way, and d, asking in turn, is owed word of who follows it.
    handBack(q, { awaitsFollower: true });
    expect(q.takeFollowerNews()).toEqual([{ to: watch('a'), news: { environment: 'integration', newer: newer('d'), deployed: true } }]);
    expect(q.state.followed).toBeUndefined();
    // b and c were behind d: they left with its deploy, and nothing follows d.
    expect(grantNext(q)).toBeUndefined();
    expect(q.takeFollowerNews()).toEqual([{ to: watch('d'), news: { environment: 'integration' } }]);
    expect(q.changed).toBe(true);
    expect(q.isIdle()).toBe(true);
  });

  it('lets the older pipeline go on when the newer commit leaves without deploying, or ends holding the lane', () => {
    const failed = aHandsBackAsking();
    expect(grantNext(failed)).toBe('b');
    failed.takeFollowerNews();
    handBack(failed, { deployed: false });
    expect(failed.takeFollowerNews()).toEqual([{ to: watch('a'), news: { environment: 'integration' } }]);

    const ended = aHandsBackAsking();
    grantNext(ended);
    ended.takeFollowerNews();
    ended.holderEnded(ended.state.holder!);
    expect(ended.takeFollowerNews()).toEqual([{ to: watch('a'), news: { environment: 'integration' } }]);
  });

  it('says nothing newer follows when the next grant is older, a manual deploy, on hold, or nobody', () => {
    const older = lane();
    older.acquire(ci('c'));
    grantNext(older);
    older.acquire(ci('b'));
    // b's commit is behind c's: it leaves with c's deploy, and c hears that nothing newer follows.
    rankBySha(older);
    handBack(older, { awaitsFollower: true });
    expect(grantNext(older)).toBeUndefined();
    expect(older.takeFollowerNews()).toEqual([{ to: watch('c'), news: { environment: 'integration' } }]);

    const manual = aHandsBackAsking({ ...ci('z'), trigger: 'manual' });
    expect(grantNext(manual)).toBe('z');
    expect(manual.takeFollowerNews()).toEqual([{ to: watch('a'), news: { environment: 'integration' } }]);
    expect(manual.state.followed).toBeUndefined();

    const held = aHandsBackAsking();
    held.setHold({ pipelineId: 'a', reason: 'rolled back', setBy: 'deploy pipeline', setAt: '2026-12-02T00:00:00Z', kind: 'safety' });
    expect(grantNext(held)).toBeUndefined();
    expect(held.takeFollowerNews()).toEqual([{ to: watch('a'), news: { environment: 'integration' } }]);
  });

  it('owes nothing to a pipeline that did not ask, did not deploy, or hands back a lane started before the rule', () => {
    for (const [q, options] of [
      [lane(), {}],
      [lane(), { awaitsFollower: true, deployed: false }],
      [lane(false), { awaitsFollower: true }],
    ] as const) {
      q.acquire(ci('a'));
      grantNext(q);
      q.acquire(ci('b'));
      handBack(q, options);
      expect(grantNext(q)).toBe('b');
      expect(q.takeFollowerNews()).toEqual([]);
      expect(q.state.owedFollower).toBeUndefined();
      expect(q.state.followed).toBeUndefined();
    }
  });

  it('keeps who waits on the newer commit, and what they are to hear, across continue-as-new', () => {
    const q = aHandsBackAsking();
    grantNext(q);
    const carried = new LaneQueue(JSON.parse(JSON.stringify(q.state)), () => 'token', true, true, true, true);
    expect(carried.takeFollowerNews()).toEqual([{ to: watch('a'), news: { environment: 'integration', newer: newer('b') } }]);
    handBack(carried);
    expect(carried.takeFollowerNews()).toEqual([{ to: watch('a'), news: { environment: 'integration', newer: newer('b'), deployed: true } }]);
  });
});
