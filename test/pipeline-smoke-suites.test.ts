/**
 * Pipelines whose smoke tests are end-to-end suites: GOV.UK's `govuk-e2e-tests` WorkflowTemplate in each
 * environment's cluster, or a GitHub Actions workflow. A failing suite rolls back and holds as a failing HTTP check
 * does; a cancelled pipeline stops its suite.
 */
import { CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import { failureOf, startHarness, type PipelineHarness } from './support/pipeline';
import { waitFor } from './support/env';

const ARGO_PASSES = 'whitehall';
const ARGO_FAILS = 'publisher';
const GITHUB_FAILS = 'search-api';
const GITHUB_CANCELLED = 'frontend';

const onArgo = { integration: { smokeSuite: 'argoWorkflow' as const }, staging: { smokeSuite: 'argoWorkflow' as const } };
const onGitHub = { integration: { smokeSuite: 'githubWorkflow' as const }, staging: { smokeSuite: 'githubWorkflow' as const } };

describe('pipelines with end-to-end smoke suites', () => {
  let h: PipelineHarness;

  beforeAll(async () => {
    h = await startHarness({
      apps: { [ARGO_PASSES]: { environments: onArgo }, [ARGO_FAILS]: { environments: onArgo }, [GITHUB_FAILS]: { environments: onGitHub }, [GITHUB_CANCELLED]: { environments: onGitHub } },
      argo: { perEnvironment: true },
      smokeRetryInterval: '100ms',
      suite: { runMs: 100, timeout: '1m' },
      // A cancellation reaches a step with its next heartbeat, sent at most every 0.8 × this.
      stepRetry: { heartbeatTimeout: '2s' },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  const holdsOf = async (app: string) => JSON.parse((await h.cli(['hold', 'list', '--app', app, '--json'])).out.join('\n')) as Array<Record<string, string>>;

  it('runs the suite in each environment\'s own cluster and goes on when it passes', async () => {
    const sha = await h.stack.merge(ARGO_PASSES);
    const { workflowId } = await h.startCi(ARGO_PASSES, sha);
    await h.handle(workflowId).result();
    expect((await h.status(workflowId)).status).toBe('SUCCEEDED');
    for (const environment of ['integration', 'staging']) {
      expect(h.stack.argoWorkflowsOf(environment).workflowsOf(ARGO_PASSES)).toEqual([
        expect.objectContaining({ phase: 'Succeeded', parameters: { testArgs: `--grep=@app-${ARGO_PASSES} --grep-invert=@not-${environment}` } }),
      ]);
    }
  });

  it('a failing Argo workflow rolls the environment back and holds it, with the failed node\'s message', async () => {
    h.stack.setSuiteOutcome(ARGO_FAILS, 'staging', { result: 'fail', node: 'publisher-specs', message: 'Error (exit code 1)' });
    const sha = await h.stack.merge(ARGO_FAILS);
    const { workflowId } = await h.startCi(ARGO_FAILS, sha);
    const message = await failureOf(h, workflowId);
    expect(message).toMatch(
      new RegExp(`^smoke test failed for ${ARGO_FAILS} ${sha} in staging: suite govuk-e2e-tests: workflow apps/govuk-e2e-tests-[0-9a-f]{16} ended Failed: node publisher-specs: Error \\(exit code 1\\) \\(after 2 attempts\\); rolled staging back to initial and put a hold on automatic deploys there$`),
    );
    const status = await h.status(workflowId);
    expect(status.status).toBe('ROLLED_BACK');
    expect(status.environments.map((e) => e.state)).toEqual(['DEPLOYED', 'ROLLED_BACK']);
    expect(h.stack.argoOf('staging').currentTag(ARGO_FAILS, 'staging')).toBe('initial');
    expect(h.stack.argoWorkflowsOf('staging').workflowsOf(ARGO_FAILS).map((w) => w.phase)).toEqual(['Failed', 'Failed']);
    expect(await holdsOf(ARGO_FAILS)).toMatchObject([{ environment: 'staging', reason: expect.stringMatching(/^rolled back from [0-9a-f]{40}: smoke test failed .*node publisher-specs/) }]);
  });

  it('a failing GitHub Actions run rolls back and holds, naming the failed job and its page', async () => {
    h.stack.setSuiteOutcome(GITHUB_FAILS, 'integration', { result: 'fail', node: 'e2e (firefox)' });
    const sha = await h.stack.merge(GITHUB_FAILS);
    const { workflowId } = await h.startCi(GITHUB_FAILS, sha);
    const message = await failureOf(h, workflowId);
    const runs = h.stack.github.runs.filter((run) => run.repo === h.stack.repoOf(GITHUB_FAILS) && run.workflowFile === 'smoke-tests.yml');
    expect(runs.map((run) => [run.inputs.environment, run.conclusion])).toEqual([
      ['integration', 'failure'],
      ['integration', 'failure'],
    ]);
    const page = `https://github.com/${h.stack.repoOf(GITHUB_FAILS)}/actions/runs/${runs[1]!.id}`;
    expect(message).toBe(
      `smoke test failed for ${GITHUB_FAILS} ${sha} in integration: suite e2e: run ${page} ended "failure"; job "e2e (firefox)" failure (${page}/job/${runs[1]!.jobs[0]!.id}) (after 2 attempts); rolled integration back to initial and put a hold on automatic deploys there`,
    );
    expect((await h.status(workflowId)).status).toBe('ROLLED_BACK');
    expect(await holdsOf(GITHUB_FAILS)).toMatchObject([{ environment: 'integration', reason: expect.stringContaining('job "e2e (firefox)"') }]);
  });

  async function cancelledWhileTesting(app: string, started: () => boolean): Promise<void> {
    const sha = await h.stack.merge(app);
    const { workflowId } = await h.startCi(app, sha);
    await h.waitForStatus(workflowId, (s) => s.status === 'SMOKE_TESTING', 'the smoke tests');
    await waitFor(started, { timeoutMs: 10_000, description: 'the suite to run' });
    await h.handle(workflowId).cancel();
    const err = await h.handle(workflowId).result().catch((caught: unknown) => caught);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect((await h.status(workflowId)).status).toBe('CANCELLED');
  }

  it('a cancelled pipeline stops its Argo workflow before it ends', async () => {
    h.stack.setSuiteOutcome(ARGO_PASSES, 'integration', { result: 'hang' });
    try {
      const before = h.stack.argoWorkflowsOf('integration').workflowsOf(ARGO_PASSES).length;
      const running = () => h.stack.argoWorkflowsOf('integration').workflowsOf(ARGO_PASSES).slice(before);
      await cancelledWhileTesting(ARGO_PASSES, () => running().some((w) => w.phase === 'Running'));
      expect(running()).toEqual([expect.objectContaining({ phase: 'Failed', stopped: 'deploy pipeline: the deploy pipeline was cancelled' })]);
    } finally {
      h.stack.setSuiteOutcome(ARGO_PASSES, 'integration', { result: 'pass' });
    }
  });

  it('a cancelled pipeline cancels its GitHub Actions run before it ends', async () => {
    h.stack.setSuiteOutcome(GITHUB_CANCELLED, 'integration', { result: 'hang' });
    const runs = () => h.stack.github.runs.filter((run) => run.repo === h.stack.repoOf(GITHUB_CANCELLED) && run.workflowFile === 'smoke-tests.yml');
    await cancelledWhileTesting(GITHUB_CANCELLED, () => runs().some((run) => run.status === 'in_progress'));
    expect(runs()).toEqual([expect.objectContaining({ status: 'completed', conclusion: 'cancelled' })]);
  });
});
