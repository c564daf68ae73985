/**
 * The release app's page, as the sandbox runs it: versions from the recorded `POST /deployments` calls
 * (kept across restarts), pipelines awaiting approval from whoever it is told to ask (Temporal, in the
 * sandbox), never from bookkeeping of its own.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReleaseAppClient } from '../adapters/release-app';
import { GitHubSimulator } from '../simulators/github';
import { ReleaseAppSimulator, type PendingApproval, type ReleaseAppSimulatorOptions, type ReleaseApplication } from '../simulators/release-app';

const TOKEN = 'release-token';
const SHA = 'a'.repeat(7) + '1'.repeat(33);
const APPLICATIONS: ReleaseApplication[] = [
  {
    name: 'whitehall',
    repo: 'alphagov/whitehall',
    environments: ['integration', 'staging', 'production'].map((name) => ({ name, continuousDeployment: true })),
  },
  {
    name: 'content-publisher',
    repo: 'alphagov/content-publisher',
    environments: [
      { name: 'integration', continuousDeployment: true },
      { name: 'staging', continuousDeployment: false },
      { name: 'production', continuousDeployment: false },
    ],
  },
];

/** The table cell of an app's row for an environment, as text without tags. */
function cell(html: string, app: string, environment: string): string {
  const row = new RegExp(`<tr data-app="${app}">(.*?)</tr>`).exec(html)?.[1] ?? '';
  const content = new RegExp(`<td data-environment="${environment}">(.*?)</td>`).exec(row)?.[1];
  if (content === undefined) throw new Error(`no cell for ${app} ${environment} in:\n${html}`);
  return content.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
}

