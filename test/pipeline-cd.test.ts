import { listCommits, readFileAt } from './support/charts-repo';
import { digestOfTag, tagsOfImage } from './support/ecr';
import { startHarness, type PipelineHarness } from './support/pipeline';
import { DeployStatusAttribute, DeployCommit, DeployApp } from '../workflows/definitions';

const ENVIRONMENTS = ['integration', 'staging', 'production'];

describe('a continuous-deployment app, from CI start to production', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({ apps: { whitehall: {} } });
  });
  afterAll(async () => h?.close());

  it('deploys integration → staging → production with one commit, tag and release record per environment', async () => {
    const sha = await h.stack.merge('whitehall');
    const before = (await listCommits(h.stack.charts.bareDir)).length;

    const started = await h.startCi('whitehall', sha);
    expect(started).toMatchObject({ workflowId: `deploy-whitehall-${sha}`, sha, started: true });
    const handle = h.handle(started.workflowId);
    const result = await handle.result();

    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments.map((e) => [e.environment, e.state])).toEqual(ENVIRONMENTS.map((e) => [e, 'DEPLOYED']));

    const commits = await listCommits(h.stack.charts.bareDir);
    expect(commits.length - before).toBe(3);
    expect(commits.slice(0, 3).map((c) => c.subject).reverse()).toEqual(ENVIRONMENTS.map((env) => `Deploy whitehall ${sha} to ${env}`));
    for (const [index, env] of ENVIRONMENTS.entries()) {
      const file = await readFileAt(h.stack.charts.bareDir, 'main', `charts/app-config/image-tags/${env}/whitehall`);
      expect(file).toContain(`image_tag: ${sha}`);
      expect(file).toContain('promote_deployment: true');
      expect(file).toContain('automatic_deploys_enabled: true');
      expect(file).toContain('# Managed by the deploy pipeline');
      expect(result.environments[index]!.chartsCommit).toBe(commits[2 - index]!.sha);
    }

    const repository = h.stack.imageRepositoryOf('whitehall');
    const digest = await digestOfTag(h.stack.ecr, repository, sha);
    expect(await tagsOfImage(h.stack.ecr, repository, digest!)).toEqual([...ENVIRONMENTS.map((e) => `deployed-to-${e}`), sha].sort());

    expect(h.stack.release.deployments.map((d) => [d.repo, d.environment, d.version])).toEqual(
      ENVIRONMENTS.map((env) => ['alphagov/whitehall', env, sha]),
    );
    expect(h.stack.argo.currentTag('whitehall', 'production')).toBe(sha);

    const description = await handle.describe();
    expect(description.typedSearchAttributes.get(DeployStatusAttribute)).toBe('SUCCEEDED');
    expect(description.typedSearchAttributes.get(DeployCommit)).toBe(sha);
    expect(description.typedSearchAttributes.get(DeployApp)).toBe('whitehall');
    expect(await description.staticSummary()).toBe(`whitehall ${sha.slice(0, 7)} → integration → staging → production`);
  });

  it('attaches a second CI start for the same commit to the one pipeline', async () => {
    const sha = await h.stack.merge('whitehall');
    const first = await h.startCi('whitehall', sha);
    const second = await h.cli(['start', '--app', 'whitehall', '--ref', sha, '--json']);
    expect(second.code).toBe(0);
    const attached = JSON.parse(second.out.join('\n'));
    expect(attached).toMatchObject({ workflowId: first.workflowId, runId: first.runId, started: false });
    await h.handle(first.workflowId).result();
    // Even after it finished, a CI retry does not deploy the commit again.
    const third = await h.cli(['start', '--app', 'whitehall', '--ref', sha, '--json']);
    expect(JSON.parse(third.out.join('\n'))).toMatchObject({ workflowId: first.workflowId, runId: first.runId, started: false });
    const runs = [];
    for await (const run of h.client.workflow.list({ query: `WorkflowId = "${first.workflowId}"` })) runs.push(run);
    expect(runs).toHaveLength(1);
    expect(h.stack.release.deployments.filter((d) => d.version === sha)).toHaveLength(3);
  });
});
