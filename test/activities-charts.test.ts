/**
 * The charts stage (activities/charts.ts) alone, in MockActivityEnvironment: a real bare Helm-charts repo through
 * the production git adapter, and GitHub's compare from the GitHub simulator.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type PipelineActivities, type ThawProgress } from '../activities';
import type { ImageTagFile } from '../common/ports';
import { startStack, type Stack } from '../sandbox/stack';
import { listCommits, readFileAt } from './support/charts-repo';
import { errorFrom } from './support/env';

/** Runs one activity in a MockActivityEnvironment, keeping its return type. */
function inActivity<A extends unknown[], R>(env: MockActivityEnvironment, fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return env.run(fn, ...args) as Promise<R>;
}


const APP = 'publisher';
const FILE = (environment: string) => `charts/app-config/image-tags/${environment}/${APP}`;
/** Promoted by its charts flags, as GOV.UK's apps are. */
const FLAGGED = 'whitehall';
const FLAGGED_FILE = (environment: string) => `charts/app-config/image-tags/${environment}/${FLAGGED}`;

describe('the charts stage', () => {
  let dataDir: string;
  let stack: Stack;
  let activities: PipelineActivities;
  const run = new MockActivityEnvironment();

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'activities-charts-'));
    stack = await startStack({ dataDir, apps: { [APP]: {}, [FLAGGED]: { promotion: 'chartsFlags' } } });
    activities = createActivities(stack.dependencies);
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('bumpImageTag makes one commit per environment; a retry finds it and pushes nothing', async () => {
    const sha = await stack.merge(APP);
    const step = { app: APP, environment: 'integration', tag: sha, respectFreeze: true };
    const before = (await listCommits(stack.charts.bareDir)).length;
    const first = await inActivity(run, activities.bumpImageTag, step);
    expect(first).toMatchObject({ frozen: false, changed: true, previousTag: 'initial' });
    const retry = await inActivity(new MockActivityEnvironment({ attempt: 2 }), activities.bumpImageTag, step);
    expect(retry).toMatchObject({ frozen: false, changed: false });
    if (first.frozen || retry.frozen) throw new Error('nothing is frozen here');
    expect(retry.chartsCommit).toBe(first.chartsCommit);
    const commits = await listCommits(stack.charts.bareDir);
    expect(commits).toHaveLength(before + 1);
    expect(commits[0]!.subject).toBe(`Deploy ${APP} ${sha} to integration`);
    expect(await readFileAt(stack.charts.bareDir, 'main', FILE('integration'))).toContain(`image_tag: ${sha}`);
  });

  it('a rollback says so, with its reason, in the charts commit', async () => {
    const sha = await stack.merge(APP);
    await run.run(activities.bumpImageTag, { app: APP, environment: 'staging', tag: sha, respectFreeze: true });
    await run.run(activities.bumpImageTag, { app: APP, environment: 'staging', tag: 'initial', respectFreeze: false, purpose: 'rollback' as const, reason: 'smoke test failed' });
    expect((await listCommits(stack.charts.bareDir))[0]!.subject).toBe(`Roll back ${APP} to initial in staging: smoke test failed`);
  });

  it('a freeze stops an automatic bump but not a manual one', async () => {
    await stack.charts.writeImageTag(APP, 'production', 'initial', { promote_deployment: true, automatic_deploys_enabled: false });
    const sha = await stack.merge(APP);
    const frozen = await run.run(activities.bumpImageTag, { app: APP, environment: 'production', tag: sha, respectFreeze: true });
    expect(frozen).toEqual({ frozen: true, path: FILE('production') });
    expect(await readFileAt(stack.charts.bareDir, 'main', FILE('production'))).toContain('image_tag: initial');
    const manual = await run.run(activities.bumpImageTag, { app: APP, environment: 'production', tag: sha, respectFreeze: false });
    expect(manual).toMatchObject({ frozen: false, changed: true });
    const file = await readFileAt(stack.charts.bareDir, 'main', FILE('production'));
    expect(file).toContain(`image_tag: ${sha}`);
    expect(file).toContain('automatic_deploys_enabled: false');
  });

  describe("promote_deployment, as GOV.UK's update-image-tag writes it", () => {
    const bumped = async (step: { environment: string; respectFreeze: boolean; deployType?: 'ci' | 'promotion' | 'approved' | 'manual'; purpose?: 'rollback' }, app = FLAGGED) => {
      const tag = step.purpose === 'rollback' ? 'initial' : await stack.merge(app);
      const outcome = await run.run(activities.bumpImageTag, { app, tag, ...step });
      expect(outcome).toMatchObject({ frozen: false, changed: true });
      return (await readFileAt(stack.charts.bareDir, 'main', `charts/app-config/image-tags/${step.environment}/${app}`))!;
    };
    const filed = (tag: string, promote: boolean) => `# Managed by the deploy pipeline\nimage_tag: ${tag}\npromote_deployment: ${promote}\nautomatic_deploys_enabled: true\n`;

    it('true for a CI deploy and a promotion; false for a manual deploy, a release a person let in, and a rollback', async () => {
      for (const [step, promote] of [
        [{ environment: 'integration', respectFreeze: true, deployType: 'ci' }, true],
        [{ environment: 'integration', respectFreeze: false, deployType: 'manual' }, false],
        [{ environment: 'staging', respectFreeze: true, deployType: 'approved' }, false],
        [{ environment: 'staging', respectFreeze: true, deployType: 'promotion' }, true],
        [{ environment: 'staging', respectFreeze: false, purpose: 'rollback' }, false],
        // Bumps a worker before 1.2 scheduled carry no deployType: an automatic one promotes, a manual one not.
        [{ environment: 'production', respectFreeze: true }, true],
        [{ environment: 'production', respectFreeze: false }, false],
      ] as const) {
        const file = await bumped(step);
        const tag = /image_tag: (\S+)/.exec(file)![1]!;
        expect([step, file]).toEqual([step, filed(tag, promote)]);
      }
    });

    it('a retried bump writes nothing twice, whatever the flag says by then', async () => {
      const sha = await stack.merge(FLAGGED);
      const step = { app: FLAGGED, environment: 'integration', tag: sha, respectFreeze: false, deployType: 'manual' as const };
      const first = await inActivity(run, activities.bumpImageTag, step);
      const commits = await listCommits(stack.charts.bareDir);
      const retry = await inActivity(new MockActivityEnvironment({ attempt: 2 }), activities.bumpImageTag, step);
      expect(retry).toEqual({ ...first, changed: false });
      expect(await listCommits(stack.charts.bareDir)).toEqual(commits);
      expect(await readFileAt(stack.charts.bareDir, 'main', FLAGGED_FILE('integration'))).toBe(filed(sha, false));
    });

    it('an app whose catalogue decides promotion keeps its flag as it was, byte for byte', async () => {
      await stack.charts.writeImageTag(APP, 'integration', 'initial', { promote_deployment: true, automatic_deploys_enabled: true });
      const before = (await readFileAt(stack.charts.bareDir, 'main', FILE('integration')))!;
      const file = await bumped({ environment: 'integration', respectFreeze: false, deployType: 'manual' }, APP);
      const tag = /image_tag: (\S+)/.exec(file)![1]!;
      expect(file).toBe(before.replace('image_tag: initial', `image_tag: ${tag}`));
    });
  });

  it('a freeze flag that is neither true nor false stops an automatic bump, saying why', async () => {
    await stack.charts.writeImageTag(APP, 'production', 'initial', { automatic_deploys_enabled: 'no' });
    const sha = await stack.merge(APP);
    const frozen = await run.run(activities.bumpImageTag, { app: APP, environment: 'production', tag: sha, respectFreeze: true });
    expect(frozen).toEqual({
      frozen: true,
      path: FILE('production'),
      reason: `${FILE('production')}: automatic_deploys_enabled is "no", neither true nor false; automatic deploys stay off until it says one of them`,
    });
  });

  it('a push refused by branch protection fails for good, saying so', async () => {
    const hook = join(stack.charts.bareDir, 'hooks', 'pre-receive');
    await writeFile(hook, '#!/bin/sh\necho "error: GH006: Protected branch update failed for refs/heads/main." >&2\nexit 1\n');
    await chmod(hook, 0o755);
    try {
      const sha = await stack.merge(APP);
      const err = await errorFrom(() => run.run(activities.bumpImageTag, { app: APP, environment: 'integration', tag: sha, respectFreeze: false }));
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: 'ChartsPushRefused', nonRetryable: true });
      expect(err.message).toMatch(/^the charts repository refused our push: branch protection on main\. Let the deploy identity push to main/);
    } finally {
      await rm(hook, { force: true });
    }
  });

  it('compareWithDeployed: unknown for a tag GitHub does not know, else how our commit relates to the running one', async () => {
    await stack.charts.writeImageTag(APP, 'integration', 'initial', { promote_deployment: true, automatic_deploys_enabled: true });
    const older = await stack.merge(APP);
    const newer = await stack.merge(APP);
    const step = (sha: string) => ({ app: APP, environment: 'integration', tag: sha, sha });
    await expect(run.run(activities.compareWithDeployed, step(newer))).resolves.toEqual({ tag: 'initial', relation: 'unknown' });
    await run.run(activities.bumpImageTag, { app: APP, environment: 'integration', tag: older, respectFreeze: true });
    await expect(run.run(activities.compareWithDeployed, step(newer))).resolves.toEqual({ tag: older, sha: older, relation: 'ahead' });
    await expect(run.run(activities.compareWithDeployed, step(older))).resolves.toEqual({ tag: older, sha: older, relation: 'identical' });
    await expect(run.run(activities.compareCommits, { app: APP, base: newer, head: older })).resolves.toBe('behind');
  });

  it('refuses for good a tag or environment that could climb a path', async () => {
    const badTag = await errorFrom(() => run.run(activities.bumpImageTag, { app: APP, environment: 'integration', tag: '../../etc', respectFreeze: true }));
    expect(badTag).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(badTag.message).toMatch(/^invalid image tag "\.\.\/\.\.\/etc"/);
    const badEnv = await errorFrom(() => run.run(activities.compareWithDeployed, { app: APP, environment: '../prod', tag: 'v1', sha: 'a'.repeat(40) }));
    expect(badEnv).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(badEnv.message).toMatch(/^invalid environment "\.\.\/prod"/);
  });

  it('a GitHub outage during the compare is left to Temporal to retry', async () => {
    const sha = await stack.merge(APP);
    await run.run(activities.bumpImageTag, { app: APP, environment: 'staging', tag: sha, respectFreeze: true });
    const newer = await stack.merge(APP);
    stack.github.injectFault({ method: 'GET', pathPattern: `^/repos/${stack.repoOf(APP)}/compare/`, status: 502, times: 1 });
    const err = await errorFrom(() => run.run(activities.compareWithDeployed, { app: APP, environment: 'staging', tag: newer, sha: newer }));
    expect(err).not.toHaveProperty('nonRetryable', true);
    expect(err.message).toMatch(/returned 502/);
    await expect(new MockActivityEnvironment({ attempt: 2 }).run(activities.compareWithDeployed, { app: APP, environment: 'staging', tag: newer, sha: newer })).resolves.toMatchObject({ relation: 'ahead' });
  });

  describe('waitForThaw', () => {
    const thaw = (environment: string) => ({ app: APP, environment, recheckIntervalMs: 1 });
    const frozenBy = (environment: string) => `automatic_deploys_enabled: false in ${FILE(environment)}`;

    /** An activity environment that keeps every heartbeat, and runs `onHeartbeat` after each. */
    function watched(onHeartbeat: (progress: ThawProgress, all: ThawProgress[]) => void = () => undefined, info = {}) {
      const env = new MockActivityEnvironment(info);
      const heartbeats: ThawProgress[] = [];
      env.on('heartbeat', (progress: ThawProgress) => {
        heartbeats.push(progress);
        onHeartbeat(progress, heartbeats);
      });
      return { env, heartbeats };
    }

    /** The stage with a charts repository whose reads `look` answers, the n-th read (from 1) as it says. */
    function withReads(look: (n: number) => Promise<ImageTagFile>) {
      let reads = 0;
      const charts = { ...stack.dependencies.charts, readImageTag: () => look(++reads) };
      return { activities: createActivities({ ...stack.dependencies, charts }), reads: () => reads };
    }
    const file = (environment: string, automaticDeploysEnabled: boolean): ImageTagFile => ({ path: FILE(environment), exists: true, imageTag: 'initial', automaticDeploysEnabled });

    it('looks at the charts file until the freeze lifts, heartbeating the count, and returns how many looks it took', async () => {
      await stack.charts.writeImageTag(APP, 'staging', 'initial', { promote_deployment: true, automatic_deploys_enabled: false });
      let lifting: Promise<unknown> | undefined;
      const { env, heartbeats } = watched((progress) => {
        lifting ??= progress.rechecks >= 3 ? stack.charts.writeImageTag(APP, 'staging', 'initial', { promote_deployment: true, automatic_deploys_enabled: true }) : undefined;
      });
      const result = await inActivity(env, activities.waitForThaw, thaw('staging'));
      await lifting;
      // Every look but the last found the freeze, and said so.
      expect(heartbeats.length).toBeGreaterThanOrEqual(3);
      expect(heartbeats.map((h) => h.rechecks)).toEqual(heartbeats.map((_, i) => i + 1));
      expect(new Set(heartbeats.map((h) => h.reason))).toEqual(new Set([frozenBy('staging')]));
      expect(result).toEqual({ rechecks: heartbeats.length + 1 });
      // A retry after a worker died counts on from the last heartbeat the server holds.
      const retried = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: { rechecks: 41, reason: frozenBy('staging') } });
      await expect(inActivity(retried, activities.waitForThaw, thaw('staging'))).resolves.toEqual({ rechecks: 42 });
    });

    it('keeps waiting through looks that fail, saying why in its heartbeat', async () => {
      const unreachable = "fatal: unable to access 'https://github.com/alphagov/govuk-helm-charts.git/': Could not resolve host: github.com";
      const charts = withReads(async (n) => {
        if (n === 2 || n === 3) throw new Error(unreachable);
        return file('staging', n > 3);
      });
      const { env, heartbeats } = watched();
      await expect(inActivity(env, charts.activities.waitForThaw, thaw('staging'))).resolves.toEqual({ rechecks: 4 });
      expect(heartbeats).toEqual([
        { rechecks: 1, reason: frozenBy('staging') },
        { rechecks: 2, reason: `could not read the freeze flag of ${APP} in staging: ${unreachable}` },
        { rechecks: 3, reason: `could not read the freeze flag of ${APP} in staging: ${unreachable}` },
      ]);
    });

    it('treats a flag that is neither true nor false as a freeze, with the reason in its heartbeat, and ends when cancelled', async () => {
      await stack.charts.writeImageTag(APP, 'staging', 'initial', { automatic_deploys_enabled: 'no' });
      const { env, heartbeats } = watched((progress) => {
        if (progress.rechecks === 5) env.cancel();
      });
      const err = await errorFrom(() => inActivity(env, activities.waitForThaw, thaw('staging')));
      expect(err).toBeInstanceOf(CancelledFailure);
      expect(heartbeats.at(-1)).toEqual({
        rechecks: 5,
        reason: `${FILE('staging')}: automatic_deploys_enabled is "no", neither true nor false; automatic deploys stay off until it says one of them`,
      });
    });

    it('a cancelled pipeline ends the wait at once, in the middle of an interval, and it looks no more', async () => {
      const charts = withReads(async () => file('production', false));
      const { env, heartbeats } = watched(() => setTimeout(() => env.cancel(), 50));
      const startedAt = Date.now();
      const err = await errorFrom(() => inActivity(env, charts.activities.waitForThaw, { ...thaw('production'), recheckIntervalMs: 60_000 }));
      expect(err).toBeInstanceOf(CancelledFailure);
      expect(Date.now() - startedAt).toBeLessThan(5_000);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(charts.reads()).toBe(1);
      expect(heartbeats).toEqual([{ rechecks: 1, reason: frozenBy('production') }]);
    });
  });
});
