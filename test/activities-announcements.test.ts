/**
 * The announcement stage (activities/announcements.ts) alone, in MockActivityEnvironment: the release app, GitHub's
 * deployments and Slack's Web API, each a simulator behind its production adapter. Every one of them happens once
 * per pipeline and environment, however often the step is retried.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type PipelineActivities } from '../activities';
import { startStack, type Stack } from '../sandbox/stack';
import { SANDBOX_CHANNEL } from '../simulators/slack';
import { errorFrom } from './support/env';

const APP = 'collections';

describe('the announcement stage', () => {
  let dataDir: string;
  let stack: Stack;
  let activities: PipelineActivities;
  let pipelineNumber = 0;
  /** An activity of one pipeline: every attempt of a step shares its workflow, run and activity ID. */
  const inPipeline = (workflowId: string, attempt = 1, activityId = '7', workflowNamespace = 'default') =>
    new MockActivityEnvironment({ attempt, activityId, workflowNamespace, workflowExecution: { workflowId, runId: `run-of-${workflowId}` }, scheduledTimestampMs: Date.now() - 1_000 });
  const newPipeline = () => `deploy-${APP}-${String(++pipelineNumber).padStart(40, '0')}`;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'activities-announcements-'));
    stack = await startStack({ dataDir, apps: { [APP]: {} }, webUiUrl: 'http://temporal-ui.example:8233' });
    activities = createActivities(stack.dependencies);
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('notifyReleaseApp records a deploy once per pipeline and environment; a rollback is a record of its own', async () => {
    const pipeline = newPipeline();
    const step = { app: APP, environment: 'staging', tag: 'v42' };
    await inPipeline(pipeline).run(activities.notifyReleaseApp, step);
    await inPipeline(pipeline, 2).run(activities.notifyReleaseApp, step);
    await inPipeline(pipeline).run(activities.notifyReleaseApp, { ...step, tag: 'v41', purpose: 'rollback' as const });
    const ours = stack.release.deployments.filter((d) => d.repo === stack.repoOf(APP));
    expect(ours.map((d) => [d.environment, d.version, d.idempotencyKey])).toEqual([
      ['staging', 'v42', `${pipeline}/staging`],
      ['staging', 'v41', `${pipeline}/staging/rollback`],
    ]);
  });

  it('a refused record fails for good; a release app outage is retried', async () => {
    const pipeline = newPipeline();
    const step = { app: APP, environment: 'integration', tag: 'v43' };
    stack.release.injectFault({ method: 'POST', pathPattern: '^/deployments', status: 503, times: 1 });
    const outage = await errorFrom(() => inPipeline(pipeline).run(activities.notifyReleaseApp, step));
    expect(outage).not.toHaveProperty('nonRetryable', true);
    expect(outage.message).toMatch(/^Release app POST \S+\/deployments returned 503/);
    stack.release.injectFault({ method: 'POST', pathPattern: '^/deployments', status: 401, body: { message: 'Unauthorized' }, times: 1 });
    const refused = await errorFrom(() => inPipeline(pipeline, 2).run(activities.notifyReleaseApp, step));
    expect(refused).toMatchObject({ type: 'PermanentHttpError', nonRetryable: true });
    await inPipeline(pipeline, 3).run(activities.notifyReleaseApp, step);
    expect(stack.release.deployments.filter((d) => d.idempotencyKey === `${pipeline}/integration`)).toHaveLength(1);
  });

  it('recordGitHubDeployment keeps one deployment per pipeline and environment, with a status per state and a link to the pipeline', async () => {
    const sha = await stack.merge(APP);
    const pipeline = newPipeline();
    const request = { app: APP, environment: 'production', sha, description: 'Deploying', state: 'in_progress' as const };
    await inPipeline(pipeline).run(activities.recordGitHubDeployment, request);
    await inPipeline(pipeline, 2).run(activities.recordGitHubDeployment, request);
    await inPipeline(pipeline).run(activities.recordGitHubDeployment, { ...request, state: 'success' as const, description: 'Deployed' });
    const deployments = stack.github.deployments.filter((d) => d.sha === sha);
    expect(deployments).toEqual([expect.objectContaining({ environment: 'production', productionEnvironment: true, payload: { pipeline } })]);
    const statuses = stack.github.deploymentStatuses.filter((s) => s.deploymentId === deployments[0]!.id);
    expect(statuses.map((s) => s.state)).toEqual(['in_progress', 'success']);
    expect(statuses[0]!.logUrl).toBe(`http://temporal-ui.example:8233/namespaces/default/workflows/${pipeline}`);
  });

  it("links a GitHub deployment to the pipeline in the worker's own namespace", async () => {
    const sha = await stack.merge(APP);
    const pipeline = newPipeline();
    const request = { app: APP, environment: 'staging', sha, description: 'Deploying', state: 'in_progress' as const };
    await inPipeline(pipeline, 1, '7', 'deploys-prod').run(activities.recordGitHubDeployment, request);
    const deployment = stack.github.deployments.find((d) => d.sha === sha && d.environment === 'staging')!;
    const status = stack.github.deploymentStatuses.find((s) => s.deploymentId === deployment.id)!;
    expect(status.logUrl).toBe(`http://temporal-ui.example:8233/namespaces/deploys-prod/workflows/${pipeline}`);
  });

  it('notifyPeople posts once per step, however often the step is retried, and once per other step', async () => {
    const pipeline = newPipeline();
    const text = `${APP} waits for approval to production`;
    await inPipeline(pipeline, 1, '12').run(activities.notifyPeople, { text });
    await inPipeline(pipeline, 2, '12').run(activities.notifyPeople, { text });
    await inPipeline(pipeline, 3, '12').run(activities.notifyPeople, { text });
    await inPipeline(pipeline, 1, '13').run(activities.notifyPeople, { text });
    const posted = stack.slack.channelMessages(SANDBOX_CHANNEL).filter((m) => m.text === text);
    expect(posted.map((m) => m.metadata?.event_payload.key)).toEqual([`${pipeline}/run-of-${pipeline}/12`, `${pipeline}/run-of-${pipeline}/13`]);
  });

  it('notifyPeople does nothing when Slack is not configured', async () => {
    const quiet = createActivities({ ...stack.dependencies, notifier: undefined });
    const before = stack.slack.requests.length;
    await inPipeline(newPipeline()).run(quiet.notifyPeople, { text: 'nobody hears this' });
    expect(stack.slack.requests.length).toBe(before);
  });
});