describe('the release app page', () => {
  let dir: string;
  const running: ReleaseAppSimulator[] = [];

  async function start(options: Partial<ReleaseAppSimulatorOptions> = {}): Promise<{ release: ReleaseAppSimulator; page: () => Promise<string> }> {
    const release = new ReleaseAppSimulator({ token: TOKEN, storeFile: join(dir, 'release.jsonl'), applications: APPLICATIONS, ...options });
    const { url } = await release.start();
    running.push(release);
    return {
      release,
      page: async () => {
        const res = await fetch(`${url}/`);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toContain('text/html');
        return res.text();
      },
    };
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'release-page-'));
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((release) => release.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('lists per app the version each environment runs, from the recorded deployments', async () => {
    const { release, page } = await start();
    const client = createReleaseAppClient({ url: release.url, token: TOKEN });
    await client.recordDeployment({ repo: 'alphagov/whitehall', environment: 'integration', version: 'v1' }, 'p1/integration');
    await client.recordDeployment({ repo: 'alphagov/whitehall', environment: 'integration', version: SHA }, 'p2/integration');
    await client.recordDeployment({ repo: 'alphagov/content-publisher', environment: 'staging', version: 'v9' }, 'p3/staging');

    const html = await page();
    expect(cell(html, 'whitehall', 'integration')).toMatch(/^aaaaaaa \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    expect(html).toContain(`title="${SHA}"`);
    expect(cell(html, 'whitehall', 'staging')).toBe('–');
    expect(cell(html, 'content-publisher', 'staging')).toMatch(/^v9 /);
    expect(cell(html, 'content-publisher', 'integration')).toBe('–');
    expect(html).toContain('Continuous deployment');
    expect(html).toContain('Needs approval for staging and production');
    // Nobody was asked about approvals, so the page does not pretend to know.
    expect(html).not.toContain('Awaiting approval');
  });

  it('keeps the records, and their idempotency keys, across a restart', async () => {
    const first = await start();
    const client = createReleaseAppClient({ url: first.release.url, token: TOKEN });
    await client.recordDeployment({ repo: 'alphagov/whitehall', environment: 'production', version: 'v3' }, 'p/production');
    await first.release.close();

    const second = await start();
    expect(second.release.deployments.map((d) => [d.id, d.repo, d.environment, d.version])).toEqual([[1, 'alphagov/whitehall', 'production', 'v3']]);
    const again = createReleaseAppClient({ url: second.release.url, token: TOKEN });
    await again.recordDeployment({ repo: 'alphagov/whitehall', environment: 'production', version: 'v3' }, 'p/production');
    await again.recordDeployment({ repo: 'alphagov/whitehall', environment: 'production', version: 'v4' }, 'q/production');
    expect(second.release.deployments.map((d) => [d.id, d.version])).toEqual([
      [1, 'v3'],
      [2, 'v4'],
    ]);
    expect(cell(await second.page(), 'whitehall', 'production')).toMatch(/^v4 /);
    expect((await readFile(join(dir, 'release.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(2);
  });

  it('refuses to start on a damaged store rather than forget deployments', async () => {
    await writeFile(join(dir, 'release.jsonl'), '{"id":1,"repo":"alphagov/whitehall"\n');
    const release = new ReleaseAppSimulator({ token: TOKEN, storeFile: join(dir, 'release.jsonl') });
    await expect(release.start()).rejects.toThrow(/release\.jsonl line 1 is not a release record/);
  });

  it('lists the pipelines awaiting approval as the source reports them, on every view', async () => {
    let pending: PendingApproval[] = [
      { workflowId: `deploy-content-publisher-${SHA}`, app: 'content-publisher', commit: SHA, environment: 'staging', startedAt: new Date('2026-01-02T03:04:05Z') },
    ];
    const { page } = await start({
      awaitingApproval: async () => pending,
      pipelineUrl: (id) => `http://ui.invalid/namespaces/default/workflows/${id}`,
      deployCommand: 'npm run deploy --',
    });
    let html = await page();
    const row = /<tr data-workflow-id="[^"]+">(.*?)<\/tr>/.exec(html)?.[1]?.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
    expect(row).toBe(
      `content-publisher aaaaaaa staging deploy-content-publisher-${SHA} started 2026-01-02 03:04:05 UTC npm run deploy -- approve deploy-content-publisher-${SHA} --environment staging`,
    );
    expect(html).toContain(`href="http://ui.invalid/namespaces/default/workflows/deploy-content-publisher-${SHA}"`);

    pending = [];
    html = await page();
    expect(html).toContain('No pipeline is waiting for approval.');
    expect(html).not.toContain('data-workflow-id');
  });

  describe('with GitHub to ask, as the real Release app asks it', () => {
    const REPO = 'alphagov/content-publisher';
    let github: GitHubSimulator;
    const shas: string[] = [];

    beforeAll(async () => {
      github = new GitHubSimulator({ token: 'gh-token' });
      await github.start();
      github.addRepo(REPO, { defaultBranch: 'main' });
      shas.push(github.addCommit(REPO, { message: 'Initial commit' }));
      shas.push(github.addCommit(REPO, { message: 'Merge pull request #41 from alphagov/fix-typo\n\nFix a typo', authorLogin: 'ada' }));
      shas.push(github.addCommit(REPO, { message: 'Bump a gem', authorLogin: 'dependabot' }));
      shas.push(github.addCommit(REPO, { message: 'Merge pull request #43 from alphagov/new-page\n\nA new page', authorLogin: 'grace' }));
    });
    afterAll(() => github.close());

    const changes = (html: string, environment: string) =>
      (new RegExp(`<div class="changes" data-app="content-publisher" data-environment="${environment}">(.*?)</div>`).exec(html)?.[1] ?? '')
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim();

    it('lists the commits between one environment and the next, newest first, with authors and pull requests', async () => {
      const { release, page } = await start({ github: { apiUrl: github.url, token: 'gh-token' } });
      const client = createReleaseAppClient({ url: release.url, token: TOKEN });
      await client.recordDeployment({ repo: REPO, environment: 'integration', version: shas[3]! }, 'a/integration');
      await client.recordDeployment({ repo: REPO, environment: 'staging', version: shas[1]! }, 'b/staging');
      await client.recordDeployment({ repo: REPO, environment: 'production', version: shas[1]! }, 'c/production');

      const html = await page();
      const short = (i: number) => shas[i]!.slice(0, 7);
      expect(changes(html, 'staging')).toBe(
        `content-publisher: integration → staging 2 commits not yet in staging ${short(3)} Merge pull request #43 from alphagov/new-page by grace #43 ${short(2)} Bump a gem by dependabot`,
      );
      expect(html).toContain(`href="https://github.com/${REPO}/pull/43"`);
      expect(changes(html, 'production')).toBe('content-publisher: staging → production production runs what staging runs.');
      // The page asked GitHub; the pipeline told it nothing more than repo, environment and version.
      expect(github.requests.filter((r) => r.path.includes('/compare/')).map((r) => r.path)).toEqual([`/repos/${REPO}/compare/${shas[1]}...${shas[3]}`]);
      expect(release.deployments.map((d) => Object.keys(d).sort())).toEqual(Array(3).fill(['createdAt', 'environment', 'id', 'idempotencyKey', 'repo', 'version']));
    });

    it('shows, beside each approval it awaits, the commits that approval would ship', async () => {
      const { release, page } = await start({
        github: { apiUrl: () => github.url, token: 'gh-token' },
        awaitingApproval: async () => [
          { workflowId: `deploy-content-publisher-${shas[3]}`, app: 'content-publisher', commit: shas[3], environment: 'staging' },
          { workflowId: `deploy-content-publisher-${shas[1]}`, app: 'content-publisher', commit: shas[1], environment: 'production' },
        ],
      });
      const client = createReleaseAppClient({ url: release.url, token: TOKEN });
      await client.recordDeployment({ repo: REPO, environment: 'staging', version: shas[2]! }, 'b/staging');
      const html = await page();
      const shipping = [...html.matchAll(/<td class="would-ship">(.*?)<\/td>/g)].map((m) => m[1]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim());
      expect(shipping).toEqual([`1 commit would go to staging ${shas[3]!.slice(0, 7)} Merge pull request #43 from alphagov/new-page by grace #43`, 'Nothing recorded in production yet: the first deploy there.']);
      expect(html).toContain('<th scope="col">Would ship</th>');
    });

    it('says when GitHub cannot compare, instead of showing no changes', async () => {
      const { release, page } = await start({ github: { apiUrl: github.url, token: 'wrong' } });
      const client = createReleaseAppClient({ url: release.url, token: TOKEN });
      await client.recordDeployment({ repo: REPO, environment: 'integration', version: shas[3]! }, 'a/integration');
      await client.recordDeployment({ repo: REPO, environment: 'staging', version: shas[1]! }, 'b/staging');
      expect(changes(await page(), 'staging')).toMatch(/^content-publisher: integration → staging Could not compare [0-9a-f]{40}\.\.\.[0-9a-f]{40}: GitHub answered 401/);
    });
  });

  it('shows the delivery metrics per app and environment, as they are read on every view', async () => {
    const { page } = await start({
      deliveryMetrics: async () => [
        {
          app: 'whitehall',
          environment: 'production',
          windowDays: 30,
          deployments: 3,
          failures: 1,
          deploymentsPerDay: 0.1,
          changeFailureRate: 0.25,
          leadTimeSeconds: 3600,
          timeToRestoreSeconds: 5400,
          restores: 1,
          failingSince: '2026-01-02T03:04:05Z',
        },
        { app: 'whitehall', environment: 'staging', windowDays: 30, deployments: 0, failures: 0, deploymentsPerDay: 0, restores: 0 },
      ],
    });
    const html = await page();
    expect(html).toContain('<h2>Delivery metrics (last 30 days)</h2>');
    const row = (environment: string) =>
      (new RegExp(`<tr data-app="whitehall" data-environment="${environment}">(.*?)</tr>`).exec(html)?.[1] ?? '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
    expect(row('production')).toBe('whitehall production 3 0.10 1h 25% (1 of 4) 1h 30m (1 restored) failing since 2026-01-02 03:04:05 UTC');
    expect(row('staging')).toBe('whitehall staging 0 0.00 – – –');
  });

  it('says when it cannot ask, instead of showing an empty list', async () => {
    const { page } = await start({
      awaitingApproval: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:7233');
      },
    });
    const html = await page();
    expect(html).toContain('Could not ask Temporal which pipelines await approval: connect ECONNREFUSED 127.0.0.1:7233');
    expect(html).not.toContain('No pipeline is waiting for approval.');
  });
});
