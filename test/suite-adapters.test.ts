/**
 * The smoke suites' production adapters over real HTTP: Argo Workflows' submit/get/stop against one cluster's
 * Argo Workflows simulator, and GitHub's run jobs and cancel against the GitHub simulator.
 */
import { createArgoWorkflowsClient, createGitHubActionsRuns } from '../adapters';
import { PermanentHttpError } from '../common/errors';
import { InvalidNameError } from '../common/names';
import { ArgoWorkflowsSimulator } from '../simulators/argo-workflows';
import { GitHubSimulator, JobFailedError } from '../simulators/github';
import { waitFor } from './support/env';

const TOKEN = 'argo-workflows-sa-token-0123456789';
const GITHUB_TOKEN = 'ghs_suiteAdapters0123456789';
const REPO = 'alphagov/publishing-e2e-tests';

describe('the Argo Workflows client', () => {
  const cluster = new ArgoWorkflowsSimulator({ token: TOKEN, cluster: 'staging', namespace: 'apps', templates: { 'govuk-e2e-tests': { parameters: ['testArgs'] } }, runMs: 50 });
  let client: ReturnType<typeof createArgoWorkflowsClient>;

  beforeAll(async () => {
    await cluster.start();
    client = createArgoWorkflowsClient({ url: cluster.url, token: TOKEN });
  });
  afterAll(async () => cluster.close());

  const submission = (name: string) => ({ namespace: 'apps', template: 'govuk-e2e-tests', name, parameters: { testArgs: '--grep=@app-whitehall' }, labels: { 'deploy-pipelines/app': 'whitehall' } });

  it('submits the WorkflowTemplate under the name given, with its parameters and labels, as argo-server takes them', async () => {
    const { existed, workflow } = await client.submitFromTemplate(submission('govuk-e2e-tests-aaaa000000000001'));
    expect(existed).toBe(false);
    expect(workflow).toEqual({ name: 'govuk-e2e-tests-aaaa000000000001', phase: '', failedNodes: [] });
    expect(cluster.requests.at(-1)).toMatchObject({
      method: 'POST',
      path: '/api/v1/workflows/apps/submit',
      body: {
        namespace: 'apps',
        resourceKind: 'WorkflowTemplate',
        resourceName: 'govuk-e2e-tests',
        submitOptions: { name: 'govuk-e2e-tests-aaaa000000000001', parameters: ['testArgs=--grep=@app-whitehall'], labels: 'deploy-pipelines/app=whitehall' },
      },
    });
    await waitFor(async () => (await client.getWorkflow('apps', workflow.name)).phase === 'Succeeded', { timeoutMs: 5000, description: 'the workflow to succeed' });
  });

  it('a second submission under that name finds the first workflow instead of failing', async () => {
    const first = await client.submitFromTemplate(submission('govuk-e2e-tests-aaaa000000000002'));
    const again = await client.submitFromTemplate(submission('govuk-e2e-tests-aaaa000000000002'));
    expect(again).toEqual({ existed: true, workflow: expect.objectContaining({ name: first.workflow.name }) });
    expect(cluster.workflows.filter((w) => w.name === first.workflow.name)).toHaveLength(1);
  });

  it('reads the failed pod\'s message before the steps\' "child failed", and stops a workflow', async () => {
    cluster.queueOutcome('whitehall', { result: 'fail', node: 'publisher-specs', message: 'Error (exit code 1)' });
    const { workflow } = await client.submitFromTemplate(submission('govuk-e2e-tests-aaaa000000000003'));
    const failed = await waitFor(async () => {
      const now = await client.getWorkflow('apps', workflow.name);
      return now.phase === 'Failed' ? now : undefined;
    }, { timeoutMs: 5000, description: 'the workflow to fail' });
    expect(failed).toEqual({
      name: workflow.name,
      phase: 'Failed',
      message: 'child failed',
      failedNodes: [
        { name: 'publisher-specs', type: 'Pod', message: 'Error (exit code 1)' },
        { name: workflow.name, type: 'Steps', message: 'child failed' },
      ],
    });
    cluster.setOutcome('whitehall', { result: 'hang' });
    const { workflow: hanging } = await client.submitFromTemplate(submission('govuk-e2e-tests-aaaa000000000004'));
    await client.stopWorkflow('apps', hanging.name, 'deploy pipeline: cancelled');
    expect(cluster.requests.at(-1)).toMatchObject({ method: 'PUT', path: `/api/v1/workflows/apps/${hanging.name}/stop`, body: { namespace: 'apps', name: hanging.name, message: 'deploy pipeline: cancelled' } });
    expect(await client.getWorkflow('apps', hanging.name)).toMatchObject({ phase: 'Failed', message: "Stopped with strategy 'Stop': deploy pipeline: cancelled" });
    cluster.setOutcome('whitehall', { result: 'pass' });
  });

  it('takes a token written with its "Bearer " and never shows it in a failure', async () => {
    const prefixed = createArgoWorkflowsClient({ url: cluster.url, token: `Bearer ${TOKEN}` });
    await expect(prefixed.getWorkflow('apps', 'govuk-e2e-tests-aaaa000000000001')).resolves.toMatchObject({ phase: 'Succeeded' });
    const wrong = createArgoWorkflowsClient({ url: cluster.url, token: 'wrong-token-0123456789' });
    const err = await wrong.getWorkflow('apps', 'govuk-e2e-tests-aaaa000000000001').catch((caught: unknown) => caught as Error);
    expect(err).toBeInstanceOf(PermanentHttpError);
    expect((err as Error).message).toMatch(/^Argo Workflows GET http:\/\/127\.0\.0\.1:\d+\/api\/v1\/workflows\/apps\/govuk-e2e-tests-aaaa000000000001 returned 401: token not valid/);
    expect((err as Error).message).not.toContain('wrong-token-0123456789');
  });

  it('refuses names that are not Kubernetes names before asking', async () => {
    await expect(client.getWorkflow('apps', '../secrets')).rejects.toBeInstanceOf(InvalidNameError);
    await expect(client.submitFromTemplate({ ...submission('ok-name'), labels: { app: 'a,b=c' } })).rejects.toBeInstanceOf(InvalidNameError);
    expect(cluster.requests.some((r) => r.path.includes('secrets'))).toBe(false);
  });
});

