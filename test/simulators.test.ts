import { AppEndpointsSimulator } from '../simulators/app-endpoints';
import { ArgoCdSimulator, type ApplicationJson } from '../simulators/argocd';
import { createLocalChartsRepo, type LocalChartsRepo } from '../simulators/charts-repo';
import { GitHubSimulator } from '../simulators/github';
import { SimServer } from '../simulators/http';
import { ReleaseAppSimulator } from '../simulators/release-app';

const TOKEN = 'sim-token-0123456789';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- assertions read arbitrary JSON answers
type Json = any;

async function call(url: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: Json; text: string; headers: Headers }> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
  const response = await fetch(url, { ...init, headers });
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: response.status, body, text, headers: response.headers };
}

async function waitFor<T>(probe: () => Promise<T> | T, accept: (value: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (!accept(last)) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
    last = await probe();
  }
  return last;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SimServer', () => {
  let server: SimServer;
  let url: string;

  beforeEach(async () => {
    server = new SimServer();
    server.route('GET', /^\/things\/([^/]+)$/, (req) => ({ status: 200, body: { id: req.params[0], q: req.query.get('q') } }));
    server.route('POST', /^\/things$/, (req) => ({ status: 201, body: { got: req.body } }));
    ({ url } = await server.start());
  });
  afterEach(() => server.close());

  it('routes by method and pattern, decodes parameters and parses JSON bodies', async () => {
    expect((await call(`${url}/things/a%2Fb?q=1`)).body).toEqual({ id: 'a/b', q: '1' });
    expect((await call(`${url}/things`, { method: 'POST', body: JSON.stringify({ x: 1 }) })).body).toEqual({ got: { x: 1 } });
    expect((await call(`${url}/things`, { method: 'POST', body: '{oops' })).status).toBe(400);
    expect((await call(`${url}/things/a`, { method: 'DELETE' })).status).toBe(404);
  });

  it('logs requests without credentials', async () => {
    await call(`${url}/things/x`, { token: 'secret-value', headers: { 'x-trace': 't1' } });
    const entry = server.requests.at(-1);
    expect(entry).toMatchObject({ method: 'GET', path: '/things/x', status: 200, fault: false });
    expect(entry?.headers['x-trace']).toBe('t1');
    expect(JSON.stringify(server.requests)).not.toContain('secret-value');
  });

  it('injects faults a given number of times, by method and path', async () => {
    server.injectFault({ method: 'GET', pathPattern: /^\/things\/a/, status: 503, times: 2, headers: { 'retry-after': '3' } });
    const first = await call(`${url}/things/a`);
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('3');
    expect((await call(`${url}/things/b`)).status).toBe(200);
    expect((await call(`${url}/things/a`)).status).toBe(503);
    expect((await call(`${url}/things/a`)).status).toBe(200);
    expect(server.requests.filter((r) => r.fault)).toHaveLength(2);
  });

  it('delays answers and drops connections', async () => {
    server.injectFault({ delayMs: 150 });
    const started = Date.now();
    expect((await call(`${url}/things/slow`)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);

    server.injectFault({ dropConnection: true });
    await expect(fetch(`${url}/things/dropped`)).rejects.toThrow();
    expect((await call(`${url}/things/after`)).status).toBe(200);
  });
});

