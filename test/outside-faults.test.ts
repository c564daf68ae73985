/**
 * Faults of the outside systems, one test per kind: while a fault lasts less than the catalogue's limit the pipeline
 * backs off (as far as the server asks: Retry-After, GitHub's rate-limit reset) and then completes with nothing
 * doubled; a fault that does not clear ends the pipeline, once the step's limit is reached, with a message that says
 * what was wrong. The catalogue allows 3 attempts per quick step, 1 s apart and then 2 s.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { PipelineStatus } from '../common/types';
import type { LoggedRequest } from '../simulators/http';
import { listCommits } from './support/charts-repo';
import { waitFor } from './support/env';
import { holdsOf } from './support/safety';
import { startHarness, type PipelineHarness } from './support/pipeline';
import { localActivityMarker } from './support/history-steps';

const MAX_ATTEMPTS = 3;
/** The stack's Argo CD polling: 100 ms, growing by half up to 1 s. */
const POLLING = { initialIntervalMs: 100, maxIntervalMs: 1000 };
/** A fixed 100 ms poll would look this many times a second; backing off looks far less. */
const SYNC_TIMEOUT = '5s';

const APPS = ['five-hundreds', 'slow-release', 'dropped', 'rate-limited', 'retry-after', 'stale-argo', 'argo-refuses', 'charts-race'] as const;
type App = (typeof APPS)[number];

interface Outcome {
  sha: string;
  workflowId: string;
  status?: PipelineStatus;
  failure?: string;
}

/** Why each retried attempt of the pipeline's steps failed: history keeps the last failure on the attempt after it. */
async function retriedBecause(h: PipelineHarness, workflowId: string): Promise<string[]> {
  const history = await h.handle(workflowId).fetchHistory();
  return history.events!.flatMap((e) => {
    const started = e.activityTaskStartedEventAttributes;
    if (started) return (started.attempt ?? 1) > 1 ? [started.lastFailure?.message ?? ''] : [];
    // A local activity's failed attempt that another follows: its marker holds the failure and the backoff.
    return localActivityMarker(e)?.backoff ? [e.markerRecordedEventAttributes!.failure?.message ?? ''] : [];
  });
}

function gaps(requests: readonly LoggedRequest[]): number[] {
  return requests.slice(1).map((r, i) => r.time.getTime() - requests[i]!.time.getTime());
}

