import { readFileAt } from './support/charts-repo';
import { startHarness, type PipelineHarness } from './support/pipeline';

describe('a manual deploy of one ref to one environment', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({ apps: { 'content-store': {} } });
  });
  afterAll(async () => h?.close());

  it('resolves a branch name to its SHA and deploys only that environment, without promoting', async () => {
    await h.stack.merge('content-store');
    const sha = await h.stack.merge('content-store', { branch: 'hotfix-search' });
    // hotfix-search is not on main: a manual deploy of it says so.
    const run = await h.cli(['start', '--app', 'content-store', '--ref', 'hotfix-search', '--environment', 'staging', '--allow-unmerged', '--wait', '--json']);
    expect(run.code).toBe(0);
    const output = JSON.parse(run.out.join('\n'));
    expect(output).toMatchObject({ workflowId: `deploy-content-store-${sha}-staging-manual`, sha, started: true });
    expect(output.result).toMatchObject({ status: 'SUCCEEDED', trigger: 'manual', ref: 'hotfix-search', sha });
    expect(output.result.environments.map((e: { environment: string; state: string }) => [e.environment, e.state])).toEqual([['staging', 'DEPLOYED']]);
    // One line per change of the environment's state, in order, with the time since the start.
    const stagingLines = run.err.filter((line) => /^\[\s*\d+\.\ds\] staging /.test(line)).map((line) => line.replace(/^\[[^\]]+\] staging\s+/, ''));
    expect(stagingLines.filter((state) => !state.startsWith('WAITING_FOR_LANE'))).toEqual(['DEPLOYING', 'WAITING_FOR_SYNC', 'SMOKE_TESTING', 'DEPLOYED']);
    expect(run.err[run.err.length - 1]).toMatch(/^\[\s*\d+\.\ds\] pipeline\s+SUCCEEDED$/);

    const tagFile = (env: string) => readFileAt(h.stack.charts.bareDir, 'main', `charts/app-config/image-tags/${env}/content-store`);
    expect(await tagFile('staging')).toContain(`image_tag: ${sha}`);
    expect(await tagFile('integration')).toContain('image_tag: initial');
    expect(await tagFile('production')).toContain('image_tag: initial');
    expect(h.stack.release.deployments.map((d) => [d.environment, d.version])).toEqual([['staging', sha]]);
  });
});
