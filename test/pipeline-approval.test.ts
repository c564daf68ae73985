import { readFileAt } from './support/charts-repo';
import { waitFor } from './support/env';
import { startHarness, type PipelineHarness } from './support/pipeline';
import { approvePipeline } from '../client/pipelines';
import { approveSignal, DeployStatusAttribute, laneStateQuery, laneWorkflowId } from '../workflows/definitions';
import { stepsInHistory, workflowTaskOf } from './support/history-steps';

const NEEDS_APPROVAL = {
  environments: {
    integration: { continuousDeployment: true },
    staging: { continuousDeployment: false },
    production: { continuousDeployment: false },
  },
};

describe('an app without continuous deployment', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness({ apps: { publisher: NEEDS_APPROVAL, frontend: { ...NEEDS_APPROVAL, approvalTimeout: '2s' } } });
  });
  afterAll(async () => h?.close());

  async function awaitingStaging(app: string): Promise<string> {
    const sha = await h.stack.merge(app);
    const { workflowId } = await h.startCi(app, sha);
    await h.waitForStatus(workflowId, (s) => s.status === 'AWAITING_APPROVAL', 'the pipeline to wait for staging approval');
    return workflowId;
  }

  it('waits after integration, is found by its search attribute, and goes on when approved with the CLI', async () => {
    const workflowId = await awaitingStaging('publisher');
    const status = await h.status(workflowId);
    expect(status.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'AWAITING_APPROVAL', 'PENDING']);
    expect(status.awaitingApprovalFor).toBe('staging');

    // Visibility is eventually consistent: the list API sees the upserted attribute shortly after.
    const listed = await waitFor(
      async () => {
        const cli = await h.cli(['list', '--app', 'publisher', '--status', 'AWAITING_APPROVAL', '--json']);
        const rows = JSON.parse(cli.out.join('\n')) as { workflowId: string; environment: string }[];
        return rows.find((r) => r.workflowId === workflowId);
      },
      { timeoutMs: 15_000, description: 'the waiting pipeline in `deploy list --status AWAITING_APPROVAL`' },
    );
    expect(listed.environment).toBe('staging');
    const query = [];
    for await (const w of h.client.workflow.list({ query: `DeployStatus = "AWAITING_APPROVAL" AND DeployApp = "publisher"` })) query.push(w.workflowId);
    expect(query).toContain(workflowId);

    const stagingFileBefore = await readFileAt(h.stack.charts.bareDir, 'main', 'charts/app-config/image-tags/staging/publisher');
    expect(stagingFileBefore).toContain('image_tag: initial');

    const approved = await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'alice', '--comment', 'looks good']);
    expect(approved).toMatchObject({ code: 0, out: [`approved staging for ${workflowId} as alice`] });

    const atProduction = await h.waitForStatus(workflowId, (s) => s.awaitingApprovalFor === 'production', 'the pipeline to wait for production approval');
    expect(atProduction.environments[1]).toMatchObject({ state: 'DEPLOYED', approval: { by: 'alice', comment: 'looks good' } });
    const sha = atProduction.sha!;
    expect(await readFileAt(h.stack.charts.bareDir, 'main', 'charts/app-config/image-tags/staging/publisher')).toContain(`image_tag: ${sha}`);
    expect(await readFileAt(h.stack.charts.bareDir, 'main', 'charts/app-config/image-tags/production/publisher')).toContain('image_tag: initial');

    // Web UI approves with the signal of the same name.
    await h.handle(workflowId).signal(approveSignal, { environment: 'production', approver: 'bob' });
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(result.environments[2]).toMatchObject({ state: 'DEPLOYED', approval: { by: 'bob' } });
    expect(h.stack.release.deployments.filter((d) => d.version === sha).map((d) => d.environment)).toEqual(['integration', 'staging', 'production']);
  });

  it('asks for the lane in the same workflow task as it takes the approval, and the lane no longer counts it as waiting', async () => {
    const workflowId = await awaitingStaging('publisher');
    const lane = h.client.workflow.getHandle(laneWorkflowId(h.taskQueue, 'publisher', 'staging'));
    await waitFor(async () => (await lane.query(laneStateQuery)).awaitingApproval.some((r) => r.pipelineId === workflowId), {
      description: 'the staging lane to know the pipeline waits for approval',
    });
    await approvePipeline(h.client, workflowId, { environment: 'staging', approver: 'alice' });
    await h.waitForStatus(workflowId, (s) => s.awaitingApprovalFor === 'production', 'the pipeline to wait for production approval');

    const { events } = await h.handle(workflowId).fetchHistory();
    const accepted = events!.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    expect(accepted).toBeGreaterThan(0);
    const approvalTask = workflowTaskOf(events!, accepted);
    // The request (a local activity's marker) and the news to the lane were written by the workflow task that took the
    // approval: no round trip spent waiting for the lane's signal.
    const askedForLane = stepsInHistory(events!).find((s) => s.index > approvalTask && s.activityType === 'signalLane');
    expect(askedForLane).toBeDefined();
    expect(workflowTaskOf(events!, askedForLane!.index)).toBe(approvalTask);
    const told = events!.slice(approvalTask).find((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes);
    expect(told?.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName).toBe('stoppedAwaiting');
    expect(workflowTaskOf(events!, events!.indexOf(told!))).toBe(approvalTask);

    const laneState = await lane.query(laneStateQuery);
    expect(laneState.awaitingApproval.map((r) => r.pipelineId)).not.toContain(workflowId);
    await h.handle(workflowId).cancel();
  });

  it('refuses an approval for an environment that is not awaiting approval, at once and with the reason', async () => {
    const workflowId = await awaitingStaging('publisher');
    const wrong = await h.cli(['approve', workflowId, '--environment', 'production', '--approver', 'alice']);
    expect(wrong.code).toBe(3);
    expect(wrong.err).toEqual([`deploy: refused: pipeline ${workflowId} is awaiting approval for staging, not production`]);
    const badName = await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'al ice;rm']);
    expect(badName.code).toBe(2);
    expect(badName.err[0]).toMatch(/invalid approver/);
    expect((await h.status(workflowId)).status).toBe('AWAITING_APPROVAL');

    const rejected = await h.cli(['reject', workflowId, '--environment', 'staging', '--approver', 'carol', '--reason', 'breaks search']);
    expect(rejected.code).toBe(0);
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('REJECTED');
    expect(result.environments[1]).toMatchObject({ state: 'REJECTED', rejection: { by: 'carol', comment: 'breaks search' } });
    expect(await readFileAt(h.stack.charts.bareDir, 'main', 'charts/app-config/image-tags/staging/publisher')).not.toContain(result.sha!);
    const description = await h.handle(workflowId).describe();
    expect(description.status.name).toBe('COMPLETED');

    const late = await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'alice']);
    expect(late.code).toBe(3);
    expect(late.err[0]).toBe(`deploy: refused: pipeline ${workflowId} has already finished: REJECTED (staging rejected by carol: breaks search)`);
  });

  it('expires when nobody decides within the approval timeout', async () => {
    const workflowId = await awaitingStaging('frontend');
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('EXPIRED');
    expect(result.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'EXPIRED', 'PENDING']);
    const description = await h.handle(workflowId).describe();
    expect(description.typedSearchAttributes.get(DeployStatusAttribute)).toBe('EXPIRED');
    expect(description.status.name).toBe('COMPLETED');
  });
});
