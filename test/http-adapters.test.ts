import { PermanentHttpError, RefNotFoundError, TransientHttpError } from '../common/errors';
import { createArgoCdClient } from '../adapters/argocd';
import { createGitHubSourceHost } from '../adapters/github';

import { createReleaseAppClient } from '../adapters/release-app';
import { createHttpSmokeTester } from '../adapters/smoke-http';
import { type SmokeCheck } from '../common/ports';
import { AppEndpointsSimulator } from '../simulators/app-endpoints';
import { ArgoCdSimulator } from '../simulators/argocd';
import { createLocalChartsRepo, type LocalChartsRepo } from '../simulators/charts-repo';
import { GitHubSimulator } from '../simulators/github';
import { ReleaseAppSimulator } from '../simulators/release-app';
import { closedPort, errorFrom } from './support/env';

const TOKEN = 'ghp_simulatedToken1234567890';
const WRONG_TOKEN = 'ghp_wrongToken0987654321';

function expectTransient(err: Error, pattern: RegExp): void {
  expect(err).not.toBeInstanceOf(PermanentHttpError);
  expect(err).toBeInstanceOf(TransientHttpError);
  expect(err.message).toMatch(pattern);
}

describe('GitHub adapter against the GitHub simulator', () => {
  const repo = 'alphagov/whitehall';
  let github: GitHubSimulator;
  let url: string;
  let host: ReturnType<typeof createGitHubSourceHost>;

  beforeEach(async () => {
    github = new GitHubSimulator({ token: TOKEN });
    github.addRepo(repo);
    ({ url } = await github.start());
    host = createGitHubSourceHost({ token: TOKEN, baseUrl: url });
  });
  afterEach(() => github.close());

  it('resolves branches, tags and short SHAs to full SHAs', async () => {
    const first = github.addCommit(repo);
    const second = github.addCommit(repo);
    github.addTag(repo, 'v3231', first);
    github.addCommit(repo, { branch: 'feature/login' });

    await expect(host.resolveRef(repo, 'main')).resolves.toBe(second);
    await expect(host.resolveRef(repo, 'v3231')).resolves.toBe(first);
    await expect(host.resolveRef(repo, first.slice(0, 8))).resolves.toBe(first);
    await expect(host.resolveRef(repo, second)).resolves.toBe(second);
    await expect(host.resolveRef(repo, 'feature/login')).resolves.toBe(github.branchTip(repo, 'feature/login'));
    expect(github.requests.at(-1)?.headers['user-agent']).toContain('durable-deploy-pipelines');
  });

  it('throws RefNotFoundError for refs GitHub does not know (404 and 422)', async () => {
    github.addCommit(repo);
    await expect(host.resolveRef(repo, 'f'.repeat(40))).rejects.toBeInstanceOf(RefNotFoundError);
    await expect(host.resolveRef(repo, 'no-such-branch')).rejects.toBeInstanceOf(RefNotFoundError);
    expect(github.requests.map((r) => r.status)).toEqual([404, 422]);
  });

  it('maps a bad token to PermanentHttpError without the token in the message', async () => {
    github.addCommit(repo);
    const badHost = createGitHubSourceHost({ token: WRONG_TOKEN, baseUrl: url });
    for (const call of [() => badHost.resolveRef(repo, 'main'), () => badHost.listWorkflowRuns(repo, 'build.yml'), () => badHost.compareCommits(repo, 'main', 'main')]) {
      const err = await errorFrom(call);
      expect(err).toBeInstanceOf(PermanentHttpError);
      expect((err as PermanentHttpError).status).toBe(401);
      expect(err.message).toContain('Bad credentials');
      expect(err.message).not.toContain(WRONG_TOKEN);
      expect(JSON.stringify(err)).not.toContain(WRONG_TOKEN);
    }
    expect(github.requests).toHaveLength(3);
  });

  it('treats 5xx, 429, exhausted and secondary rate limits as retryable, other 403s as permanent', async () => {
    github.addCommit(repo);
    github.injectFault({ pathPattern: '/commits/', status: 503 });
    expectTransient(await errorFrom(() => host.resolveRef(repo, 'main')), /returned 503/);

    github.injectFault({ status: 502, body: '<html>Bad gateway</html>', headers: { 'content-type': 'text/html' } });
    expectTransient(await errorFrom(() => host.listWorkflowRuns(repo, 'build.yml')), /returned 502/);

    const reset = Math.floor(Date.now() / 1000) + 120;
    github.injectFault({
      status: 403,
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset), 'x-ratelimit-limit': '5000' },
      body: { message: 'API rate limit exceeded for installation ID 1.' },
    });
    const limited = await errorFrom(() => host.compareCommits(repo, 'main', 'main'));
    expectTransient(limited, /403.*rate limit/i);
    expect((limited as TransientHttpError).retryAfterMs).toBeGreaterThan(100_000);

    github.injectFault({ status: 429, headers: { 'retry-after': '7' }, body: { message: 'Too many requests' } });
    const tooMany = await errorFrom(() => host.resolveRef(repo, 'main'));
    expectTransient(tooMany, /429/);
    expect((tooMany as TransientHttpError).retryAfterMs).toBe(7000);

    // A secondary rate limit: requests remain, and only the body says why; a minute's pause unless told otherwise.
    const secondary = {
      message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
      documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
    };
    github.injectFault({ status: 403, headers: { 'x-ratelimit-remaining': '4990', 'x-ratelimit-limit': '5000' }, body: secondary });
    const crowded = await errorFrom(() => host.listWorkflowRuns(repo, 'build.yml'));
    expectTransient(crowded, /403: You have exceeded a secondary rate limit.* \(secondary rate limit; retry in 60 s\)$/);
    expect((crowded as TransientHttpError).retryAfterMs).toBe(60_000);
    const secondaryReset = Math.floor(Date.now() / 1000) + 300;
    github.injectFault({ status: 403, headers: { 'x-ratelimit-remaining': '4990', 'x-ratelimit-reset': String(secondaryReset) }, body: secondary });
    expect((await errorFrom(() => host.compareCommits(repo, 'main', 'main')) as TransientHttpError).retryAfterMs).toBeGreaterThan(280_000);
    github.injectFault({ status: 429, headers: { 'retry-after': '30' }, body: secondary });
    expect((await errorFrom(() => host.resolveRef(repo, 'main')) as TransientHttpError).retryAfterMs).toBe(30_000);

    github.injectFault({ status: 403, body: { message: 'Resource not accessible by integration' } });
    const forbidden = await errorFrom(() => host.dispatchWorkflow(repo, 'build.yml', 'main', {}));
    expect(forbidden).toBeInstanceOf(PermanentHttpError);
    expect(forbidden.message).toContain('Resource not accessible by integration');

    await expect(host.resolveRef(repo, 'main')).resolves.toBe(github.branchTip(repo));
  });

  it('treats dropped connections and timeouts as retryable', async () => {
    github.addCommit(repo);
    github.injectFault({ dropConnection: true });
    expectTransient(await errorFrom(() => host.resolveRef(repo, 'main')), /GitHub GET .* failed: connection/);

    const impatient = createGitHubSourceHost({ token: TOKEN, baseUrl: url, timeoutMs: 200 });
    github.injectFault({ delayMs: 1000 });
    expectTransient(await errorFrom(() => impatient.resolveRef(repo, 'main')), /timed out after 200 ms/);

    const nowhere = createGitHubSourceHost({ token: TOKEN, baseUrl: `http://127.0.0.1:${await closedPort()}` });
    expectTransient(await errorFrom(() => nowhere.resolveRef(repo, 'main')), /connection refused/);
  });

  it('finds the newest matching tag for a commit across pages', async () => {
    const target = github.addCommit(repo);
    const other = github.addCommit(repo);
    github.addTag(repo, 'release-candidate', target);
    github.addTag(repo, 'v100', target);
    github.addTag(repo, 'v101', target);
    for (let i = 0; i < 150; i += 1) github.addTag(repo, `v${1000 + i}`, other);

    await expect(host.findTagForCommit(repo, target, /^v\d+$/g)).resolves.toBe('v101');
    await expect(host.findTagForCommit(repo, target, /^rc-/)).resolves.toBeUndefined();
    await expect(host.findTagForCommit(repo, other, /^v\d+$/)).resolves.toBe('v1149');
    const tagPages = github.requests.filter((r) => r.path.endsWith('/tags'));
    expect(tagPages.map((r) => new URLSearchParams(r.url.split('?')[1]).get('page') ?? '1')).toEqual(['1', '2', '1', '2', '1']);
  });

  it('dispatches the build workflow and lists its runs', async () => {
    github.addCommit(repo);
    let release: () => void = () => undefined;
    const built = new Promise<void>((resolve) => (release = resolve));
    github.onDispatch(() => built);

    await host.dispatchWorkflow(repo, 'build-image.yml', 'main', { gitRef: 'v3231' });
    expect(github.dispatches).toMatchObject([{ repo, workflowFile: 'build-image.yml', ref: 'main', inputs: { gitRef: 'v3231' } }]);

    const running = await host.listWorkflowRuns(repo, 'build-image.yml');
    expect(running).toHaveLength(1);
    expect(running[0]).toMatchObject({ displayTitle: 'Build image v3231', conclusion: null });
    expect(running[0].status).not.toBe('completed');
    expect(running[0].htmlUrl).toContain(`/${repo}/actions/runs/${running[0].id}`);

    release();
    await github.settled();
    const done = await host.listWorkflowRuns(repo, 'build-image.yml');
    expect(done).toEqual([expect.objectContaining({ id: running[0].id, status: 'completed', conclusion: 'success' })]);
    await expect(host.listWorkflowRuns(repo, 'other.yml')).resolves.toEqual([]);
  });

  it('refuses to dispatch at a SHA (GitHub wants a branch or tag) with a permanent error', async () => {
    const sha = github.addCommit(repo);
    const err = await errorFrom(() => host.dispatchWorkflow(repo, 'build-image.yml', sha, { gitRef: sha }));
    expect(err).toBeInstanceOf(PermanentHttpError);
    expect((err as PermanentHttpError).status).toBe(422);
    expect(err.message).toContain('No ref found');
    expect(github.runs).toHaveLength(0);
  });

  it('compares commits', async () => {
    const a = github.addCommit(repo);
    const b = github.addCommit(repo);
    const side = github.addCommit(repo, { parents: [a], branch: 'hotfix/x' });
    await expect(host.compareCommits(repo, a, b)).resolves.toBe('ahead');
    await expect(host.compareCommits(repo, b, a)).resolves.toBe('behind');
    await expect(host.compareCommits(repo, b, b)).resolves.toBe('identical');
    await expect(host.compareCommits(repo, 'main', 'hotfix/x')).resolves.toBe('diverged');
    await expect(host.compareCommits(repo, side, 'main')).resolves.toBe('diverged');
    const missing = await errorFrom(() => host.compareCommits(repo, a, 'f'.repeat(40)));
    expect(missing).toBeInstanceOf(PermanentHttpError);
    expect((missing as PermanentHttpError).status).toBe(404);
  });

  it('rejects malformed repository names before any request', async () => {
    await expect(host.resolveRef('../etc/passwd', 'main')).rejects.toThrow(/repository/);
    expect(github.requests).toHaveLength(0);
  });
});

