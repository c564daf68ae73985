import { waitFor } from './support/env';
import { startHarness, type PipelineHarness } from './support/pipeline';

describe('GitHub deployments and Slack messages', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({
      apps: {
        'search-api': {},
        'travel-advice': { environments: { integration: { continuousDeployment: true }, staging: { continuousDeployment: false } } },
      },
    });
  });
  afterAll(async () => h?.close());

  it('records one GitHub deployment per environment, in_progress then success, linking the pipeline in Web UI', async () => {
    const sha = await h.stack.merge('search-api');
    const { workflowId } = await h.startCi('search-api', sha);
    expect((await h.handle(workflowId).result()).status).toBe('SUCCEEDED');
    const deployments = h.stack.github.deployments.filter((d) => d.sha === sha);
    // The deployment carries the image it deploys, by digest.
    const image = { pipeline: workflowId, image_repository: h.stack.imageRepositoryOf('search-api'), image_digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) };
    expect(deployments.map((d) => [d.environment, d.productionEnvironment, d.payload])).toEqual([
      ['integration', false, image],
      ['staging', false, image],
      ['production', true, image],
    ]);
    for (const deployment of deployments) {
      const statuses = h.stack.github.deploymentStatuses.filter((s) => s.deploymentId === deployment.id);
      expect(statuses.map((s) => s.state)).toEqual(['in_progress', 'success']);
      expect(statuses[1]!.logUrl).toBe(`http://127.0.0.1:8233/namespaces/default/workflows/${workflowId}`);
    }
    expect(h.stack.slack.messages.filter((m) => m.text.includes(sha.slice(0, 7)))).toEqual([]);
  });

  it('tells Slack once when a pipeline waits for approval, and once when it is rolled back, marking the deployment failed', async () => {
    const sha = await h.stack.merge('travel-advice');
    const { workflowId } = await h.startCi('travel-advice', sha);
    await h.waitForStatus(workflowId, (s) => s.status === 'AWAITING_APPROVAL', 'staging approval');
    const mine = () => h.stack.slack.messages.filter((m) => m.text.includes(workflowId));
    // The message follows the status: the pipeline shows AWAITING_APPROVAL first, then tells Slack.
    await waitFor(() => mine().length > 0, { timeoutMs: 15_000, description: 'the approval message to reach Slack' });
    expect(mine().map((m) => m.text)).toEqual([
      // With what the approval would put on staging: the one commit since what staging runs.
      `travel-advice ${sha.slice(0, 7)} (${workflowId}) waits for approval to deploy to staging; it brings 1 commit: ${sha.slice(0, 7)} Merge a change to travel-advice (octocat): deploy approve ${workflowId} --environment staging`,
    ]);
    // Through the Web API with the sandbox's bot token, carrying the step's key (test/slack-crash.test.ts uses it).
    const key = expect.stringMatching(new RegExp(`^${workflowId}/[0-9a-f-]+/\\d+$`));
    expect(mine()[0]).toEqual(expect.objectContaining({ channel: h.stack.env.SLACK_CHANNEL, metadata: { event_type: 'deploy_pipeline_notice', event_payload: { key } } }));

    h.stack.endpoints.failChecks('travel-advice', 'staging', { status: 500 });
    try {
      expect((await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'alice'])).code).toBe(0);
      await expect(h.handle(workflowId).result()).rejects.toThrow();
    } finally {
      h.stack.endpoints.restore('travel-advice', 'staging');
    }
    expect(mine()).toHaveLength(2);
    expect(new Set(mine().map((m) => m.metadata?.event_payload.key)).size).toBe(2);
    expect(mine()[1]!.text).toMatch(new RegExp(`^travel-advice ${sha.slice(0, 7)} \\(${workflowId}\\) was rolled back: smoke test failed`));
    const staging = h.stack.github.deployments.find((d) => d.sha === sha && d.environment === 'staging')!;
    expect(h.stack.github.deploymentStatuses.filter((s) => s.deploymentId === staging.id).map((s) => s.state)).toEqual(['in_progress', 'failure']);
  });
});