describe('GitHubSimulator', () => {
  const repo = 'alphagov/whitehall';
  let github: GitHubSimulator;
  let url: string;

  beforeEach(async () => {
    github = new GitHubSimulator({ token: TOKEN });
    github.addRepo(repo, { defaultBranch: 'main' });
    ({ url } = await github.start());
  });
  afterEach(() => github.close());

  const get = (path: string, token = TOKEN) => call(`${url}${path}`, { token });

  it('requires the configured token, as Bearer or token', async () => {
    const sha = github.addCommit(repo);
    expect((await get(`/repos/${repo}/commits/${sha}`, 'wrong')).status).toBe(401);
    expect((await get(`/repos/${repo}/commits/${sha}`, 'wrong')).body.message).toBe('Bad credentials');
    expect((await call(`${url}/repos/${repo}/commits/${sha}`)).status).toBe(401);
    expect((await call(`${url}/repos/${repo}/commits/${sha}`, { headers: { authorization: `token ${TOKEN}` } })).status).toBe(200);
  });

  it('resolves branches, tags, full and short SHAs to commits in GitHub shape', async () => {
    const first = github.addCommit(repo, { authorLogin: 'alice', message: 'First' });
    const second = github.addCommit(repo, { authorLogin: 'bob', message: 'Second' });
    github.addTag(repo, 'v1', first);

    const byBranch = await get(`/repos/${repo}/commits/main`);
    expect(byBranch.status).toBe(200);
    expect(byBranch.body).toMatchObject({ sha: second, author: { login: 'bob' }, commit: { message: 'Second' }, parents: [{ sha: first }] });
    expect((await get(`/repos/${repo}/commits/v1`)).body.sha).toBe(first);
    expect((await get(`/repos/${repo}/commits/${first.slice(0, 7)}`)).body.sha).toBe(first);
    expect((await get(`/repos/${repo}/commits/${second}`)).body.sha).toBe(second);

    const unknownSha = await get(`/repos/${repo}/commits/${'0'.repeat(40)}`);
    expect(unknownSha.status).toBe(404);
    expect(unknownSha.body.message).toBe(`No commit found for SHA: ${'0'.repeat(40)}`);
    expect((await get(`/repos/${repo}/commits/no-such-branch`)).status).toBe(422);
    expect((await get(`/repos/alphagov/unknown/commits/main`)).status).toBe(404);
    expect((await get(`/repos/${repo}`)).body).toMatchObject({ full_name: repo, default_branch: 'main' });
  });

  it('lists tags newest first with Link pagination', async () => {
    const sha = github.addCommit(repo);
    for (let i = 1; i <= 5; i += 1) github.addTag(repo, `v${i}`, sha);
    const page1 = await get(`/repos/${repo}/tags?per_page=2`);
    expect(page1.body.map((t: { name: string }) => t.name)).toEqual(['v5', 'v4']);
    expect(page1.body[0].commit.sha).toBe(sha);
    expect(page1.headers.get('link')).toContain('rel="next"');
    const page3 = await get(`/repos/${repo}/tags?per_page=2&page=3`);
    expect(page3.body.map((t: { name: string }) => t.name)).toEqual(['v1']);
    expect(page3.headers.get('link')).not.toContain('rel="next"');
  });

  it('compares commits from the parent graph', async () => {
    const root = github.addCommit(repo);
    const a = github.addCommit(repo);
    const b = github.addCommit(repo);
    const side = github.addCommit(repo, { parents: [a], branch: null });
    const compare = async (base: string, head: string) => (await get(`/repos/${repo}/compare/${base}...${head}`)).body;

    expect(await compare(a, b)).toMatchObject({ status: 'ahead', ahead_by: 1, behind_by: 0, merge_base_commit: { sha: a }, base_commit: { sha: a } });
    expect(await compare(b, root)).toMatchObject({ status: 'behind', ahead_by: 0, behind_by: 2, merge_base_commit: { sha: root } });
    expect(await compare(b, b)).toMatchObject({ status: 'identical', ahead_by: 0, behind_by: 0 });
    expect(await compare(b, side)).toMatchObject({ status: 'diverged', ahead_by: 1, behind_by: 1, merge_base_commit: { sha: a } });
    expect(github.branchTip(repo)).toBe(b);
  });

  it('runs a dispatched workflow through queued, in_progress and completed, calling the handler', async () => {
    github.addCommit(repo);
    const seen: string[] = [];
    github.onDispatch(async (dispatch, run) => {
      seen.push(`${dispatch.inputs.gitRef}:${run.status}`);
      await sleep(50);
    });
    const dispatched = await call(`${url}/repos/${repo}/actions/workflows/build-image.yml/dispatches`, {
      method: 'POST',
      token: TOKEN,
      body: JSON.stringify({ ref: 'main', inputs: { gitRef: 'v42' } }),
    });
    expect(dispatched.status).toBe(204);
    const listed = await get(`/repos/${repo}/actions/workflows/build-image.yml/runs`);
    expect(listed.body.total_count).toBe(1);
    expect(listed.body.workflow_runs[0]).toMatchObject({ display_title: 'Build image v42', event: 'workflow_dispatch', head_branch: 'main', conclusion: null });
    expect(['queued', 'in_progress']).toContain(listed.body.workflow_runs[0].status);

    await github.settled();
    expect(seen).toEqual(['v42:in_progress']);
    const done = await get(`/repos/${repo}/actions/workflows/build-image.yml/runs`);
    expect(done.body.workflow_runs[0]).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(github.dispatches).toMatchObject([{ repo, workflowFile: 'build-image.yml', ref: 'main', inputs: { gitRef: 'v42' } }]);
  });

  it('fails the run when the handler throws and refuses refs that are not branches or tags', async () => {
    const sha = github.addCommit(repo);
    github.onDispatch(() => {
      throw new Error('docker build failed');
    });
    const dispatch = (ref: string) =>
      call(`${url}/repos/${repo}/actions/workflows/build-image.yml/dispatches`, { method: 'POST', token: TOKEN, body: JSON.stringify({ ref, inputs: { gitRef: ref } }) });
    expect((await dispatch(sha)).status).toBe(422);
    expect((await dispatch('nope')).status).toBe(422);
    expect((await dispatch('main')).status).toBe(204);
    await github.settled();
    expect(github.runs).toHaveLength(1);
    expect(github.runs[0]).toMatchObject({ status: 'completed', conclusion: 'failure', failure: 'docker build failed' });
  });

  it('reports who committed each commit: the author unless told, GitHub itself (web-flow) for a web UI merge', async () => {
    const base = github.addCommit(repo, { authorLogin: 'alice' });
    const rebased = github.addCommit(repo, { authorLogin: 'alice', committerLogin: 'bob' });
    const merge = github.addCommit(repo, { authorLogin: 'carol', committerLogin: 'web-flow' });

    expect((await get(`/repos/${repo}/commits/${base}`)).body).toMatchObject({ author: { login: 'alice' }, committer: { login: 'alice' } });
    const compared = (await get(`/repos/${repo}/compare/${base}...${merge}`)).body;
    expect(compared.total_commits).toBe(2);
    expect(compared.commits.map((c: Json) => [c.sha, c.author.login, c.committer.login])).toEqual([
      [rebased, 'alice', 'bob'],
      [merge, 'carol', 'web-flow'],
    ]);
    expect(compared.commits[1].commit.committer).toMatchObject({ name: 'GitHub', email: 'noreply@github.com' });
    expect(compared.commits[0].commit.committer).toMatchObject({ name: 'bob' });
  });

  it('lists up to 250 commits in a comparison unless asked for pages of at most 100', async () => {
    const base = github.addCommit(repo);
    let head = base;
    for (let i = 0; i < 260; i += 1) head = github.addCommit(repo);
    const whole = (await get(`/repos/${repo}/compare/${base}...${head}`)).body;
    expect(whole).toMatchObject({ total_commits: 260, ahead_by: 260 });
    expect(whole.commits).toHaveLength(250);
    const lastPage = (await get(`/repos/${repo}/compare/${base}...${head}?per_page=100&page=3`)).body;
    expect(lastPage.commits).toHaveLength(60);
    expect(lastPage.commits.at(-1).sha).toBe(head);
    expect((await get(`/repos/${repo}/compare/${base}...${head}?per_page=500`)).body.commits).toHaveLength(100);
  });

  it('links pull requests to their merge commit and head, and says who merged them', async () => {
    const head = github.addCommit(repo, { authorLogin: 'alice', branch: 'fix-typo' });
    const merge = github.addCommit(repo, { authorLogin: 'alice', committerLogin: 'web-flow', parents: [head] });
    const merged = github.addPullRequest(repo, { author: 'alice', headSha: head, mergeCommitSha: merge, mergedBy: 'bob', headRef: 'fix-typo' });
    const openHead = github.addCommit(repo, { branch: 'wip' });
    const open = github.addPullRequest(repo, { author: 'dave', headSha: openHead });
    expect([merged, open]).toEqual([1, 2]);

    const byMerge = await get(`/repos/${repo}/commits/${merge}/pulls`);
    expect(byMerge.status).toBe(200);
    expect(byMerge.body).toHaveLength(1);
    expect(byMerge.body[0]).toMatchObject({ number: 1, state: 'closed', user: { login: 'alice' }, merge_commit_sha: merge, head: { sha: head, ref: 'fix-typo' }, base: { ref: 'main' } });
    expect(byMerge.body[0].merged_at).toMatch(/Z$/);
    // The listing, as GitHub's, does not say who merged.
    expect(byMerge.body[0]).not.toHaveProperty('merged_by');
    expect((await get(`/repos/${repo}/commits/${head}/pulls`)).body.map((p: Json) => p.number)).toEqual([1]);
    expect((await get(`/repos/${repo}/commits/${github.addCommit(repo)}/pulls`)).body).toEqual([]);
    expect((await get(`/repos/${repo}/commits/${'0'.repeat(40)}/pulls`)).status).toBe(422);

    expect((await get(`/repos/${repo}/pulls/1`)).body).toMatchObject({ number: 1, merged: true, merged_by: { login: 'bob' }, merge_commit_sha: merge, user: { login: 'alice' } });
    expect((await get(`/repos/${repo}/pulls/2`)).body).toMatchObject({ number: 2, state: 'open', merged: false, merged_by: null, merged_at: null, user: { login: 'dave' } });
    expect((await get(`/repos/${repo}/pulls/3`)).status).toBe(404);
    expect(() => github.addPullRequest(repo, { author: 'eve', headSha: head, mergedBy: 'eve' })).toThrow(/mergeCommitSha/);
  });

  it('answers for a run a person started and re-ran: display title, attempt, actor and triggering actor', async () => {
    github.addCommit(repo);
    const runId = github.startRun(repo, { workflowFile: 'approve.yml', displayTitle: 'approve deploy-whitehall-abc production', actor: 'alice' });
    const first = (await get(`/repos/${repo}/actions/runs/${runId}`)).body;
    expect(first).toMatchObject({
      id: runId,
      display_title: 'approve deploy-whitehall-abc production',
      event: 'workflow_dispatch',
      status: 'in_progress',
      run_attempt: 1,
      path: '.github/workflows/approve.yml',
      head_branch: 'main',
      head_sha: github.branchTip(repo),
      actor: { login: 'alice' },
      triggering_actor: { login: 'alice' },
      repository: { full_name: repo },
    });

    github.rerun(repo, runId, 'bob');
    expect((await get(`/repos/${repo}/actions/runs/${runId}`)).body).toMatchObject({ run_attempt: 2, actor: { login: 'alice' }, triggering_actor: { login: 'bob' } });
    expect((await get(`/repos/${repo}/actions/workflows/approve.yml/runs`)).body.workflow_runs.map((r: Json) => r.id)).toEqual([runId]);
    expect((await get(`/repos/${repo}/actions/runs/1`)).status).toBe(404);

    // A dispatched run is the token's owner's, as before.
    await call(`${url}/repos/${repo}/actions/workflows/build-image.yml/dispatches`, { method: 'POST', token: TOKEN, body: JSON.stringify({ ref: 'main', inputs: { gitRef: 'v1' } }) });
    const dispatched = github.runs.at(-1)!;
    expect((await get(`/repos/${repo}/actions/runs/${dispatched.id}`)).body).toMatchObject({ run_attempt: 1, actor: { login: 'deploy-pipeline' }, triggering_actor: { login: 'deploy-pipeline' } });
  });

  it('creates and lists deployments and their statuses', async () => {
    const sha = github.addCommit(repo);
    const created = await call(`${url}/repos/${repo}/deployments`, {
      method: 'POST',
      token: TOKEN,
      body: JSON.stringify({ ref: 'main', environment: 'staging', auto_merge: false, required_contexts: [], payload: { tag: 'v1' } }),
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ sha, ref: 'main', environment: 'staging', task: 'deploy', payload: { tag: 'v1' }, production_environment: false });
    const id = created.body.id as number;
    const status = await call(`${url}/repos/${repo}/deployments/${id}/statuses`, { method: 'POST', token: TOKEN, body: JSON.stringify({ state: 'success', log_url: 'https://ci/1' }) });
    expect(status.status).toBe(201);
    expect(status.body).toMatchObject({ state: 'success', log_url: 'https://ci/1', environment: 'staging' });
    expect((await call(`${url}/repos/${repo}/deployments/${id}/statuses`, { method: 'POST', token: TOKEN, body: JSON.stringify({ state: 'great' }) })).status).toBe(422);
    expect((await get(`/repos/${repo}/deployments?environment=staging`)).body.map((d: { id: number }) => d.id)).toEqual([id]);
    expect((await get(`/repos/${repo}/deployments?environment=production`)).body).toEqual([]);
    expect((await get(`/repos/${repo}/deployments/${id}/statuses`)).body.map((s: { state: string }) => s.state)).toEqual(['success']);
  });
});

