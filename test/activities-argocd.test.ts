/**
 * The Argo CD stage (activities/argocd.ts) alone, in MockActivityEnvironment: the Argo CD simulator "syncing" from a
 * real bare charts repo, through the production adapters.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type PipelineActivities } from '../activities';
import { startStack, type Stack } from '../sandbox/stack';
import { errorFrom } from './support/env';

/** Runs one activity in a MockActivityEnvironment, keeping its return type. */
function inActivity<A extends unknown[], R>(env: MockActivityEnvironment, fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return env.run(fn, ...args) as Promise<R>;
}


const APP = 'signon';
const ARGO_APP = `${APP}-integration`;

describe('the Argo CD stage', () => {
  let dataDir: string;
  let stack: Stack;
  let activities: PipelineActivities;

  /** A new commit of the app, bumped in integration: what waitForArgoSync then waits for. */
  async function bumped(): Promise<{ app: string; environment: string; tag: string; chartsCommit: string }> {
    const sha = await stack.merge(APP);
    const outcome = await inActivity(new MockActivityEnvironment(), activities.bumpImageTag, { app: APP, environment: 'integration', tag: sha, respectFreeze: true });
    if (outcome.frozen) throw new Error('integration is frozen');
    return { app: APP, environment: 'integration', tag: sha, chartsCommit: outcome.chartsCommit };
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'activities-argocd-'));
    stack = await startStack({ dataDir, apps: { [APP]: { environments: { integration: {} } } }, polling: { initialIntervalMs: 20, maxIntervalMs: 100 } });
    activities = createActivities(stack.dependencies);
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('asks for a refresh, heartbeats while it waits, and returns once our commit runs Synced and Healthy', async () => {
    const target = await bumped();
    stack.argo.clearRequests();
    const env = new MockActivityEnvironment();
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => heartbeats.push(details));
    await expect(env.run(activities.waitForArgoSync, target)).resolves.toEqual({ revision: target.chartsCommit, health: 'Healthy' });
    expect(stack.argo.currentTag(APP, 'integration')).toBe(target.tag);
    expect(stack.argo.requests[0]!.url).toContain('refresh=normal');
    expect(heartbeats.length).toBeGreaterThan(0);
  });

  it('never takes a stale status from before our commit for an answer', async () => {
    const target = await bumped();
    stack.argo.reportStaleFor(ARGO_APP, 1_500);
    const startedAt = Date.now();
    await expect(new MockActivityEnvironment().run(activities.waitForArgoSync, target)).resolves.toMatchObject({ revision: target.chartsCommit, health: 'Healthy' });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_400);
  });

  it('a Degraded rollout of our commit fails for good, naming the application and what Argo CD said', async () => {
    const target = await bumped();
    stack.argo.degrade(ARGO_APP, 'Deployment "signon" exceeded its progress deadline');
    const err = await errorFrom(() => new MockActivityEnvironment().run(activities.waitForArgoSync, target));
    expect(err).toMatchObject({ type: 'ArgoCdDegraded', nonRetryable: true });
    expect(err.message).toBe(`Argo CD application ${ARGO_APP} at charts commit ${target.chartsCommit.slice(0, 7)} is Degraded: Deployment "signon" exceeded its progress deadline`);
  });

  it('a failed sync of our commit fails for good', async () => {
    const target = await bumped();
    stack.argo.failNextSync(ARGO_APP, 'one or more objects failed to apply');
    const err = await errorFrom(() => new MockActivityEnvironment().run(activities.waitForArgoSync, target));
    expect(err).toMatchObject({ type: 'ArgoCdSyncFailed', nonRetryable: true });
    expect(err.message).toMatch(new RegExp(`^Argo CD application ${ARGO_APP} at charts commit [0-9a-f]{7}: sync (Failed|Error): one or more objects failed to apply$`));
  });

  it('a cancelled pipeline ends the wait at once', async () => {
    const target = await bumped();
    stack.argo.reportStaleFor(ARGO_APP, 30_000);
    const env = new MockActivityEnvironment();
    const waiting = env.run(activities.waitForArgoSync, target);
    setTimeout(() => env.cancel(), 300);
    const startedAt = Date.now();
    await expect(waiting).rejects.toBeInstanceOf(CancelledFailure);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });
});