describe('Argo CD adapter against the Argo CD simulator', () => {
  const name = 'whitehall-staging';
  let charts: LocalChartsRepo;
  let argo: ArgoCdSimulator;
  let url: string;
  let initial: string;

  beforeEach(async () => {
    charts = await createLocalChartsRepo({ files: { 'charts/app-config/image-tags/staging/whitehall': 'image_tag: v1\nautomatic_deploys_enabled: true\n' } });
    initial = await charts.tip();
    argo = new ArgoCdSimulator({
      chartsRepoPath: charts.bareDir,
      token: TOKEN,
      applications: [{ name, app: 'whitehall', environment: 'staging' }],
      syncDelayMs: 50,
      healthyDelayMs: 50,
    });
    ({ url } = await argo.start());
  });
  afterEach(async () => {
    await argo.close();
    await charts.remove();
  });

  it('maps the Application and asks for a refresh when told to', async () => {
    const client = createArgoCdClient({ url, token: TOKEN });
    await expect(client.getApplication(name)).resolves.toEqual({
      name,
      syncStatus: 'Synced',
      syncRevision: initial,
      healthStatus: 'Healthy',
      operationPhase: 'Succeeded',
      operationMessage: 'successfully synced (all tasks run)',
      operationRevision: initial,
      // status.summary.images: what the cluster runs, which the sync wait checks for our tag.
      images: ['whitehall:v1'],
    });

    const commit = await charts.writeImageTag('whitehall', 'staging', 'v2');
    await expect(client.getApplication(name)).resolves.toMatchObject({ syncRevision: initial });
    const refreshed = await client.getApplication(name, 'normal');
    expect(refreshed).toMatchObject({ syncStatus: 'OutOfSync', syncRevision: commit, operationPhase: 'Running', operationRevision: commit });
    expect(argo.requests.at(-1)?.url).toBe(`/api/v1/applications/${name}?refresh=normal`);
    expect(argo.requests.at(-1)?.headers).not.toHaveProperty('authorization');

    argo.degrade(name, 'Back-off restarting failed container');
    let status = refreshed;
    for (let i = 0; i < 100 && status.healthStatus !== 'Degraded'; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      status = await client.getApplication(name);
    }
    expect(status).toEqual({
      name,
      syncStatus: 'Synced',
      syncRevision: commit,
      healthStatus: 'Degraded',
      healthMessage: 'Back-off restarting failed container',
      operationPhase: 'Succeeded',
      operationMessage: 'successfully synced (all tasks run)',
      operationRevision: commit,
      images: ['whitehall:v2'],
    });
  });

  it('maps 404 and a bad token to PermanentHttpError, without the token in the message', async () => {
    const client = createArgoCdClient({ url, token: TOKEN });
    const missing = await errorFrom(() => client.getApplication('ghost'));
    expect(missing).toBeInstanceOf(PermanentHttpError);
    expect((missing as PermanentHttpError).status).toBe(404);
    expect(missing.message).toContain('applications.argoproj.io "ghost" not found');

    const intruder = createArgoCdClient({ url, token: WRONG_TOKEN });
    const denied = await errorFrom(() => intruder.getApplication(name, 'normal'));
    expect(denied).toBeInstanceOf(PermanentHttpError);
    expect((denied as PermanentHttpError).status).toBe(401);
    expect(denied.message).toContain('invalid session');
    expect(denied.message).not.toContain(WRONG_TOKEN);
  });

  it('maps 5xx, dropped connections, refused connections and timeouts to retryable errors', async () => {
    const client = createArgoCdClient({ url, token: TOKEN, timeoutMs: 200 });
    argo.injectFault({ status: 503, body: { error: 'connection to repo server lost', code: 14, message: 'connection to repo server lost' } });
    const unavailable = await errorFrom(() => client.getApplication(name));
    expectTransient(unavailable, /returned 503: connection to repo server lost/);
    expect((unavailable as TransientHttpError).status).toBe(503);

    argo.injectFault({ dropConnection: true });
    expectTransient(await errorFrom(() => client.getApplication(name)), /failed: connection/);

    argo.injectFault({ delayMs: 1000 });
    expectTransient(await errorFrom(() => client.getApplication(name, 'normal')), /timed out after 200 ms/);

    const nowhere = createArgoCdClient({ url: `http://127.0.0.1:${await closedPort()}`, token: TOKEN });
    expectTransient(await errorFrom(() => nowhere.getApplication(name)), /connection refused/);

    await expect(client.getApplication(name)).resolves.toMatchObject({ syncStatus: 'Synced' });
  });

  it('rejects an application name that is not a Kubernetes name', async () => {
    const client = createArgoCdClient({ url, token: TOKEN });
    await expect(client.getApplication('../secrets')).rejects.toThrow(/invalid Argo CD application name/);
    expect(argo.requests).toHaveLength(0);
  });
});

