/**
 * GOV.UK's promotion rule (`promotion: chartsFlags`), end to end on GOV.UK's topology (an Argo CD per environment,
 * each with app-config): a release deployed to an environment goes on to the next on its own only when that
 * environment's image-tag file said promote_deployment: true and automatic_deploys_enabled: true at the commit
 * Argo CD synced.
 */
import { stringify as stringifyYaml } from 'yaml';
import type { PipelineStatus } from '../common/types';
import { readFileAt } from './support/charts-repo';
import { startHarness, type PipelineHarness } from './support/pipeline';

const PROMOTED = 'publisher';
const BY_HAND = 'frontend';

describe('promotion by charts flags', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({
      apps: { [PROMOTED]: { promotion: 'chartsFlags' }, [BY_HAND]: { promotion: 'chartsFlags', unpromoted: 'deployByHand' } },
      argo: { perEnvironment: true, appOfApps: 'app-config' },
    });
  });
  afterAll(async () => h?.close());

  const fileOf = (app: string, environment: string) => `charts/app-config/image-tags/${environment}/${app}`;

  async function setFlags(app: string, environment: string, flags: Record<string, unknown>): Promise<void> {
    const path = fileOf(app, environment);
    const current = await h.stack.charts.readFile(path);
    const tag = /image_tag: (\S+)/.exec(current ?? '')?.[1] ?? 'initial';
    await h.stack.charts.commitFiles({ [path]: stringifyYaml({ image_tag: tag, ...flags }) }, `Set the flags of ${app} in ${environment}`);
  }

  /**
   * The bump writes promote_deployment itself (true on a release's way), so a flag that stops the release must land
   * after the bump and before Argo CD syncs: a person's commit, synced with ours, whose flags are the ones that
   * count (GOV.UK takes them at sync time). The environment's app-config answers nothing until that commit landed.
   */
  async function startWithFlagsLandingBeforeSync(app: string, environment: string, flags: Record<string, unknown>): Promise<{ workflowId: string; sha: string }> {
    const sha = await h.stack.merge(app);
    const held = h.stack.argoOf(environment).injectFault({ pathPattern: '^/api/v1/applications/app-config', status: 503, times: Infinity });
    try {
      const { workflowId } = await h.startCi(app, sha);
      await h.waitForStatus(workflowId, (s) => envOf(s, environment).chartsCommit !== undefined, `${environment} bumped`);
      await setFlags(app, environment, flags);
      return { workflowId, sha };
    } finally {
      held.cancel();
    }
  }
  const envOf = (status: PipelineStatus, environment: string) => status.environments.find((env) => env.environment === environment)!;

  it('goes on to every environment whose predecessor says promote_deployment and automatic_deploys_enabled true', async () => {
    // As an earlier manual deploy leaves them: a release's deploy and its promotions write promote_deployment: true.
    for (const environment of ['integration', 'staging']) await setFlags(PROMOTED, environment, { promote_deployment: false, automatic_deploys_enabled: true });
    const sha = await h.stack.merge(PROMOTED);
    const result = await h.handle((await h.startCi(PROMOTED, sha)).workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((env) => [env.environment, env.state, env.promotes])).toEqual([
      ['integration', 'DEPLOYED', true],
      ['staging', 'DEPLOYED', true],
      ['production', 'DEPLOYED', true],
    ]);
    expect(h.stack.argoOf('production').currentTag(PROMOTED, 'production')).toBe(sha);
    for (const environment of ['integration', 'staging', 'production']) {
      expect(await readFileAt(h.stack.charts.bareDir, 'main', fileOf(PROMOTED, environment))).toBe(
        environment === 'production'
          ? `# Managed by the deploy pipeline\nimage_tag: ${sha}\npromote_deployment: true\nautomatic_deploys_enabled: true\n`
          : `image_tag: ${sha}\npromote_deployment: true\nautomatic_deploys_enabled: true\n`,
      );
      expect(h.stack.argoOf(environment).application(PROMOTED).metadata).toMatchObject({ annotations: { imageTag: sha, promoteDeployment: 'true' } });
    }
  });

  it('waits for approval in the next environment when the deployed one says promote_deployment: false', async () => {
    const { workflowId, sha } = await startWithFlagsLandingBeforeSync(PROMOTED, 'staging', { promote_deployment: false, automatic_deploys_enabled: true });
    const waiting = await h.waitForStatus(workflowId, (s) => s.status === 'AWAITING_APPROVAL', 'production awaiting approval');
    expect(waiting.awaitingApprovalFor).toBe('production');
    expect(waiting.environments.map((env) => [env.environment, env.state])).toEqual([
      ['integration', 'DEPLOYED'],
      ['staging', 'DEPLOYED'],
      ['production', 'AWAITING_APPROVAL'],
    ]);
    expect(waiting.environments[1]!.promotes).toBe(false);
    expect(waiting.environments[2]!.waitingFor).toContain('staging does not promote on its own');
    // The release app's page says so too, per app and environment.
    const page = await (await fetch(h.stack.release.url)).text();
    const row = page.split('\n').find((line) => line.includes(`data-app="${PROMOTED}"`))!;
    expect(row).toMatch(/data-environment="integration">[^]*?promotes on its own<\/span><\/td>/);
    expect(row).toMatch(/data-environment="staging">[^]*?does not promote on its own<\/span><\/td>/);
    expect(/data-environment="production">(.*?)<\/td>/.exec(row)?.[1]).not.toContain('promote');

    const approved = await h.cli(['approve', workflowId, '--environment', 'production', '--approver', 'alice']);
    expect(approved.code).toBe(0);
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(h.stack.argoOf('production').currentTag(PROMOTED, 'production')).toBe(sha);
    // A person let it in: like a manual deploy, it is not promoted on from there.
    expect(await readFileAt(h.stack.charts.bareDir, 'main', fileOf(PROMOTED, 'production'))).toContain(`image_tag: ${sha}\npromote_deployment: false\n`);
  });

  it('ends after the environment that does not promote where the catalogue says the next is deployed by hand', async () => {
    const { workflowId, sha } = await startWithFlagsLandingBeforeSync(BY_HAND, 'integration', { automatic_deploys_enabled: true });
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((env) => [env.environment, env.state])).toEqual([
      ['integration', 'DEPLOYED'],
      ['staging', 'PENDING'],
      ['production', 'PENDING'],
    ]);
    expect(result.environments[1]!.waitingFor).toMatch(/^next environment: deploy by hand \(integration does not promote on its own/);
    expect(h.stack.argoOf('staging').currentTag(BY_HAND, 'staging')).not.toBe(sha);
  });

  it('a manual deploy writes promote_deployment: false, so the environment it deployed does not promote it onward', async () => {
    // As a release's deploy leaves the file.
    await setFlags(PROMOTED, 'integration', { promote_deployment: true, automatic_deploys_enabled: true });
    const sha = await h.stack.merge(PROMOTED);
    const run = await h.cli(['start', '--app', PROMOTED, '--ref', sha, '--environment', 'integration', '--wait', '--json']);
    expect(run.code).toBe(0);
    const { result } = JSON.parse(run.out.join('\n')) as { result: PipelineStatus };
    expect(result.environments.map((env) => [env.environment, env.state, env.promotes])).toEqual([['integration', 'DEPLOYED', false]]);
    expect(await readFileAt(h.stack.charts.bareDir, 'main', fileOf(PROMOTED, 'integration'))).toBe(`image_tag: ${sha}\npromote_deployment: false\nautomatic_deploys_enabled: true\n`);
    // What Argo CD's on-deployed notification hands GOV.UK's post-sync workflow: nothing to promote.
    expect(h.stack.argoOf('integration').application(PROMOTED).metadata).toMatchObject({
      annotations: { imageTag: sha, promoteDeployment: 'false', automaticDeploysEnabled: 'true' },
    });
    for (const environment of ['staging', 'production']) {
      expect(h.stack.argoOf(environment).currentTag(PROMOTED, environment)).not.toBe(sha);
      expect(await readFileAt(h.stack.charts.bareDir, 'main', fileOf(PROMOTED, environment))).not.toContain(sha);
    }
    const page = await (await fetch(h.stack.release.url)).text();
    const row = page.split('\n').find((line) => line.includes(`data-app="${PROMOTED}"`))!;
    expect(row).toMatch(/data-environment="integration">[^]*?does not promote on its own<\/span><\/td>/);
  });
});
