import { log } from '@temporalio/activity';
import type { EnvironmentConfig } from '../common/catalogue';
import { PermanentHttpError } from '../common/errors';
import { fillPlaceholders, SMOKE_RUN_INPUT, type ArgoWorkflowSuite, type GitHubWorkflowSuite, type SmokeSuite } from '../common/smoke-suites';
import { FailureTypes } from '../common/types';
import { permanent, type EnvironmentStep, type Stage } from './stage';

/**
 * How each kind of end-to-end suite is started, found again, judged and stopped: an Argo Workflows WorkflowTemplate
 * in the environment's cluster, or a GitHub Actions workflow dispatched in a repository.
 */

export interface SuiteVerdict {
  ok: boolean;
  detail: string;
}

export interface SuiteDriver {
  /** The suite in words, for messages. */
  readonly what: string;
  /** One run in words: the Argo workflow's name, the GitHub run's page. */
  describe(run: string): string;
  /** The run an earlier try started under this key, if the system lists it. */
  find(key: string): Promise<string | undefined>;
  /** Starts the run of this key and returns it, or undefined when it is not known yet (a GitHub dispatch). */
  start(key: string): Promise<string | undefined>;
  /** The run's verdict once it ended; undefined while it runs. */
  verdict(run: string): Promise<SuiteVerdict | undefined>;
  stop(run: string, why: string): Promise<void>;
}

export function suiteDriver(stage: Stage, step: EnvironmentStep, env: EnvironmentConfig, suite: SmokeSuite): SuiteDriver {
  return suite.kind === 'argoWorkflow' ? argoWorkflowDriver(stage, step, env, suite) : githubWorkflowDriver(stage, step, env, suite);
}

/** Argo Workflows' names are DNS labels of at most 63 characters (they become pod labels). */
function argoWorkflowName(template: string, key: string): string {
  return `${template.slice(0, 63 - key.length - 1).replace(/[-.]+$/, '')}-${key}`;
}

function argoWorkflowDriver(stage: Stage, step: EnvironmentStep, env: EnvironmentConfig, suite: ArgoWorkflowSuite): SuiteDriver {
  const cluster = env.argoWorkflows;
  const argoWorkflowsOf = stage.deps.argoWorkflowsOf;
  if (!cluster || !argoWorkflowsOf) {
    throw permanent(FailureTypes.InvalidInput, `the worker has no Argo Workflows client for ${env.name}: the catalogue names no argoWorkflows.url there, or the worker was built without one`);
  }
  const client = argoWorkflowsOf(cluster);
  const { namespace } = cluster;
  const fill = { app: step.app, environment: step.environment, tag: step.tag };
  const submit = async (name: string) =>
    (
      await client.submitFromTemplate({
        namespace,
        template: suite.workflowTemplate,
        name,
        parameters: fillPlaceholders(suite.parameters, fill),
        labels: { 'deploy-pipelines/app': step.app, 'deploy-pipelines/environment': step.environment },
      })
    ).workflow;
  return {
    what: `Argo Workflows template ${suite.workflowTemplate} in ${env.name}`,
    describe: (run) => `workflow ${namespace}/${run}`,
    // A submission under the key's name finds the earlier one by itself (409 from Kubernetes).
    find: () => Promise.resolve(undefined),
    start: async (key) => (await submit(argoWorkflowName(suite.workflowTemplate, key))).name,
    async verdict(run) {
      const workflow = await client.getWorkflow(namespace, run).catch(async (err: unknown) => {
        // Deleted while we followed it (by a person, or a TTL): nothing runs under its name, so it runs again.
        if (!(err instanceof PermanentHttpError && err.status === 404)) throw err;
        log.warn('the smoke suite\'s workflow is gone; submitting it again', { workflow: run });
        return submit(run);
      });
      if (workflow.phase === 'Succeeded') return { ok: true, detail: `workflow ${namespace}/${run} Succeeded` };
      if (workflow.phase !== 'Failed' && workflow.phase !== 'Error') return undefined;
      const node = workflow.failedNodes.find((candidate) => candidate.message) ?? workflow.failedNodes[0];
      const nodeSays = node ? `node ${node.name}: ${node.message ?? workflow.phase}` : undefined;
      // A Failed workflow's own message only says "child failed"; an Error's says what broke the run.
      const why = workflow.phase === 'Error' && workflow.message ? `${workflow.message}${nodeSays ? ` (${nodeSays})` : ''}` : (nodeSays ?? workflow.message ?? 'no message');
      return { ok: false, detail: `workflow ${namespace}/${run} ended ${workflow.phase}: ${why}` };
    },
    stop: (run, why) => client.stopWorkflow(namespace, run, `deploy pipeline: ${why}`),
  };
}

function githubWorkflowDriver(stage: Stage, step: EnvironmentStep, env: EnvironmentConfig, suite: GitHubWorkflowSuite): SuiteDriver {
  const { sourceHost, actionsRuns } = stage.deps;
  if (!actionsRuns) throw permanent(FailureTypes.InvalidInput, 'the worker was built without a GitHub Actions runs client');
  const marker = (key: string) => `smoke-${key}`;
  const page = (id: string) => `https://github.com/${suite.repo}/actions/runs/${id}`;
  return {
    what: `GitHub Actions workflow ${suite.workflow} of ${suite.repo} for ${env.name}`,
    describe: (run) => `run ${page(run)}`,
    // As the image build is found: the workflow's run-name carries the key (`${{ inputs.smokeRun }}`).
    async find(key) {
      const runs = await sourceHost.listWorkflowRuns(suite.repo, suite.workflow);
      const ours = runs.filter((run) => run.displayTitle.includes(marker(key))).sort((a, b) => a.id - b.id)[0];
      return ours ? String(ours.id) : undefined;
    },
    async start(key) {
      const inputs = { ...fillPlaceholders(suite.inputs, { app: step.app, environment: step.environment, tag: step.tag }), [SMOKE_RUN_INPUT]: marker(key) };
      await sourceHost.dispatchWorkflow(suite.repo, suite.workflow, suite.ref, inputs);
      return undefined;
    },
    async verdict(run) {
      const found = await actionsRuns.getRun(suite.repo, Number(run));
      if (found.status !== 'completed') return undefined;
      const where = found.htmlUrl ?? page(run);
      if (found.conclusion === 'success') return { ok: true, detail: `run ${where} succeeded` };
      const jobs = await actionsRuns.jobsOfRun(suite.repo, found.id);
      const failed = jobs.find((job) => job.conclusion === 'failure') ?? jobs.find((job) => job.conclusion !== 'success' && job.conclusion !== 'skipped');
      const job = failed ? `; job "${failed.name}" ${failed.conclusion ?? failed.status}${failed.htmlUrl ? ` (${failed.htmlUrl})` : ''}` : '';
      return { ok: false, detail: `run ${where} ended "${found.conclusion ?? 'unknown'}"${job}` };
    },
    stop: (run) => actionsRuns.cancelRun(suite.repo, Number(run)),
  };
}