describe('Release app adapter against the Release app simulator', () => {
  let release: ReleaseAppSimulator;
  let url: string;
  const deployment = { repo: 'alphagov/whitehall', environment: 'production', version: 'v3231' };

  beforeEach(async () => {
    release = new ReleaseAppSimulator({ token: TOKEN });
    ({ url } = await release.start());
  });
  afterEach(() => release.close());

  it('records a deployment once, even when retried with the same key', async () => {
    const client = createReleaseAppClient({ url, token: TOKEN });
    await client.recordDeployment(deployment, 'deploy-whitehall-abc/production');
    await client.recordDeployment(deployment, 'deploy-whitehall-abc/production');
    expect(release.deployments).toEqual([expect.objectContaining({ ...deployment, idempotencyKey: 'deploy-whitehall-abc/production' })]);
    expect(release.requests.map((r) => r.status)).toEqual([201, 200]);
    expect(release.requests[0].body).toEqual({ repo: 'alphagov/whitehall', deployment: { environment: 'production', version: 'v3231' } });
  });

  it('maps 4xx to PermanentHttpError with the app message and no token', async () => {
    const intruder = createReleaseAppClient({ url, token: WRONG_TOKEN });
    const denied = await errorFrom(() => intruder.recordDeployment(deployment, 'k1'));
    expect(denied).toBeInstanceOf(PermanentHttpError);
    expect((denied as PermanentHttpError).status).toBe(401);
    expect(denied.message).not.toContain(WRONG_TOKEN);

    const client = createReleaseAppClient({ url, token: TOKEN });
    release.injectFault({ method: 'POST', status: 400, body: { message: 'deployment.version must be a non-empty string' } });
    const rejected = await errorFrom(() => client.recordDeployment(deployment, 'k2'));
    expect(rejected).toBeInstanceOf(PermanentHttpError);
    expect(rejected.message).toContain('deployment.version must be a non-empty string');
    expect(release.deployments).toHaveLength(0);
  });

  it('maps 5xx, 408, 429 and timeouts to retryable errors, and a retry then records once', async () => {
    const client = createReleaseAppClient({ url, token: TOKEN, timeoutMs: 200 });
    for (const status of [500, 502, 503, 408, 429]) {
      release.injectFault({ status });
      const err = await errorFrom(() => client.recordDeployment(deployment, 'k'));
      expectTransient(err, new RegExp(`returned ${status}`));
    }
    release.injectFault({ delayMs: 1000 });
    expectTransient(await errorFrom(() => client.recordDeployment(deployment, 'k')), /timed out after 200 ms/);
    await client.recordDeployment(deployment, 'k');
    expect(release.deployments).toHaveLength(1);
  });
});

