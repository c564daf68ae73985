/**
 * Temporal Web UI in a real browser (Debian's Chromium, driven by playwright-core), against the sandbox's
 * own dev server: the jest run's shared server has no Web UI. What a person sees: the pipelines awaiting
 * approval, a pipeline's summary, current details and step summaries, approval by the UI's own "Send a
 * Signal" action, and the release app's page. Screenshots go to test-output/web-ui/ (kept out of git).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';
import { listPipelines, pipelineStatus } from '../client/pipelines';
import type { PipelineStatus } from '../common/types';
import { freePort } from '../harness/free-ports';
import { DEFAULT_APPS_FILE, loadSandboxApps, type SandboxPorts } from '../sandbox/options';
import { startSandbox, type Sandbox } from '../sandbox/sandbox';
import { waitFor } from './support/env';
import { workflowBundlePath } from './support/temporal';

const ROOT = resolve(__dirname, '..');
const SCREENSHOTS = join(ROOT, 'test-output', 'web-ui');
const CHROMIUM = '/usr/bin/chromium';
const APPROVER = 'web-ui-approver';

async function freePorts(): Promise<SandboxPorts> {
  const ports: number[] = [];
  while (ports.length < 7) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const [temporal, ui, release, github, argo, endpoints, ecr] = ports as [number, number, number, number, number, number, number];
  return { temporal, ui, release, github, argo, endpoints, ecr };
}

/** The text a rendered-Markdown panel (Web UI draws them in iframes) shows, once it shows something. */
async function frameText(page: Page, index: number): Promise<{ frame: Frame; text: string }> {
  const handle = await page.locator('iframe[title="output"]').nth(index).elementHandle();
  const frame = await handle?.contentFrame();
  if (!frame) throw new Error(`no rendered panel number ${index} on ${page.url()}`);
  await frame.locator('body').filter({ hasText: /\S/ }).waitFor();
  return { frame, text: (await frame.locator('body').innerText()).replace(/\s+/g, ' ').trim() };
}