describe('ArgoCdSimulator', () => {
  const name = 'whitehall-integration';
  const tagFile = 'charts/app-config/image-tags/integration/whitehall';
  let charts: LocalChartsRepo;
  let argo: ArgoCdSimulator;
  let url: string;
  let initialCommit: string;

  async function startArgo(options: { syncDelayMs?: number; healthyDelayMs?: number; pollIntervalMs?: number } = {}): Promise<void> {
    argo = new ArgoCdSimulator({
      chartsRepoPath: charts.bareDir,
      token: TOKEN,
      applications: [
        { name, app: 'whitehall', environment: 'integration' },
        { name: 'publisher-integration', app: 'publisher', environment: 'integration' },
      ],
      syncDelayMs: options.syncDelayMs ?? 100,
      healthyDelayMs: options.healthyDelayMs ?? 100,
      pollIntervalMs: options.pollIntervalMs ?? 0,
    });
    ({ url } = await argo.start());
  }

  const getApp = async (query = '', appName = name): Promise<ApplicationJson> => {
    const response = await call(`${url}/api/v1/applications/${appName}${query}`, { token: TOKEN });
    expect(response.status).toBe(200);
    return response.body as ApplicationJson;
  };
  const summary = (app: ApplicationJson) => ({
    sync: app.status.sync.status,
    revision: app.status.sync.revision,
    health: app.status.health.status,
    phase: app.status.operationState?.phase,
  });

  beforeEach(async () => {
    charts = await createLocalChartsRepo({
      files: {
        [tagFile]: 'image_tag: v1\npromote_deployment: true\nautomatic_deploys_enabled: true\n',
        'charts/app-config/image-tags/integration/publisher': 'image_tag: p1\n',
      },
    });
    initialCommit = await charts.tip();
  });
  afterEach(async () => {
    await argo?.close();
    await charts.remove();
  });

  it('starts Synced and Healthy at the charts tip with a realistic Application', async () => {
    await startArgo();
    const app = await getApp();
    expect(summary(app)).toEqual({ sync: 'Synced', revision: initialCommit, health: 'Healthy', phase: 'Succeeded' });
    expect(app.metadata).toMatchObject({ name, namespace: 'argocd' });
    expect(app.spec).toMatchObject({ source: { targetRevision: 'main' } });
    expect(app.status.operationState?.syncResult.revision).toBe(initialCommit);
    expect(app.status.summary.images).toEqual(['whitehall:v1']);
    expect(argo.currentTag('whitehall', 'integration')).toBe('v1');
  });

  it('does not notice a new commit without a refresh', async () => {
    await startArgo({ syncDelayMs: 10, healthyDelayMs: 10 });
    await charts.writeImageTag('whitehall', 'integration', 'v2');
    await sleep(150);
    expect(summary(await getApp())).toEqual({ sync: 'Synced', revision: initialCommit, health: 'Healthy', phase: 'Succeeded' });
    expect(argo.currentTag('whitehall', 'integration')).toBe('v1');
    expect(argo.syncHistory).toHaveLength(0);
  });

  it('on refresh syncs the new tag: OutOfSync/Running, then Synced at the commit and Progressing, then Healthy', async () => {
    await startArgo({ syncDelayMs: 150, healthyDelayMs: 400 });
    const commit = await charts.writeImageTag('whitehall', 'integration', 'v2', { promote_deployment: true });

    const refreshed = await getApp('?refresh=normal');
    expect(summary(refreshed)).toEqual({ sync: 'OutOfSync', revision: commit, health: 'Healthy', phase: 'Running' });
    expect(argo.currentTag('whitehall', 'integration')).toBe('v1');

    const synced = await waitFor(getApp, (app) => app.status.sync.status === 'Synced');
    expect(summary(synced)).toEqual({ sync: 'Synced', revision: commit, health: 'Progressing', phase: 'Succeeded' });
    expect(synced.status.operationState?.syncResult.revision).toBe(commit);
    expect(argo.currentTag('whitehall', 'integration')).toBe('v2');

    const healthy = await waitFor(getApp, (app) => app.status.health.status !== 'Progressing');
    expect(summary(healthy)).toEqual({ sync: 'Synced', revision: commit, health: 'Healthy', phase: 'Succeeded' });
    expect(healthy.status.summary.images).toEqual(['whitehall:v2']);
    expect(argo.syncHistory).toEqual([expect.objectContaining({ name, revision: commit, tag: 'v2', phase: 'Succeeded', health: 'Healthy' })]);
    const record = argo.syncHistory[0];
    expect(record.finishedAt!.getTime()).toBeGreaterThanOrEqual(record.startedAt.getTime() + 100);
  });

  it('moves an app whose tag did not change to the new revision at once', async () => {
    await startArgo({ syncDelayMs: 2000, healthyDelayMs: 2000 });
    const commit = await charts.writeImageTag('publisher', 'integration', 'p2');
    const whitehall = await getApp('?refresh=hard');
    expect(summary(whitehall)).toEqual({ sync: 'Synced', revision: commit, health: 'Healthy', phase: 'Succeeded' });
    expect(whitehall.status.operationState?.syncResult.revision).toBe(initialCommit);
    expect(summary(await getApp('', 'publisher-integration'))).toMatchObject({ sync: 'OutOfSync', phase: 'Running' });
    expect(argo.syncHistory.map((r) => r.name)).toEqual(['publisher-integration']);
  });

  it('degrades the next rollout with the given message, and the one after is healthy again', async () => {
    await startArgo({ syncDelayMs: 10, healthyDelayMs: 10 });
    argo.degrade(name, 'Deployment "whitehall" exceeded its progress deadline');
    await charts.writeImageTag('whitehall', 'integration', 'v2');
    await getApp('?refresh=normal');
    const degraded = await waitFor(getApp, (app) => app.status.health.status !== 'Healthy' && app.status.health.status !== 'Progressing');
    expect(degraded.status.health).toEqual({ status: 'Degraded', message: 'Deployment "whitehall" exceeded its progress deadline' });
    expect(degraded.status.sync.status).toBe('Synced');

    await charts.writeImageTag('whitehall', 'integration', 'v1');
    await getApp('?refresh=normal');
    const healthy = await waitFor(getApp, (app) => app.status.health.status === 'Healthy');
    expect(healthy.status.summary.images).toEqual(['whitehall:v1']);
  });

  it('fails the next sync: phase Failed with the message, OutOfSync, old tag still running', async () => {
    await startArgo({ syncDelayMs: 10, healthyDelayMs: 10 });
    argo.failNextSync(name, 'one or more objects failed to apply: admission webhook denied the request');
    const commit = await charts.writeImageTag('whitehall', 'integration', 'v2');
    await getApp('?refresh=normal');
    const failed = await waitFor(getApp, (app) => app.status.operationState?.phase !== 'Running');
    expect(summary(failed)).toEqual({ sync: 'OutOfSync', revision: commit, health: 'Healthy', phase: 'Failed' });
    expect(failed.status.operationState?.message).toContain('admission webhook denied');
    expect(argo.currentTag('whitehall', 'integration')).toBe('v1');
  });

  it('keeps answering a stale status for the given time', async () => {
    await startArgo({ syncDelayMs: 10, healthyDelayMs: 10 });
    const commit = await charts.writeImageTag('whitehall', 'integration', 'v2');
    argo.reportStaleFor(name, 1000);
    expect(summary(await getApp('?refresh=normal'))).toEqual({ sync: 'Synced', revision: initialCommit, health: 'Healthy', phase: 'Succeeded' });
    await sleep(100);
    expect(summary(await getApp())).toEqual({ sync: 'Synced', revision: initialCommit, health: 'Healthy', phase: 'Succeeded' });
    expect(argo.currentTag('whitehall', 'integration')).toBe('v2');
    const fresh = await waitFor(getApp, (app) => app.status.sync.revision === commit, 3000);
    expect(summary(fresh)).toEqual({ sync: 'Synced', revision: commit, health: 'Healthy', phase: 'Succeeded' });
  });

  it('notices new commits on its own when polling', async () => {
    await startArgo({ syncDelayMs: 10, healthyDelayMs: 10, pollIntervalMs: 50 });
    const changes: string[] = [];
    argo.onChange((appName, app) => changes.push(`${appName}:${app.status.sync.status}:${app.status.health.status}`));
    const commit = await charts.writeImageTag('whitehall', 'integration', 'v3');
    const healthy = await waitFor(getApp, (app) => app.status.sync.status === 'Synced' && app.status.sync.revision === commit && app.status.health.status === 'Healthy');
    expect(healthy.status.summary.images).toEqual(['whitehall:v3']);
    expect(changes).toEqual(expect.arrayContaining([`${name}:OutOfSync:Healthy`, `${name}:Synced:Progressing`, `${name}:Synced:Healthy`]));
  });

  it('answers 401 without the token and 404 for unknown applications, in Argo CD error shape', async () => {
    await startArgo();
    const unauthorized = await call(`${url}/api/v1/applications/${name}`, { token: 'nope' });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.body).toMatchObject({ code: 16, error: expect.stringContaining('invalid session') });
    const missing = await call(`${url}/api/v1/applications/ghost`, { token: TOKEN });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: 'applications.argoproj.io "ghost" not found', code: 5, message: 'applications.argoproj.io "ghost" not found' });
  });
});