describe('outside faults: back off, complete once the fault clears, give up clearly when it does not', () => {
  let h: PipelineHarness;

  beforeAll(async () => {
    h = await startHarness({
      apps: Object.fromEntries(APPS.map((app) => [app, { environments: { integration: { syncTimeout: SYNC_TIMEOUT } } }])),
      polling: POLLING,
      stepRetry: { maximumAttempts: MAX_ATTEMPTS, maximumInterval: '2s' },
    });
  });
  afterAll(async () => h?.close());

  beforeEach(() => {
    for (const sim of [h.stack.github, h.stack.argo, h.stack.release, h.stack.endpoints]) {
      sim.clearFaults();
      sim.clearRequests();
    }
  });

  async function deploy(app: App): Promise<Outcome> {
    const sha = await h.stack.merge(app);
    const { workflowId } = await h.startCi(app, sha);
    try {
      return { sha, workflowId, status: await h.handle(workflowId).result() };
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      return { sha, workflowId, failure: err.cause?.message ?? err.message };
    }
  }

  function expectDeployed(outcome: Outcome): void {
    expect(outcome.failure).toBeUndefined();
    expect(outcome.status).toMatchObject({ status: 'SUCCEEDED', environments: [{ environment: 'integration', state: 'DEPLOYED' }] });
  }

  /** The release app's POSTs of this test (a fault answers before the body is read). */
  const releasePosts = (app: App) =>
    h.stack.release.requests.filter((r) => r.method === 'POST' && r.path === '/deployments' && (r.fault || (r.body as { repo?: string })?.repo === `alphagov/${app}`));
  /** Reading what the environment runs: after a first deploy, a compare of that commit with ours. */
  const compares = (app: App) => h.stack.github.requests.filter((r) => r.method === 'GET' && r.path.startsWith(`/repos/alphagov/${app}/compare/`));
  const commitReads = (app: App, sha: string) => h.stack.github.requests.filter((r) => r.method === 'GET' && r.path === `/repos/alphagov/${app}/commits/${sha}`);
  const argoReads = (app: App) => h.stack.argo.requests.filter((r) => r.path === `/api/v1/applications/${app}-integration`);
  const records = (app: App, sha: string) => h.stack.release.deployments.filter((d) => d.repo === `alphagov/${app}` && d.version === sha);

  it('HTTP 500, 502 and 503 from GitHub, Argo CD and the release app', async () => {
    const app: App = 'five-hundreds';
    // Two failures each: the third attempt of each step gets through.
    h.stack.github.injectFault({ method: 'GET', pathPattern: `^/repos/alphagov/${app}/commits/[0-9a-f]{40}(\\?|$)`, status: 502, times: 2 });
    h.stack.argo.injectFault({ pathPattern: `^/api/v1/applications/${app}-integration`, status: 503, times: 2 });
    h.stack.release.injectFault({ method: 'POST', pathPattern: '^/deployments', status: 500, times: 2 });
    const passing = await deploy(app);
    expectDeployed(passing);
    const reads = commitReads(app, passing.sha);
    expect(reads.map((r) => r.status)).toEqual([502, 502, 200]);
    expect(releasePosts(app).map((r) => r.status)).toEqual([500, 500, 201]);
    expect(records(app, passing.sha)).toHaveLength(1);
    expect(argoReads(app).filter((r) => r.fault)).toHaveLength(2);
    // Temporal's backoff: 1 s, then 2 s.
    for (const requests of [reads, releasePosts(app)]) {
      const [first, second] = gaps(requests);
      expect(first).toBeGreaterThanOrEqual(950);
      expect(second).toBeGreaterThanOrEqual(1_950);
    }

    h.stack.release.clearRequests();
    h.stack.release.injectFault({ method: 'POST', pathPattern: '^/deployments', status: 503, times: Infinity });
    const failing = await deploy(app);
    expect(failing.failure).toMatch(/^Release app POST http:\/\/127\.0\.0\.1:\d+\/deployments returned 503: Service Unavailable$/);
    expect(releasePosts(app)).toHaveLength(MAX_ATTEMPTS);
    expect(records(app, failing.sha)).toHaveLength(0);
    expect((await h.status(failing.workflowId)).status).toBe('FAILED');

    // Resolving the commit comes before the workflow knows the catalogue; the step keeps to its limit all the same.
    h.stack.github.injectFault({ method: 'GET', pathPattern: `^/repos/alphagov/${app}/commits/[0-9a-f]{40}(\\?|$)`, status: 502, times: Infinity });
    const unresolved = await deploy(app);
    expect(unresolved.failure).toMatch(/^GitHub GET http:\/\/127\.0\.0\.1:\d+\/repos\/alphagov\/five-hundreds\/commits\/[0-9a-f]{40}\S* returned 502: Bad Gateway$/);
    expect(commitReads(app, unresolved.sha)).toHaveLength(MAX_ATTEMPTS);
  });

  it('answers slower than the adapter’s timeout', async () => {
    const app: App = 'slow-release';
    // The release app adapter gives up after 10 s.
    h.stack.release.injectFault({ method: 'POST', pathPattern: '^/deployments', delayMs: 10_500, times: 1 });
    const passing = await deploy(app);
    expectDeployed(passing);
    expect(releasePosts(app)).toHaveLength(2);
    expect(releasePosts(app)[1]!.time.getTime() - releasePosts(app)[0]!.time.getTime()).toBeGreaterThanOrEqual(10_000);
    expect(records(app, passing.sha)).toHaveLength(1);
    expect(await retriedBecause(h, passing.workflowId)).toEqual([expect.stringMatching(/^Release app POST http:\/\/127\.0\.0\.1:\d+\/deployments timed out after 10000 ms$/)]);

    h.stack.release.clearRequests();
    h.stack.release.injectFault({ method: 'POST', pathPattern: '^/deployments', delayMs: 10_500, times: Infinity });
    const failing = await deploy(app);
    expect(failing.failure).toMatch(/^Release app POST http:\/\/127\.0\.0\.1:\d+\/deployments timed out after 10000 ms$/);
    expect(releasePosts(app)).toHaveLength(MAX_ATTEMPTS);
    expect(records(app, failing.sha)).toHaveLength(0);
  }, 90_000);

  it('connections dropped without an answer', async () => {
    const app: App = 'dropped';
    h.stack.github.injectFault({ method: 'GET', pathPattern: `^/repos/alphagov/${app}/commits/[0-9a-f]{40}(\\?|$)`, dropConnection: true, times: 2 });
    h.stack.argo.injectFault({ pathPattern: `^/api/v1/applications/${app}-integration`, dropConnection: true, times: 2 });
    h.stack.release.injectFault({ method: 'POST', pathPattern: '^/deployments', dropConnection: true, times: 2 });
    const passing = await deploy(app);
    expectDeployed(passing);
    expect(commitReads(app, passing.sha).map((r) => r.fault)).toEqual([true, true, false]);
    expect(releasePosts(app).map((r) => r.fault)).toEqual([true, true, false]);
    expect(records(app, passing.sha)).toHaveLength(1);

    h.stack.github.clearRequests();
    h.stack.github.injectFault({ method: 'GET', pathPattern: `^/repos/alphagov/${app}/compare/`, dropConnection: true, times: Infinity });
    const failing = await deploy(app);
    expect(failing.failure).toMatch(
      new RegExp(`^GitHub GET http://127\\.0\\.0\\.1:\\d+/repos/alphagov/dropped/compare/${passing.sha}\\.\\.\\.${failing.sha}\\S* failed: connection (closed|reset) by the server`),
    );
    expect(compares(app)).toHaveLength(MAX_ATTEMPTS);
    expect(failing.failure).not.toContain(h.stack.env.GITHUB_TOKEN);
  });

  it('GitHub’s 403 with an exhausted rate limit: waits until the reset it names', async () => {
    const app: App = 'rate-limited';
    const rateLimited = (resetAtMs: number, pathPattern: string) => ({
      method: 'GET',
      pathPattern,
      status: 403,
      headers: {
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-used': '5000',
        'x-ratelimit-resource': 'core',
        'x-ratelimit-reset': String(Math.ceil(resetAtMs / 1000)),
      },
      body: { message: 'API rate limit exceeded for installation ID 4242.', documentation_url: 'https://docs.github.com/rest/rate-limit' },
    });
    // The reset is 3–4 s away: well beyond the 1 s Temporal would wait on its own.
    const resetAtMs = Math.ceil((Date.now() + 3_000) / 1000) * 1000;
    h.stack.github.injectFault({ ...rateLimited(resetAtMs, `^/repos/alphagov/${app}/commits/[0-9a-f]{40}(\\?|$)`), times: 1 });
    const passing = await deploy(app);
    expectDeployed(passing);
    const reads = commitReads(app, passing.sha);
    expect(reads.map((r) => r.status)).toEqual([403, 200]);
    expect(reads[1]!.time.getTime()).toBeGreaterThanOrEqual(resetAtMs - 50);

    h.stack.github.clearRequests();
    h.stack.github.injectFault({ ...rateLimited(Date.now() + 1_000, `^/repos/alphagov/${app}/compare/`), times: Infinity });
    const failing = await deploy(app);
    expect(failing.failure).toMatch(
      /^GitHub GET http:\/\/127\.0\.0\.1:\d+\/repos\/alphagov\/rate-limited\/compare\/\S+ returned 403: API rate limit exceeded for installation ID 4242\. \(rate limited; retry in \d+ s\)$/,
    );
    expect(compares(app)).toHaveLength(MAX_ATTEMPTS);
    // Past the reset, Temporal's own backoff still spaces the attempts.
    expect(Math.min(...gaps(compares(app)))).toBeGreaterThanOrEqual(950);
  });

  it('429 with Retry-After: the next attempt comes no sooner than asked', async () => {
    const app: App = 'retry-after';
    h.stack.release.injectFault({ method: 'POST', pathPattern: '^/deployments', status: 429, headers: { 'retry-after': '3' }, times: 1 });
    const passing = await deploy(app);
    expectDeployed(passing);
    const posts = releasePosts(app);
    expect(posts.map((r) => r.status)).toEqual([429, 201]);
    expect(gaps(posts)[0]).toBeGreaterThanOrEqual(3_000);
    expect(records(app, passing.sha)).toHaveLength(1);

    h.stack.release.clearRequests();
    h.stack.release.injectFault({ method: 'POST', pathPattern: '^/deployments', status: 429, headers: { 'retry-after': '2' }, times: Infinity });
    const failing = await deploy(app);
    expect(failing.failure).toMatch(/^Release app POST http:\/\/127\.0\.0\.1:\d+\/deployments returned 429: Too Many Requests \(rate limited; retry in 2 s\)$/);
    expect(releasePosts(app)).toHaveLength(MAX_ATTEMPTS);
    expect(Math.min(...gaps(releasePosts(app)))).toBeGreaterThanOrEqual(2_000);
    expect(records(app, failing.sha)).toHaveLength(0);
  });

  it('Argo CD answering a stale status: polls with backoff; a sync timeout after our bump rolls back and holds, as Degraded does', async () => {
    const app: App = 'stale-argo';
    const name = `${app}-integration`;
    const staleMs = 2_000;
    const sha = await h.stack.merge(app);
    // Stale from before the pipeline looks until 2 s after its first look.
    h.stack.argo.reportStaleFor(name, 60_000);
    const { workflowId } = await h.startCi(app, sha);
    const firstLook = await waitFor(() => argoReads(app)[0], { timeoutMs: 30_000, intervalMs: 10, description: `the first look at ${name}` });
    const staleUntil = firstLook.time.getTime() + staleMs;
    await new Promise((resolve) => setTimeout(resolve, staleUntil - Date.now()));
    h.stack.argo.reportStaleFor(name, 0);
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(h.stack.argo.currentTag(app, 'integration')).toBe(sha);
    const duringStale = argoReads(app).filter((r) => r.time.getTime() < staleUntil);
    // 100 ms, growing by half up to 1 s: about 6 looks in 2 s (a fixed 100 ms poll would make 20).
    expect(duringStale.length).toBeGreaterThanOrEqual(2);
    expect(duringStale.length).toBeLessThanOrEqual(9);

    h.stack.argo.clearRequests();
    const next = await h.stack.merge(app);
    h.stack.argo.reportStaleFor(name, 60_000);
    let failingId: string;
    let looksBeforeRollback: number;
    try {
      const started = Date.now();
      failingId = (await h.startCi(app, next)).workflowId;
      // Argo CD never reports our commit: at the sync timeout the environment goes back, as for a Degraded rollout.
      await h.waitForStatus(failingId, (s) => s.environments[0]?.state === 'ROLLING_BACK', 'the rollback after the sync timeout');
      expect(Date.now() - started).toBeGreaterThanOrEqual(5_000);
      looksBeforeRollback = argoReads(app).length;
    } finally {
      h.stack.argo.reportStaleFor(name, 0);
    }
    // 5 s of polling with backoff: about 9 looks.
    expect(looksBeforeRollback).toBeLessThanOrEqual(13);
    const failure = await h.handle(failingId).result().then(
      () => 'succeeded',
      (err: unknown) => (err as WorkflowFailedError).cause?.message ?? String(err),
    );
    expect(failure).toBe(
      `Argo CD did not report ${app} ${next} Synced and Healthy in integration within ${SYNC_TIMEOUT}; rolled integration back to ${sha} and put a hold on automatic deploys there`,
    );
    expect((await h.status(failingId)).status).toBe('ROLLED_BACK');
    expect(h.stack.argo.currentTag(app, 'integration')).toBe(sha);
    const holds = await holdsOf(h, app, (found) => found.some((hold) => hold.environment === 'integration'));
    expect(holds.find((hold) => hold.environment === 'integration')!.reason).toMatch(new RegExp(`^rolled back from ${next}: Argo CD did not report`));
  });

  it('Argo CD refusing our token after the bump: fails at once, and holds the environment nobody can verify', async () => {
    const app: App = 'argo-refuses';
    const sha = await h.stack.merge(app);
    const started = Date.now();
    const fault = h.stack.argo.injectFault({ pathPattern: `^/api/v1/applications/${app}-integration`, status: 403, body: { error: 'permission denied', code: 7, message: 'permission denied' }, times: Infinity });
    let failure: string;
    try {
      const { workflowId } = await h.startCi(app, sha);
      failure = await h.handle(workflowId).result().then(
        () => 'succeeded',
        (err: unknown) => (err as WorkflowFailedError).cause?.message ?? String(err),
      );
      expect((await h.status(workflowId)).environments[0]).toMatchObject({ state: 'FAILED', chartsCommit: expect.stringMatching(/^[0-9a-f]{40}$/) });
    } finally {
      fault.cancel();
    }
    expect(failure).toMatch(new RegExp(`^Argo CD GET \\S+/api/v1/applications/${app}-integration\\S* returned 403: permission denied`));
    // At once: no sync timeout's worth of polling.
    expect(Date.now() - started).toBeLessThan(5_000);
    const holds = await holdsOf(h, app, (found) => found.some((hold) => hold.environment === 'integration'));
    expect(holds.find((hold) => hold.environment === 'integration')!.reason).toMatch(new RegExp(`^${sha} is in the charts but unverified: Argo CD GET`));
  });

  it('the charts remote refusing pushes because another writer got there first, 20 times in a row', async () => {
    const app: App = 'charts-race';
    const file = `charts/app-config/image-tags/integration/${app}`;
    const hookDir = await mkdtemp(path.join(tmpdir(), 'charts-hook-'));
    const hook = path.join(h.stack.charts.bareDir, 'hooks', 'pre-receive');
    const pushes = path.join(hookDir, 'pushes');
    /** A pre-receive hook that lands a competing commit on main, then refuses the push: what a racing writer does. */
    const installHook = async (races: number) => {
      await writeFile(pushes, '');
      await writeFile(
        hook,
        `#!/bin/sh
# Test-only: another writer wins the race for main ${races < 0 ? 'every time' : `${races} times`}.
echo push >> '${pushes}'
raced=$(grep -c push '${pushes}')
if [ ${races} -ge 0 ] && [ "$raced" -gt ${races} ]; then exit 0; fi
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
old=$(git rev-parse refs/heads/main)
new=$(GIT_AUTHOR_NAME=Racer GIT_AUTHOR_EMAIL=racer@example.invalid GIT_COMMITTER_NAME=Racer GIT_COMMITTER_EMAIL=racer@example.invalid git commit-tree "$old^{tree}" -p "$old" -m "Competing change $raced")
git update-ref refs/heads/main "$new" "$old" || exit 2
echo "main moved meanwhile: fetch first" >&2
exit 1
`,
      );
      await chmod(hook, 0o755);
    };
    const pushCount = async () => (await readFile(pushes, 'utf8')).split('\n').filter(Boolean).length;
    const ours = async (sha: string) => (await listCommits(h.stack.charts.bareDir)).filter((c) => c.subject === `Deploy ${app} ${sha} to integration`);
    const competing = async () => (await listCommits(h.stack.charts.bareDir)).filter((c) => c.subject.startsWith('Competing change'));
    try {
      await installHook(20);
      const passing = await deploy(app);
      expectDeployed(passing);
      // The first attempt spent its 20 pushes; the second landed at once.
      expect(await pushCount()).toBe(21);
      expect(await competing()).toHaveLength(20);
      expect(await ours(passing.sha)).toHaveLength(1);
      expect(await h.stack.charts.readFile(file)).toContain(`image_tag: ${passing.sha}`);
      expect(await retriedBecause(h, passing.workflowId)).toEqual([`could not push the image tag change to ${file} on main: other commits landed first 20 times in a row`]);

      await installHook(-1);
      const failing = await deploy(app);
      expect(failing.failure).toBe(`could not push the image tag change to ${file} on main: other commits landed first 20 times in a row`);
      expect(await pushCount()).toBe(20 * MAX_ATTEMPTS);
      expect(await ours(failing.sha)).toHaveLength(0);
      expect(h.stack.release.deployments.filter((d) => d.version === failing.sha)).toHaveLength(0);
    } finally {
      await rm(hook, { force: true });
      await rm(hookDir, { recursive: true, force: true });
    }
  }, 120_000);
});
