import { Context } from '@temporalio/activity';
import { releaseVersion, validateImageTag } from '../common/names';
import type { DeploymentState } from '../common/ports';
import { classified, type EnvironmentStep, type Stage } from './stage';

export interface GitHubDeploymentRequest {
  app: string;
  environment: string;
  sha: string;
  state: DeploymentState;
  description: string;
  /** The digest of the image deployed, for the deployment's payload. */
  imageDigest?: string;
}

/** Step 3.4 and the side steps: the release app's record, GitHub's deployments, and messages for people (Slack). */
export function createAnnouncementActivities(stage: Stage) {
  const { releaseApp, deployments, notifier, webUi } = stage.deps;

  return {
    /** The idempotency key is the pipeline and environment, so a retry cannot record twice. */
    async notifyReleaseApp(step: EnvironmentStep): Promise<void> {
      return classified(async () => {
        const { app, env } = stage.target(step);
        const { info } = Context.current();
        const pipelineId = info.workflowExecution?.workflowId ?? info.activityId;
        await releaseApp.recordDeployment(
          { repo: app.repo, environment: env.name, version: releaseVersion(validateImageTag(step.tag)) },
          `${pipelineId}/${env.name}${step.purpose === 'rollback' ? '/rollback' : ''}`,
        );
      });
    },

    /** GitHub shows what is deployed where; one deployment per pipeline and environment. */
    async recordGitHubDeployment(request: GitHubDeploymentRequest): Promise<void> {
      return classified(async () => {
        const { app, env } = stage.target(request);
        // The pipeline's own namespace: a worker serves one, and the link must open the pipeline where it runs.
        const { workflowExecution, workflowNamespace } = Context.current().info;
        const pipelineId = workflowExecution?.workflowId ?? 'unknown';
        const id = await deployments.ensureDeployment(app.repo, {
          sha: request.sha,
          environment: env.name,
          pipelineId,
          description: `Deploy pipeline ${pipelineId}`,
          production: env.name === 'production',
          ...(request.imageDigest ? { image: { repository: app.image.built.repository, digest: request.imageDigest } } : {}),
        });
        await deployments.setDeploymentState(app.repo, id, {
          state: request.state,
          description: request.description,
          environmentUrl: env.url,
          logUrl: webUi ? `${webUi.url}/namespaces/${encodeURIComponent(workflowNamespace ?? 'default')}/workflows/${encodeURIComponent(pipelineId)}` : undefined,
        });
      });
    },

    /**
     * Tells people (Slack) about what needs them or went wrong; nothing when Slack is not configured. The key comes
     * from this step's own identity, which its retries share, so the workflow passes nothing new (running
     * pipelines replay unchanged) and a retry after a crash finds the message the crashed attempt posted.
     */
    async notifyPeople(request: { text: string }): Promise<void> {
      if (!notifier) return;
      const { workflowExecution, activityId, attempt, scheduledTimestampMs } = Context.current().info;
      const key = `${workflowExecution?.workflowId ?? '-'}/${workflowExecution?.runId ?? '-'}/${activityId}`;
      return classified(() => notifier.notify({ text: request.text, key, firstAttempt: attempt === 1, firstScheduledAtMs: scheduledTimestampMs }));
    },
  };
}