describe('ReleaseAppSimulator', () => {
  let release: ReleaseAppSimulator;
  let url: string;
  const post = (body: unknown, headers: Record<string, string> = {}, token = TOKEN) =>
    call(`${url}/deployments`, { method: 'POST', token, headers, body: JSON.stringify(body) });

  beforeEach(async () => {
    release = new ReleaseAppSimulator({ token: TOKEN });
    ({ url } = await release.start());
  });
  afterEach(() => release.close());

  it('records deployments, honours Idempotency-Key and rejects bad requests', async () => {
    const body = { repo: 'alphagov/whitehall', deployment: { environment: 'staging', version: 'v7' } };
    expect((await post(body, {}, 'wrong')).status).toBe(401);
    const first = await post(body, { 'idempotency-key': 'k1' });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ repo: 'alphagov/whitehall', environment: 'staging', version: 'v7' });
    const repeat = await post(body, { 'idempotency-key': 'k1' });
    expect(repeat.status).toBe(200);
    expect(repeat.body.id).toBe(first.body.id);
    expect((await post({ ...body, deployment: { ...body.deployment, version: 'v8' } }, { 'idempotency-key': 'k1' })).status).toBe(422);
    const bad = await post({ repo: 'whitehall', deployment: { environment: 'staging', version: 'v7' } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/repo/);
    expect((await post({ repo: 'alphagov/whitehall' })).status).toBe(400);
    expect(release.deployments).toHaveLength(1);
    expect((await call(`${url}/deployments`, { token: TOKEN })).body).toHaveLength(1);
  });

  it('shows the latest version per repo and environment on an escaped HTML page', async () => {
    await post({ repo: 'alphagov/whitehall', deployment: { environment: 'staging', version: 'v1' } });
    await post({ repo: 'alphagov/whitehall', deployment: { environment: 'staging', version: 'v2' } });
    await post({ repo: 'alphagov/whitehall', deployment: { environment: 'production', version: '<script>x</script>' } });
    const page = await call(`${url}/`);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.text).toContain('alphagov/whitehall');
    expect(page.text).toContain('>v2<');
    expect(page.text).not.toContain('>v1<');
    expect(page.text).not.toContain('<script>');
    expect(page.text).toContain('&#60;script&#62;');
    expect(release.latest('alphagov/whitehall', 'staging')?.version).toBe('v2');
  });
});

