/**
 * GOV.UK's promotion rule (`promotion: chartsFlags`), end to end on GOV.UK's topology (an Argo CD per environment,
 * each with app-config): a release deployed to an environment goes on to the next on its own only when that
 * environment's image-tag file said promote_deployment: true and automatic_deploys_enabled: true at the commit
 * Argo CD synced.
 */
import { stringify as stringifyYaml } from 'yaml';
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

  async function setFlags(app: string, environment: string, flags: Record<string, unknown>): Promise<void> {
    const path = `charts/app-config/image-tags/${environment}/${app}`;
    const current = await h.stack.charts.readFile(path);
    const tag = /image_tag: (\S+)/.exec(current ?? '')?.[1] ?? 'initial';
    await h.stack.charts.commitFiles({ [path]: stringifyYaml({ image_tag: tag, ...flags }) }, `Set the flags of ${app} in ${environment}`);
  }

  it('goes on to every environment whose predecessor says promote_deployment and automatic_deploys_enabled true', async () => {
    const sha = await h.stack.merge(PROMOTED);
    const result = await h.handle((await h.startCi(PROMOTED, sha)).workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((env) => [env.environment, env.state, env.promotes])).toEqual([
      ['integration', 'DEPLOYED', true],
      ['staging', 'DEPLOYED', true],
      ['production', 'DEPLOYED', true],
    ]);
    expect(h.stack.argoOf('production').currentTag(PROMOTED, 'production')).toBe(sha);
  });

  it('waits for approval in the next environment when the deployed one says promote_deployment: false', async () => {
    await setFlags(PROMOTED, 'staging', { promote_deployment: false, automatic_deploys_enabled: true });
    const sha = await h.stack.merge(PROMOTED);
    const { workflowId } = await h.startCi(PROMOTED, sha);
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
  });

  it('ends after the environment that does not promote where the catalogue says the next is deployed by hand', async () => {
    await setFlags(BY_HAND, 'integration', { automatic_deploys_enabled: true });
    const sha = await h.stack.merge(BY_HAND);
    const result = await h.handle((await h.startCi(BY_HAND, sha)).workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((env) => [env.environment, env.state])).toEqual([
      ['integration', 'DEPLOYED'],
      ['staging', 'PENDING'],
      ['production', 'PENDING'],
    ]);
    expect(result.environments[1]!.waitingFor).toMatch(/^next environment: deploy by hand \(integration does not promote on its own/);
    expect(h.stack.argoOf('staging').currentTag(BY_HAND, 'staging')).not.toBe(sha);
  });
});