describe('HTTP smoke tester against the app endpoints simulator', () => {
  let endpoints: AppEndpointsSimulator;
  const tester = createHttpSmokeTester();
  const check = (overrides: Partial<SmokeCheck> = {}): SmokeCheck => ({
    url: endpoints.healthcheckUrl('whitehall', 'staging'),
    expectStatus: 200,
    expectBodyContains: '"status":"ok"',
    timeoutMs: 1000,
    ...overrides,
  });

  beforeEach(async () => {
    endpoints = new AppEndpointsSimulator({ versionOf: () => 'v3231' });
    await endpoints.start();
  });
  afterEach(() => endpoints.close());

  it('passes when the status matches and the body contains the text', async () => {
    const outcome = await tester.run(check({ expectBodyContains: '"version":"v3231"' }));
    expect(outcome.ok).toBe(true);
    expect(outcome.detail).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/whitehall\/staging\/healthcheck returned 200 containing/);
  });

  it('says which status came back instead of the expected one', async () => {
    endpoints.failChecks('whitehall', 'staging', { status: 500, body: { status: 'error' } });
    const outcome = await tester.run(check());
    expect(outcome).toMatchObject({ ok: false });
    expect(outcome.detail).toContain(`GET ${endpoints.healthcheckUrl('whitehall', 'staging')} returned 500, expected 200`);
  });

  it('says which text the body lacked', async () => {
    const outcome = await tester.run(check({ expectBodyContains: 'v9999' }));
    expect(outcome.ok).toBe(false);
    expect(outcome.detail).toContain('body did not contain "v9999"');
  });

  it('quotes what the app said trimmed, on one line, with Slack mentions, links and code marks taken apart', async () => {
    const page = `<!channel> <@U024BE7LH> we are down\n\u0007 see <https://evil.example|status> \`rm -rf\` @here ${'x'.repeat(400)}`;
    endpoints.failChecks('whitehall', 'staging', { status: 503, body: page });
    const outcome = await tester.run(check());
    const quoted = outcome.detail.split('; body: ')[1]!;
    expect(quoted.startsWith("‹!channel› ‹@U024BE7LH› we are down see ‹https://evil.example|status› 'rm -rf' ＠here xxx")).toBe(true);
    expect(quoted).toHaveLength(201);
    expect(quoted.endsWith('…')).toBe(true);
    expect([...quoted].filter((char) => '<>`'.includes(char) || char.charCodeAt(0) < 0x20)).toEqual([]);
  });

  it('reports a timeout with the limit', async () => {
    endpoints.failChecks('whitehall', 'staging', { status: 200, delayMs: 1000 });
    const started = Date.now();
    const outcome = await tester.run(check({ timeoutMs: 150 }));
    expect(Date.now() - started).toBeLessThan(900);
    expect(outcome).toMatchObject({ ok: false, detail: `GET ${endpoints.healthcheckUrl('whitehall', 'staging')} timed out after 150 ms` });
  });

  it('reports a refused connection and an invalid URL without throwing', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/healthcheck`;
    const refused = await tester.run(check({ url }));
    expect(refused.ok).toBe(false);
    expect(refused.detail).toMatch(new RegExp(`^GET ${url.replace(/[.?]/g, '\\$&')} failed: connection refused`));
    const invalid = await tester.run(check({ url: 'not a url' }));
    expect(invalid).toMatchObject({ ok: false, detail: expect.stringContaining('not a valid URL') });
  });
});