describe('AppEndpointsSimulator', () => {
  it('serves the deployed version and fails on demand', async () => {
    const versions: Record<string, string> = { 'whitehall/staging': 'v5' };
    const endpoints = new AppEndpointsSimulator({ versionOf: (app, environment) => versions[`${app}/${environment}`] });
    const { url } = await endpoints.start();
    try {
      expect((await call(`${url}/whitehall/staging/healthcheck`)).body).toEqual({ status: 'ok', app: 'whitehall', environment: 'staging', version: 'v5' });
      versions['whitehall/staging'] = 'v6';
      expect((await call(endpoints.healthcheckUrl('whitehall', 'staging'))).body.version).toBe('v6');
      expect((await call(`${url}/whitehall/production/healthcheck`)).status).toBe(404);

      endpoints.failChecks('whitehall', 'staging', { status: 502, body: 'bad gateway' });
      const failing = await call(`${url}/whitehall/staging/healthcheck`);
      expect(failing.status).toBe(502);
      expect(failing.text).toBe('bad gateway');
      endpoints.restore('whitehall', 'staging');
      expect((await call(`${url}/whitehall/staging/healthcheck`)).status).toBe(200);
      expect(endpoints.requests.map((r) => r.status)).toEqual([200, 200, 404, 502, 200]);
    } finally {
      await endpoints.close();
    }
  });
});
