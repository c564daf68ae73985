/**
 * The smoke-test stage (activities/smoke-tests.ts) alone, in MockActivityEnvironment: the production HTTP smoke
 * tester against the app-endpoints simulator, which serves what Argo CD synced.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type PipelineActivities } from '../activities';
import { startStack, type Stack } from '../sandbox/stack';
import { errorFrom } from './support/env';

/** Runs one activity in a MockActivityEnvironment, keeping its return type. */
function inActivity<A extends unknown[], R>(env: MockActivityEnvironment, fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return env.run(fn, ...args) as Promise<R>;
}


const APP = 'search-api';

describe('the smoke-test stage', () => {
  let dataDir: string;
  let stack: Stack;
  let activities: PipelineActivities;
  let tag: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'activities-smoke-'));
    stack = await startStack({ dataDir, apps: { [APP]: { environments: { integration: { smokeAttempts: 3 } } } }, smokeRetryInterval: '50ms', polling: { initialIntervalMs: 20, maxIntervalMs: 100 } });
    activities = createActivities(stack.dependencies);
    tag = await stack.merge(APP);
    const run = new MockActivityEnvironment();
    const outcome = await inActivity(run, activities.bumpImageTag, { app: APP, environment: 'integration', tag, respectFreeze: true });
    if (outcome.frozen) throw new Error('integration is frozen');
    await run.run(activities.waitForArgoSync, { app: APP, environment: 'integration', tag, chartsCommit: outcome.chartsCommit });
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('passes every check of the environment against the deployed app', async () => {
    const outcomes = await new MockActivityEnvironment().run(activities.runSmokeTests, { app: APP, environment: 'integration', tag });
    expect(outcomes).toEqual([expect.objectContaining({ ok: true, check: expect.objectContaining({ name: 'healthcheck', url: stack.endpoints.healthcheckUrl(APP, 'integration') }) })]);
  });

  it('retries a failing check up to its attempts, heartbeating, then fails for good with what was wrong', async () => {
    stack.endpoints.failChecks(APP, 'integration', { status: 503 });
    try {
      const env = new MockActivityEnvironment();
      const heartbeats: unknown[] = [];
      env.on('heartbeat', (details: unknown) => heartbeats.push(details));
      stack.endpoints.clearRequests();
      const err = await errorFrom(() => env.run(activities.runSmokeTests, { app: APP, environment: 'integration', tag }));
      expect(err).toMatchObject({ type: 'SmokeTestFailed', nonRetryable: true });
      expect(err.message).toMatch(new RegExp(`^smoke test failed for ${APP} ${tag} in integration: .*503.* \\(after 3 attempts\\)$`));
      expect(stack.endpoints.requests.filter((r) => r.path === `/${APP}/integration/healthcheck`)).toHaveLength(3);
      const url = stack.endpoints.healthcheckUrl(APP, 'integration');
      expect(heartbeats).toEqual([{ check: url, attempt: 2 }, { check: url, attempt: 3 }]);
    } finally {
      stack.endpoints.restore(APP, 'integration');
    }
  });

  it('a check that recovers within its attempts passes', async () => {
    stack.endpoints.failChecks(APP, 'integration', { status: 500 });
    setTimeout(() => stack.endpoints.restore(APP, 'integration'), 20);
    const outcomes = await inActivity(new MockActivityEnvironment(), activities.runSmokeTests, { app: APP, environment: 'integration', tag });
    expect(outcomes.map((o) => o.ok)).toEqual([true]);
  });
});
