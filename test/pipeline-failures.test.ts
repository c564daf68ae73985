import { listCommits } from './support/charts-repo';
import { failureOf, startHarness, type PipelineHarness } from './support/pipeline';
import { DeployStatusAttribute } from '../workflows/definitions';


describe('images, Argo CD and smoke tests going wrong', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({
      apps: { 'smart-answers': {}, collections: { buildTimeout: '3s' }, frontend: {} },
      buildDelayMs: 300,
    });
  });
  afterAll(async () => h?.close());

  it('dispatches the image build when the image is missing, waits for it, then deploys', async () => {
    const sha = await h.stack.merge('smart-answers', { buildImage: false });
    const { workflowId } = await h.startCi('smart-answers', sha);
    const building = await h.waitForStatus(workflowId, (s) => s.status === 'BUILDING' || s.status === 'DEPLOYING' || s.status === 'SUCCEEDED', 'the build to start');
    expect(['BUILDING', 'DEPLOYING', 'SUCCEEDED']).toContain(building.status);
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    const dispatches = h.stack.github.dispatches.filter((d) => d.inputs.gitRef === sha);
    expect(dispatches).toHaveLength(1);
    expect(dispatches[0]).toMatchObject({ repo: 'alphagov/smart-answers', workflowFile: 'build-image.yml', ref: 'main' });
  });

  it('fails clearly when the dispatched build never produces the image', async () => {
    h.stack.stallBuilds('collections', true);
    try {
      const sha = await h.stack.merge('collections', { buildImage: false });
      const before = (await listCommits(h.stack.charts.bareDir)).length;
      const { workflowId } = await h.startCi('collections', sha);
      expect(await failureOf(h, workflowId)).toBe(`image build timed out: no image for collections ${sha} appeared in ECR within 3s`);
      expect((await listCommits(h.stack.charts.bareDir)).length).toBe(before);
      expect((await h.handle(workflowId).describe()).typedSearchAttributes.get(DeployStatusAttribute)).toBe('FAILED');
    } finally {
      h.stack.stallBuilds('collections', false);
    }
  });

  it('fails at once when the image build itself fails', async () => {
    h.stack.failBuilds('smart-answers', true);
    try {
      const sha = await h.stack.merge('smart-answers', { buildImage: false });
      const { workflowId } = await h.startCi('smart-answers', sha);
      expect(await failureOf(h, workflowId)).toMatch(new RegExp(`^image build for smart-answers ${sha.slice(0, 7)} ended "failure" \\(.+\\); no image .+/smart-answers:${sha}$`));
    } finally {
      h.stack.failBuilds('smart-answers', false);
    }
  });

  it('fails with the smoke test’s reason when a check fails in staging, and rolls staging back', async () => {
    h.stack.endpoints.failChecks('frontend', 'staging', { status: 503 });
    try {
      const sha = await h.stack.merge('frontend');
      const { workflowId } = await h.startCi('frontend', sha);
      const message = await failureOf(h, workflowId);
      expect(message).toMatch(new RegExp(`^smoke test failed for frontend ${sha} in staging: GET http://127\\.0\\.0\\.1:\\d+/frontend/staging/healthcheck returned 503, expected 200`));
      expect(message).toMatch(/\(after 2 attempts\); rolled staging back to initial and put a hold on automatic deploys there$/);
      const status = await h.status(workflowId);
      expect(status.status).toBe('ROLLED_BACK');
      expect(status.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'ROLLED_BACK', 'PENDING']);
      expect(status.failure).toBe(message);
      expect(h.stack.argo.currentTag('frontend', 'staging')).toBe('initial');
      expect(h.stack.release.deployments.filter((d) => d.repo === 'alphagov/frontend').map((d) => [d.environment, d.version])).toEqual([
        ['integration', sha],
        ['staging', sha],
        ['staging', 'initial'],
      ]);
      const holds = await h.cli(['hold', 'list', '--app', 'frontend', '--json']);
      expect(JSON.parse(holds.out.join('\n'))).toMatchObject([{ app: 'frontend', environment: 'staging', reason: expect.stringMatching(/^rolled back from [0-9a-f]{40}: smoke test failed/) }]);
      expect((await h.cli(['hold', 'clear', '--app', 'frontend', '--environment', 'staging', '--approver', 'alice'])).code).toBe(0);
    } finally {
      h.stack.endpoints.restore('frontend', 'staging');
    }
  });

  it('fails and rolls back when Argo CD reports the rollout Degraded', async () => {
    const sha = await h.stack.merge('frontend');
    h.stack.argo.degrade('frontend-integration', 'Deployment frontend: CrashLoopBackOff');
    const { workflowId } = await h.startCi('frontend', sha);
    const message = await failureOf(h, workflowId);
    expect(message).toMatch(/^Argo CD application frontend-integration at charts commit [0-9a-f]{7} is Degraded: .*CrashLoopBackOff/);
    const integration = (await h.status(workflowId)).environments[0]!;
    expect(integration).toMatchObject({ state: 'ROLLED_BACK', error: expect.stringContaining('CrashLoopBackOff') });
    expect(message.endsWith(`; rolled integration back to ${integration.previousTag} and put a hold on automatic deploys there`)).toBe(true);
    expect(h.stack.argo.currentTag('frontend', 'integration')).toBe(integration.previousTag);
  });

  it('does not take a stale Synced/Healthy status from before our commit for our release', async () => {
    const sha = await h.stack.merge('smart-answers');
    const staleMs = 3000;
    h.stack.argo.reportStaleFor('smart-answers-integration', staleMs);
    const staleUntil = Date.now() + staleMs;
    h.stack.endpoints.clearRequests();
    const { workflowId } = await h.startCi('smart-answers', sha);
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    const argoPolls = h.stack.argo.requests.filter((r) => r.path === '/api/v1/applications/smart-answers-integration' && r.time.getTime() < staleUntil);
    expect(argoPolls.length).toBeGreaterThan(1);
    const firstSmoke = h.stack.endpoints.requests.find((r) => r.path === '/smart-answers/integration/healthcheck');
    expect(firstSmoke!.time.getTime()).toBeGreaterThanOrEqual(staleUntil - 50);
  });
});
