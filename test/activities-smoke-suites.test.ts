/**
 * End-to-end suites as smoke tests (activities/smoke-suites.ts), the step alone in MockActivityEnvironment: the
 * production adapters over real HTTP against the Argo Workflows simulator of the environment's cluster and the
 * GitHub simulator's runs and jobs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActivityCancellationDetails, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type PipelineActivities } from '../activities';
import type { SuiteProgress } from '../activities/smoke-suites';
import { startStack, type Stack } from '../sandbox/stack';
import { errorFrom, waitFor } from './support/env';

const ON_ARGO = 'whitehall';
const ON_GITHUB = 'search-api';
const ENV = 'integration';

/** Runs one activity in a MockActivityEnvironment, keeping its return type. */
function inActivity<A extends unknown[], R>(env: MockActivityEnvironment, fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return env.run(fn, ...args) as Promise<R>;
}

let pipelines = 0;
/** A mock step of its own pipeline run: each attempt's key, and so its Argo workflow's name, is new. */
function pipelineRun(heartbeatDetails?: SuiteProgress, id = `deploy-test-${++pipelines}`): { env: MockActivityEnvironment; heartbeats: SuiteProgress[]; id: string } {
  const env = new MockActivityEnvironment({ workflowExecution: { workflowId: id, runId: `run-${id}` }, heartbeatDetails });
  const heartbeats: SuiteProgress[] = [];
  env.on('heartbeat', (details: unknown) => heartbeats.push({ ...(details as SuiteProgress) }));
  return { env, heartbeats, id };
}

