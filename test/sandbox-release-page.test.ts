/**
 * The release app's page, as the sandbox runs it: versions from the recorded `POST /deployments` calls
 * (kept across restarts), pipelines awaiting approval from whoever it is told to ask (Temporal, in the
 * sandbox), never from bookkeeping of its own.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReleaseAppClient } from '../adapters/release-app';
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
