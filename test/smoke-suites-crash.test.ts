/**
 * A worker killed (`kill -9`) while an end-to-end suite runs, or between starting the suite and its first heartbeat
 * naming it: the step's retry on a new worker follows the suite the dead one started, and the pipeline finishes
 * with one suite run per environment, never two.
 */
import { startPipeline } from '../client/pipelines';
import type { PipelineStatus } from '../common/types';
import { statusQuery } from '../workflows/definitions';
import { startCrashHarness, type CrashHarness, type WorkerProcess } from './support/crash-harness';
import { waitFor } from './support/env';
import { uniqueTaskQueue } from './support/temporal';

const MID_SUITE = 'whitehall';
const BEFORE_HEARTBEAT = 'publisher';
const GITHUB_BEFORE_HEARTBEAT = 'search-api';
const ENV = 'integration';

describe('a worker killed during an end-to-end smoke suite', () => {
  let h: CrashHarness;
  let taskQueue: string;
  let worker: WorkerProcess;

  beforeAll(async () => {
    h = await startCrashHarness({
      stack: {
        apps: {
          [MID_SUITE]: { environments: { [ENV]: { smokeSuite: 'argoWorkflow' } } },
          [BEFORE_HEARTBEAT]: { environments: { [ENV]: { smokeSuite: 'argoWorkflow' } } },
          [GITHUB_BEFORE_HEARTBEAT]: { environments: { [ENV]: { smokeSuite: 'githubWorkflow' } } },
        },
        polling: { initialIntervalMs: 100, maxIntervalMs: 300 },
        suite: { runMs: 200, timeout: '2m' },
        // A step whose worker died runs again once its heartbeats stop for this long.
        stepRetry: { maximumAttempts: 10, maximumInterval: '2s', attemptTimeout: '4s', heartbeatTimeout: '3s' },
      },
      workerEnv: { DEPLOY_TEST_STICKY_TIMEOUT: '1s' },
      serverDynamicConfig: { 'history.defaultWorkflowTaskTimeout': '"3s"' },
    });
    taskQueue = uniqueTaskQueue('suites-crash');
    worker = await h.startWorker(taskQueue);
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  async function start(app: string): Promise<string> {
    const sha = await h.stack.merge(app);
    const { workflowId } = await startPipeline({ app, ref: sha, requestedBy: 'ci' }, { client: h.client, taskQueue, catalogue: h.stack.catalogue, sourceHost: h.stack.dependencies.sourceHost });
    return workflowId;
  }

  async function killAndReplaceWorker(): Promise<void> {
    await worker.kill();
    worker = await h.startWorker(taskQueue);
  }

  async function finished(workflowId: string): Promise<PipelineStatus> {
    await h.client.workflow.getHandle(workflowId).result();
    return h.client.workflow.getHandle(workflowId).query(statusQuery);
  }

  it('a retry follows the Argo workflow the dead worker was following', async () => {
    const cluster = h.stack.argoWorkflowsOf(ENV);
    h.stack.setSuiteOutcome(MID_SUITE, ENV, { result: 'hang' });
    const workflowId = await start(MID_SUITE);
    const [submitted] = await waitFor(() => (cluster.workflowsOf(MID_SUITE).some((w) => w.phase === 'Running') ? cluster.workflowsOf(MID_SUITE) : undefined), {
      timeoutMs: 60_000,
      description: 'the suite to run',
    });
    const lookedAt = () => cluster.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/${submitted!.name}`)).length;
    await waitFor(() => lookedAt() >= 3, { timeoutMs: 10_000, description: 'the step to follow the workflow' });
    await killAndReplaceWorker();
    const seenBefore = lookedAt();
    await waitFor(() => lookedAt() > seenBefore, { timeoutMs: 30_000, description: 'the new worker to follow the workflow' });
    h.stack.setSuiteOutcome(MID_SUITE, ENV, { result: 'pass' });
    expect((await finished(workflowId)).status).toBe('SUCCEEDED');
    expect(cluster.workflowsOf(MID_SUITE)).toEqual([expect.objectContaining({ name: submitted!.name, phase: 'Succeeded' })]);
  }, 120_000);

  it('a worker killed after Argo Workflows took the submission, before it heard back: the retry finds the workflow by its name', async () => {
    const cluster = h.stack.argoWorkflowsOf(ENV);
    // The workflow is created; the answer, and so the heartbeat naming it, never reach the worker before it dies.
    cluster.injectFault({ method: 'POST', pathPattern: /\/submit$/, holdAnswerMs: 60_000 });
    const workflowId = await start(BEFORE_HEARTBEAT);
    await waitFor(() => cluster.workflowsOf(BEFORE_HEARTBEAT).length > 0, { timeoutMs: 60_000, description: 'the suite to be submitted' });
    await killAndReplaceWorker();
    expect((await finished(workflowId)).status).toBe('SUCCEEDED');
    expect(cluster.workflowsOf(BEFORE_HEARTBEAT)).toEqual([expect.objectContaining({ phase: 'Succeeded' })]);
    const submissions = cluster.requests.filter((r) => r.method === 'POST' && (r.body as { resourceName?: string } | undefined)?.resourceName === 'govuk-e2e-tests' && JSON.stringify(r.body).includes(BEFORE_HEARTBEAT));
    expect(submissions.map((r) => r.status)).toEqual([undefined, 409]);
  }, 120_000);

  it('a worker killed after GitHub took the dispatch, before it heard back: the retry finds the run by its key', async () => {
    h.stack.github.injectFault({ method: 'POST', pathPattern: /\/actions\/workflows\/smoke-tests\.yml\/dispatches$/, holdAnswerMs: 60_000 });
    const runs = () => h.stack.github.runs.filter((run) => run.repo === h.stack.repoOf(GITHUB_BEFORE_HEARTBEAT) && run.workflowFile === 'smoke-tests.yml');
    const workflowId = await start(GITHUB_BEFORE_HEARTBEAT);
    await waitFor(() => runs().length > 0, { timeoutMs: 60_000, description: 'the suite to be dispatched' });
    await killAndReplaceWorker();
    expect((await finished(workflowId)).status).toBe('SUCCEEDED');
    expect(runs()).toEqual([expect.objectContaining({ conclusion: 'success' })]);
  }, 120_000);
});