describe('end-to-end smoke suites', () => {
  let dataDir: string;
  let stack: Stack;
  let activities: PipelineActivities;
  const tags: Record<string, string> = {};

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'activities-suites-'));
    stack = await startStack({
      dataDir,
      apps: {
        [ON_ARGO]: { environments: { [ENV]: { smokeSuite: 'argoWorkflow', smokeAttempts: 2 } } },
        [ON_GITHUB]: { environments: { [ENV]: { smokeSuite: 'githubWorkflow', smokeAttempts: 2 } } },
      },
      smokeRetryInterval: '50ms',
      suite: { runMs: 100, timeout: '2s' },
      polling: { initialIntervalMs: 20, maxIntervalMs: 100 },
    });
    activities = createActivities(stack.dependencies);
    for (const app of [ON_ARGO, ON_GITHUB]) {
      tags[app] = await stack.merge(app);
      const run = new MockActivityEnvironment();
      const outcome = await inActivity(run, activities.bumpImageTag, { app, environment: ENV, tag: tags[app]!, respectFreeze: true });
      if (outcome.frozen) throw new Error(`${ENV} is frozen`);
      await inActivity(run, activities.waitForArgoSync, { app, environment: ENV, tag: tags[app]!, chartsCommit: outcome.chartsCommit });
    }
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  afterEach(() => {
    stack.setSuiteOutcome(ON_ARGO, ENV, { result: 'pass' });
    stack.setSuiteOutcome(ON_GITHUB, ENV, { result: 'pass' });
  });

  const step = (app: string) => ({ app, environment: ENV, tag: tags[app]! });
  const argoWorkflows = () => stack.argoWorkflowsOf(ENV);
  const smokeRuns = (app: string) => stack.github.runs.filter((run) => run.repo === stack.repoOf(app) && run.workflowFile === 'smoke-tests.yml');

  describe('argoWorkflow: a WorkflowTemplate in the environment\'s cluster', () => {
    it('passes once the workflow Succeeded, having submitted the template with the parameters filled in', async () => {
      const before = argoWorkflows().workflows.length;
      const { env, heartbeats } = pipelineRun();
      const outcomes = await inActivity(env, activities.runSmokeTests, step(ON_ARGO));
      const submitted = argoWorkflows().workflows.slice(before);
      expect(submitted).toHaveLength(1);
      expect(submitted[0]).toMatchObject({
        namespace: 'apps',
        template: 'govuk-e2e-tests',
        name: expect.stringMatching(/^govuk-e2e-tests-[0-9a-f]{16}$/),
        parameters: { testArgs: `--grep=@app-${ON_ARGO} --grep-invert=@not-${ENV}` },
        labels: { 'deploy-pipelines/app': ON_ARGO, 'deploy-pipelines/environment': ENV },
        phase: 'Succeeded',
      });
      expect(outcomes).toEqual([
        expect.objectContaining({ ok: true, check: expect.objectContaining({ name: 'healthcheck' }) }),
        { suite: 'govuk-e2e-tests', ok: true, run: submitted[0]!.name, detail: `workflow apps/${submitted[0]!.name} Succeeded` },
      ]);
      // The heartbeats carry the workflow's name, for a retry to follow it.
      expect(heartbeats).toContainEqual(expect.objectContaining({ suite: 0, attempt: 1, run: submitted[0]!.name }));
    });

    it('fails for good with the failed node\'s message after its attempts, each a workflow of its own', async () => {
      stack.setSuiteOutcome(ON_ARGO, ENV, { result: 'fail', node: 'publisher-specs', message: 'Error (exit code 1): 3 failed tests' });
      const before = argoWorkflows().workflows.length;
      const err = await errorFrom(() => inActivity(pipelineRun().env, activities.runSmokeTests, step(ON_ARGO)));
      const submitted = argoWorkflows().workflows.slice(before);
      expect(submitted.map((w) => w.phase)).toEqual(['Failed', 'Failed']);
      expect(new Set(submitted.map((w) => w.name)).size).toBe(2);
      expect(err).toMatchObject({ type: 'SmokeTestFailed', nonRetryable: true });
      expect(err.message).toBe(
        `smoke test failed for ${ON_ARGO} ${tags[ON_ARGO]} in ${ENV}: suite govuk-e2e-tests: workflow apps/${submitted[1]!.name} ended Failed: node publisher-specs: Error (exit code 1): 3 failed tests (after 2 attempts)`,
      );
    });

    it('a workflow that ends in Error fails the same way, with the workflow\'s message', async () => {
      stack.setSuiteOutcome(ON_ARGO, ENV, { result: 'error', message: 'pod was evicted' });
      const err = await errorFrom(() => inActivity(pipelineRun().env, activities.runSmokeTests, step(ON_ARGO)));
      expect(err).toMatchObject({ type: 'SmokeTestFailed' });
      expect(err.message).toMatch(/: suite govuk-e2e-tests: workflow apps\/govuk-e2e-tests-[0-9a-f]{16} ended Error: pod was evicted \(node e2e-tests: pod deleted\) \(after 2 attempts\)$/);
    });

    it('a suite that recovers on its next attempt passes', async () => {
      argoWorkflows().queueOutcome(ON_ARGO, { result: 'fail' });
      const before = argoWorkflows().workflows.length;
      const outcomes = await inActivity(pipelineRun().env, activities.runSmokeTests, step(ON_ARGO));
      expect(argoWorkflows().workflows.slice(before).map((w) => w.phase)).toEqual(['Failed', 'Succeeded']);
      expect(outcomes.at(-1)).toMatchObject({ suite: 'govuk-e2e-tests', ok: true });
    });

    it('stops a workflow that outlives the suite\'s timeout and counts it as a failed attempt', async () => {
      stack.setSuiteOutcome(ON_ARGO, ENV, { result: 'hang' });
      const before = argoWorkflows().workflows.length;
      const err = await errorFrom(() => inActivity(pipelineRun().env, activities.runSmokeTests, step(ON_ARGO)));
      const submitted = argoWorkflows().workflows.slice(before);
      expect(submitted.map((w) => [w.phase, w.stopped])).toEqual([
        ['Failed', 'deploy pipeline: did not finish within 2s'],
        ['Failed', 'deploy pipeline: did not finish within 2s'],
      ]);
      expect(err.message).toMatch(
        new RegExp(`: suite govuk-e2e-tests: Argo Workflows template govuk-e2e-tests in ${ENV} did not finish within 2s; stopped workflow apps/${submitted[1]!.name} \\(after 2 attempts\\)$`),
      );
    });

    it('stops the workflow when the pipeline is cancelled', async () => {
      stack.setSuiteOutcome(ON_ARGO, ENV, { result: 'hang' });
      const before = argoWorkflows().workflows.length;
      const { env } = pipelineRun();
      const running = inActivity(env, activities.runSmokeTests, step(ON_ARGO));
      const workflow = await waitFor(() => argoWorkflows().workflows.slice(before).find((w) => w.phase === 'Running'), { timeoutMs: 5000, description: 'the suite to run' });
      env.cancel();
      await expect(running).rejects.toBeInstanceOf(CancelledFailure);
      expect(workflow).toMatchObject({ phase: 'Failed', stopped: 'deploy pipeline: the deploy pipeline was cancelled' });
    });

    it('a retry after its worker died follows the workflow the first try submitted, with or without its heartbeats', async () => {
      stack.setSuiteOutcome(ON_ARGO, ENV, { result: 'hang' });
      const before = argoWorkflows().workflows.length;
      const first = pipelineRun();
      const dying = inActivity(first.env, activities.runSmokeTests, step(ON_ARGO));
      const workflow = await waitFor(() => argoWorkflows().workflows.slice(before).find((w) => w.phase === 'Running'), { timeoutMs: 5000, description: 'the suite to run' });
      // A worker shutting down cancels its steps too: that must not stop the suite another worker takes over.
      first.env.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true }));
      await expect(dying).rejects.toBeInstanceOf(CancelledFailure);
      expect(workflow.phase).toBe('Running');

      // As if the worker died before its first heartbeat: the retry knows nothing but its key.
      const retry = inActivity(pipelineRun(undefined, first.id).env, activities.runSmokeTests, step(ON_ARGO));
      // And as if it heartbeated: the retry picks up the workflow by name.
      const resumed = inActivity(pipelineRun({ suite: 0, attempt: 1, run: workflow.name, startedAtMs: Date.now() }, first.id).env, activities.runSmokeTests, step(ON_ARGO));
      await waitFor(() => argoWorkflows().requests.filter((r) => r.method === 'POST' && r.status === 409).length > 0, { timeoutMs: 5000, description: 'the retry to find the workflow' });
      stack.setSuiteOutcome(ON_ARGO, ENV, { result: 'pass' });
      for (const outcomes of await Promise.all([retry, resumed])) expect(outcomes.at(-1)).toMatchObject({ ok: true, run: workflow.name });
      expect(argoWorkflows().workflows.slice(before)).toEqual([expect.objectContaining({ name: workflow.name, phase: 'Succeeded' })]);
    });

    it('submits the workflow again under its name when it was deleted while followed', async () => {
      stack.setSuiteOutcome(ON_ARGO, ENV, { result: 'hang' });
      const before = argoWorkflows().workflows.length;
      const running = inActivity(pipelineRun().env, activities.runSmokeTests, step(ON_ARGO));
      const workflow = await waitFor(() => argoWorkflows().workflows.slice(before).find((w) => w.phase === 'Running'), { timeoutMs: 5000, description: 'the suite to run' });
      argoWorkflows().workflows.splice(argoWorkflows().workflows.indexOf(workflow), 1);
      await waitFor(() => argoWorkflows().workflows.slice(before).some((w) => w.name === workflow.name), { timeoutMs: 5000, description: 'the workflow to be submitted again' });
      stack.setSuiteOutcome(ON_ARGO, ENV, { result: 'pass' });
      expect((await running).at(-1)).toMatchObject({ ok: true, run: workflow.name });
      expect(argoWorkflows().workflows.slice(before)).toEqual([expect.objectContaining({ name: workflow.name, phase: 'Succeeded' })]);
    });

    it('the cluster\'s Argo Workflows refuses a token of another cluster, and knows no workflow of another', async () => {
      const { createArgoWorkflowsClient } = await import('../adapters');
      const wrongToken = createArgoWorkflowsClient({ url: argoWorkflows().url, token: 'argo-workflows-production-not-this-one' });
      await expect(wrongToken.getWorkflow('apps', 'govuk-e2e-tests-0000000000000000')).rejects.toThrow(/^Argo Workflows GET .* returned 401: token not valid/);
      const rightToken = createArgoWorkflowsClient({ url: argoWorkflows().url, token: stack.env.ARGO_WORKFLOWS_TOKEN_INTEGRATION! });
      await expect(rightToken.getWorkflow('apps', 'govuk-e2e-tests-0000000000000000')).rejects.toThrow(/returned 404: workflows\.argoproj\.io "govuk-e2e-tests-0000000000000000" not found/);
      await expect(
        rightToken.submitFromTemplate({ namespace: 'apps', template: 'publishing-e2e-tests', name: 'publishing-e2e-tests-1', parameters: {}, labels: {} }),
      ).rejects.toThrow(/returned 400: workflowtemplates\.argoproj\.io "publishing-e2e-tests" not found \(the integration cluster, namespace apps\)/);
    });
  });

  describe('githubWorkflow: a GitHub Actions workflow dispatched with inputs', () => {
    it('passes once the run succeeded, dispatched with the inputs and a key its run-name carries', async () => {
      const before = smokeRuns(ON_GITHUB).length;
      const { env, heartbeats } = pipelineRun();
      const outcomes = await inActivity(env, activities.runSmokeTests, step(ON_GITHUB));
      const runs = smokeRuns(ON_GITHUB).slice(before);
      expect(runs).toHaveLength(1);
      expect(runs[0]!.inputs).toEqual({ environment: ENV, tag: tags[ON_GITHUB], smokeRun: expect.stringMatching(/^smoke-[0-9a-f]{16}$/) });
      expect(runs[0]!.displayTitle).toContain(String(runs[0]!.inputs.smokeRun));
      expect(outcomes.at(-1)).toEqual({ suite: 'e2e', ok: true, run: String(runs[0]!.id), detail: `run https://github.com/${stack.repoOf(ON_GITHUB)}/actions/runs/${runs[0]!.id} succeeded` });
      expect(heartbeats).toContainEqual(expect.objectContaining({ suite: 0, attempt: 1, run: String(runs[0]!.id) }));
    });

    it('fails for good naming the failed job and its page', async () => {
      stack.setSuiteOutcome(ON_GITHUB, ENV, { result: 'fail', node: 'e2e (chromium)' });
      const before = smokeRuns(ON_GITHUB).length;
      const err = await errorFrom(() => inActivity(pipelineRun().env, activities.runSmokeTests, step(ON_GITHUB)));
      const runs = smokeRuns(ON_GITHUB).slice(before);
      expect(runs.map((run) => run.conclusion)).toEqual(['failure', 'failure']);
      const last = runs[1]!;
      const page = `https://github.com/${stack.repoOf(ON_GITHUB)}/actions/runs/${last.id}`;
      expect(err).toMatchObject({ type: 'SmokeTestFailed', nonRetryable: true });
      expect(err.message).toBe(
        `smoke test failed for ${ON_GITHUB} ${tags[ON_GITHUB]} in ${ENV}: suite e2e: run ${page} ended "failure"; job "e2e (chromium)" failure (${page}/job/${last.jobs[0]!.id}) (after 2 attempts)`,
      );
    });

    it('a run that ends without running a job (startup_failure) fails the same way, with its conclusion', async () => {
      stack.setSuiteOutcome(ON_GITHUB, ENV, { result: 'error' });
      const before = smokeRuns(ON_GITHUB).length;
      const err = await errorFrom(() => inActivity(pipelineRun().env, activities.runSmokeTests, step(ON_GITHUB)));
      const runs = smokeRuns(ON_GITHUB).slice(before);
      expect(runs.map((run) => [run.conclusion, run.jobs.length])).toEqual([
        ['startup_failure', 0],
        ['startup_failure', 0],
      ]);
      expect(err).toMatchObject({ type: 'SmokeTestFailed' });
      expect(err.message).toMatch(new RegExp(`: suite e2e: run https://github\\.com/${stack.repoOf(ON_GITHUB)}/actions/runs/${runs[1]!.id} ended "startup_failure" \\(after 2 attempts\\)$`));
    });

    it('cancels a run that outlives the suite\'s timeout', async () => {
      stack.setSuiteOutcome(ON_GITHUB, ENV, { result: 'hang' });
      const before = smokeRuns(ON_GITHUB).length;
      const err = await errorFrom(() => inActivity(pipelineRun().env, activities.runSmokeTests, step(ON_GITHUB)));
      expect(smokeRuns(ON_GITHUB).slice(before).map((run) => run.conclusion)).toEqual(['cancelled', 'cancelled']);
      expect(err.message).toMatch(/: suite e2e: GitHub Actions workflow smoke-tests\.yml of alphagov\/search-api for integration did not finish within 2s; stopped run https:\/\/github\.com\/.*\(after 2 attempts\)$/);
    });

    it('cancels the run when the pipeline is cancelled', async () => {
      stack.setSuiteOutcome(ON_GITHUB, ENV, { result: 'hang' });
      const before = smokeRuns(ON_GITHUB).length;
      const { env } = pipelineRun();
      const running = inActivity(env, activities.runSmokeTests, step(ON_GITHUB));
      const run = await waitFor(() => smokeRuns(ON_GITHUB).slice(before).find((r) => r.status === 'in_progress'), { timeoutMs: 5000, description: 'the suite to run' });
      // Let the step see its run before the cancellation reaches it.
      await waitFor(() => stack.github.requests.some((r) => r.path.endsWith('/actions/workflows/smoke-tests.yml/runs') && r.time > run.createdAt), { timeoutMs: 5000, description: 'the step to list runs' });
      env.cancel();
      await expect(running).rejects.toBeInstanceOf(CancelledFailure);
      expect(run).toMatchObject({ status: 'completed', conclusion: 'cancelled' });
    });

    it('a retry after its worker died finds the run by its key instead of dispatching another', async () => {
      stack.setSuiteOutcome(ON_GITHUB, ENV, { result: 'hang' });
      const before = smokeRuns(ON_GITHUB).length;
      const first = pipelineRun();
      const dying = inActivity(first.env, activities.runSmokeTests, step(ON_GITHUB));
      const run = await waitFor(() => smokeRuns(ON_GITHUB).slice(before).find((r) => r.status === 'in_progress'), { timeoutMs: 5000, description: 'the suite to run' });
      first.env.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true }));
      await expect(dying).rejects.toBeInstanceOf(CancelledFailure);
      const retry = inActivity(pipelineRun(undefined, first.id).env, activities.runSmokeTests, step(ON_GITHUB));
      await new Promise((resolve) => setTimeout(resolve, 300));
      stack.setSuiteOutcome(ON_GITHUB, ENV, { result: 'pass' });
      expect((await retry).at(-1)).toMatchObject({ ok: true, run: String(run.id) });
      expect(smokeRuns(ON_GITHUB).slice(before)).toEqual([expect.objectContaining({ id: run.id, conclusion: 'success' })]);
    });
  });
});