describe('Temporal Web UI and the release app page, in a browser', () => {
  let dataDir: string;
  let sandbox: Sandbox;
  let browser: Browser;
  let page: Page;
  let waiting: string;
  let whitehallSha: string;
  let publisherSha: string;

  const screenshot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const status = (workflowId: string): Promise<PipelineStatus> => pipelineStatus(sandbox.client, workflowId);

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does`);
    }
    mkdirSync(SCREENSHOTS, { recursive: true });
    dataDir = await mkdtemp(join(tmpdir(), 'web-ui-sandbox-'));
    const appsFile = join(ROOT, DEFAULT_APPS_FILE);
    sandbox = await startSandbox({
      dataDir,
      ports: await freePorts(),
      // Short but not zero: the pages should show real waits, and the run should stay quick.
      delays: { syncMs: 300, rolloutMs: 300, smokeMs: 50, buildMs: 300 },
      ecr: 'simulator',
      appsFile,
      apps: loadSandboxApps(appsFile),
      samples: true,
      print: () => undefined,
      workflowBundlePath: workflowBundlePath(),
    });
    const byApp = Object.fromEntries(sandbox.samples.map((sample) => [sample.app, sample]));
    waiting = byApp['content-publisher']!.workflowId;
    publisherSha = byApp['content-publisher']!.sha.slice(0, 7);
    whitehallSha = byApp.whitehall!.sha.slice(0, 7);
    await waitFor(
      async () => (await status(byApp.whitehall!.workflowId)).status === 'SUCCEEDED' && (await status(waiting)).status === 'AWAITING_APPROVAL',
      { timeoutMs: 90_000, intervalMs: 250, description: 'the sample pipelines to reach production and the approval gate' },
    );

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // A shared, slow machine: the UI is a large single-page app.
    page.setDefaultTimeout(45_000);
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await sandbox?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('lists exactly the waiting pipeline under DeployStatus = "AWAITING_APPROVAL"; its summary names app, commit and environments', async () => {
    const query = 'DeployStatus = "AWAITING_APPROVAL"';
    await page.goto(`${sandbox.webUiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
    const rows = page.getByTestId('workflows-summary-configurable-table-row');
    await rows.filter({ hasText: waiting }).waitFor();
    expect(await rows.count()).toBe(1);
    await expect(page.getByText('deploy-whitehall-').count()).resolves.toBe(0);
    await screenshot('1-awaiting-approval-list');

    // UI 2.42.1's list has no summary column: the summary is on the pipeline's own page.
    await rows.getByRole('link', { name: waiting }).click();
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await page.getByTestId('user-metadata-summary-heading').first().waitFor();
    const summary = await frameText(page, 0);
    expect(summary.text).toBe(`content-publisher ${publisherSha} → integration → staging → production`);
  });

  it("shows the pipeline's current details table and its steps' summaries in words", async () => {
    await page.goto(sandbox.pipelineUrl(waiting));
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await page.getByText('Current Details').first().waitFor();
    const details = await frameText(page, 1);
    const table = await details.frame.locator('table tr').allInnerTexts();
    const rows = table.map((row) => row.split('\t').map((cell) => cell.trim()));
    expect(rows[0]!.slice(0, 3)).toEqual(['ci pipeline', 'AWAITING_APPROVAL', publisherSha]);
    const states = Object.fromEntries(rows.slice(1).map((row) => row.slice(0, 2)));
    expect(states).toEqual({ integration: 'DEPLOYED', staging: 'AWAITING_APPROVAL', production: 'PENDING' });
    // The panel is short: every environment's row must be inside it, not cut off.
    const panel = await page.locator('iframe[title="output"]').nth(1).boundingBox();
    const lastRow = await details.frame.locator('table tr').last().boundingBox();
    expect(lastRow!.y + lastRow!.height).toBeLessThanOrEqual(panel!.y + panel!.height);

    const events = (await page.locator('main').innerText()).replace(/\s+/g, ' ');
    const integration = `content-publisher ${publisherSha}[0-9a-f]{33} to integration`;
    for (const words of [
      /Resolve content-publisher [0-9a-f]{40}/,
      new RegExp(`Bump image tag: ${integration}`),
      /Tag image deployed-to-integration/,
      new RegExp(`Tell the release app: ${integration}`),
      /Wait for Argo CD: integration at charts [0-9a-f]{7}/,
      new RegExp(`Smoke test ${integration}`),
      /Wait for approval to deploy to staging/,
    ]) {
      expect(events).toMatch(words);
    }
    await screenshot('2-pipeline-user-metadata');

    await page.getByRole('tab', { name: 'History' }).click();
    // Activities are listed by type and summary; the quick steps, local activities, by their summaries above.
    await page.getByText(/waitForArgoSync • Wait for Argo CD/).first().waitFor();
    await screenshot('3-pipeline-history');
  });

  it('promotes the pipeline when "approve" is sent from the Web UI\'s own "Send a Signal" action', async () => {
    await page.goto(sandbox.pipelineUrl(waiting));
    await page.getByRole('button', { name: 'More Actions' }).click();
    await page.getByRole('menuitem', { name: 'Send a Signal' }).click();
    const dialog = page.getByRole('dialog', { name: 'Send a Signal' });
    await dialog.getByRole('button', { name: 'Select a signal' }).click();
    // The option's name includes the handler's description after the signal's name.
    await dialog.getByRole('option', { name: /^approve\b/ }).click();
    await dialog.locator('.cm-content[contenteditable="true"]').click();
    await page.keyboard.insertText(JSON.stringify({ environment: 'staging', approver: APPROVER, comment: 'approved in Temporal Web UI' }));
    // The JSON editor reformats on blur, and the click on Submit that blurs it does not submit yet; a
    // click on the dialog's title would count as a click outside it and close it unsent.
    await dialog.getByText('Encoding', { exact: true }).click();
    await screenshot('4-send-signal');
    await dialog.getByRole('button', { name: 'Submit' }).click();
    await dialog.waitFor({ state: 'hidden' });

    const promoted = await waitFor(
      async () => {
        const now = await status(waiting);
        const staging = now.environments.find((env) => env.environment === 'staging');
        return staging?.state === 'DEPLOYED' && now.awaitingApprovalFor === 'production' ? now : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, description: 'staging deployed after the Web UI approval' },
    );
    expect(promoted.environments.find((env) => env.environment === 'staging')?.approval).toMatchObject({ by: APPROVER, comment: 'approved in Temporal Web UI' });
    await page.goto(sandbox.pipelineUrl(waiting));
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await waitFor(async () => (await frameText(page, 1)).text.includes(`approved by ${APPROVER}`), {
      timeoutMs: 30_000,
      description: 'the current details to name the approver',
    });
    await screenshot('5-after-approval');
  });

  it('shows on the release app page what runs where and what awaits approval', async () => {
    await page.goto(sandbox.releaseUrl);
    const cells = async (app: string) =>
      page
        .locator(`tr[data-app="${app}"] td[data-environment]`)
        .evaluateAll((tds) => tds.map((td) => [td.getAttribute('data-environment'), td.querySelector('code')?.textContent ?? td.textContent?.trim()]));
    expect(Object.fromEntries(await cells('whitehall'))).toEqual({ integration: whitehallSha, staging: whitehallSha, production: whitehallSha });
    expect(Object.fromEntries(await cells('content-publisher'))).toEqual({ integration: publisherSha, staging: publisherSha, production: '–' });
    const pending = await page.locator('#awaiting tbody tr').allInnerTexts();
    expect(pending).toHaveLength(1);
    expect(pending[0]).toContain('content-publisher');
    expect(pending[0]).toContain(publisherSha);
    expect(pending[0]).toContain('production');
    // The pending list is Temporal's answer: it matches a visibility query made now.
    const fromTemporal = await listPipelines(sandbox.client, { status: 'AWAITING_APPROVAL' });
    expect(fromTemporal.map((p) => [p.workflowId, p.environment])).toEqual([[waiting, 'production']]);
    await screenshot('6-release-app');
  });
});
