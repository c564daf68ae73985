/** What the pipeline tells the outside world as it goes: GitHub deployments and Slack messages. */
import { isCancellation, log } from '@temporalio/workflow';
import type { PipelineState } from './pipeline-state';
import type { Steps } from './steps';

export type DeploymentState = 'in_progress' | 'success' | 'failure' | 'inactive';

export class Reports {
  constructor(
    private readonly pipeline: PipelineState,
    private readonly steps: Steps,
  ) {}

  tellPeople(text: string): Promise<void> {
    return bestEffort('notify people', () => this.steps.recorded.notifyPeople.executeWithOptions({ summary: 'Tell people on Slack' }, [{ text }]));
  }

  /** The environment's GitHub deployment; there is none before the release is resolved. */
  reportDeployment(environment: string, state: DeploymentState, description: string): Promise<void> {
    const { plan, status } = this.pipeline;
    if (!plan) return Promise.resolve();
    // Who let it through, and how they were known, goes with the deployment's record on GitHub.
    const approval = status.environments.find((e) => e.environment === environment)?.approval;
    const approvedBy = approval ? `; approved by ${approval.by}${approval.channel && approval.channel !== 'claimed' ? ` (${approval.channel})` : ''}` : '';
    const request = { app: plan.app, environment, sha: plan.sha, state, description: `${description}${approvedBy}`, ...(status.imageDigest ? { imageDigest: status.imageDigest } : {}) };
    return bestEffort('record the GitHub deployment', () =>
      this.steps.calls.recordGitHubDeployment.executeWithOptions({ summary: `GitHub deployment ${environment}: ${state}` }, [request]),
    );
  }
}

/** Outside reports must never turn a pipeline's outcome into another: a failed one is logged. */
async function bestEffort(what: string, report: () => Promise<void>): Promise<void> {
  try {
    await report();
  } catch (err) {
    if (isCancellation(err)) throw err;
    log.warn(`could not ${what}`, { error: (err as Error).message });
  }
}