describe('the GitHub Actions runs client', () => {
  const github = new GitHubSimulator({ token: GITHUB_TOKEN, runName: (inputs) => `Smoke tests ${String(inputs.smokeRun)}` });
  let runs: ReturnType<typeof createGitHubActionsRuns>;
  let release: (() => void) | undefined;

  beforeAll(async () => {
    await github.start();
    github.addRepo(REPO);
    github.addCommit(REPO, { message: 'Initial commit' });
    github.onDispatch(async (dispatch) => {
      if (dispatch.inputs.smokeRun === 'fail') throw new JobFailedError('e2e (chromium)', 'Process completed with exit code 1.');
      if (dispatch.inputs.smokeRun === 'hang') await new Promise<void>((resolve) => (release = resolve));
    });
    runs = createGitHubActionsRuns({ token: GITHUB_TOKEN, baseUrl: github.url });
  });
  afterAll(async () => {
    release?.();
    await github.close();
  });

  const dispatched = async (smokeRun: string) => {
    const before = github.runs.length;
    await fetch(`${github.url}/repos/${REPO}/actions/workflows/smoke-tests.yml/dispatches`, {
      method: 'POST',
      headers: { authorization: `Bearer ${GITHUB_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ref: 'main', inputs: { smokeRun } }),
    });
    return github.runs[before]!;
  };

  it('reads one run, and lists its jobs with the failed one\'s name, conclusion and page', async () => {
    const run = await dispatched('fail');
    await github.settled();
    expect(await runs.getRun(REPO, run.id)).toEqual({ id: run.id, status: 'completed', conclusion: 'failure', displayTitle: 'Smoke tests fail', htmlUrl: `https://github.com/${REPO}/actions/runs/${run.id}` });
    expect(await runs.jobsOfRun(REPO, run.id)).toEqual([
      { id: run.jobs[0]!.id, name: 'e2e (chromium)', status: 'completed', conclusion: 'failure', htmlUrl: `https://github.com/${REPO}/actions/runs/${run.id}/job/${run.jobs[0]!.id}` },
    ]);
  });

  it('cancels a run in progress, and leaves one that has completed as it is', async () => {
    const hanging = await dispatched('hang');
    await waitFor(() => hanging.status === 'in_progress', { timeoutMs: 5000, description: 'the run to start' });
    await runs.cancelRun(REPO, hanging.id);
    expect(hanging).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    release?.();
    await github.settled();
    expect(hanging.conclusion).toBe('cancelled');
    // GitHub answers 409 for a completed run: nothing left to cancel.
    await expect(runs.cancelRun(REPO, hanging.id)).resolves.toBeUndefined();
    expect(github.requests.at(-1)).toMatchObject({ method: 'POST', path: `/repos/${REPO}/actions/runs/${hanging.id}/cancel`, status: 409 });
  });

  it('a run GitHub does not know is a permanent failure', async () => {
    await expect(runs.jobsOfRun(REPO, 999_999)).rejects.toBeInstanceOf(PermanentHttpError);
  });
});
