import { deployedToTag, shortSha, validateImageTag } from '../common/names';
import { FailureTypes } from '../common/types';
import { classified, permanent, type EnvironmentStep, type Stage } from './stage';

export interface BuildRequest {
  app: string;
  sha: string;
  tag: string;
}

/** Step 2, the image: is it in ECR, have GitHub Actions build it, wait for it; and step 3.3, tag it deployed. */
export function createImageActivities(stage: Stage) {
  const { registry, sourceHost } = stage.deps;

  return {
    async imageExists(app: string, tag: string): Promise<boolean> {
      return classified(() => registry.hasImage(stage.app(app).imageRepository, validateImageTag(tag)));
    },

    /** Asks GitHub Actions to build the image, unless a build for this commit is already known. */
    async dispatchImageBuild(request: BuildRequest): Promise<void> {
      return classified(async () => {
        const app = stage.app(request.app);
        // The build workflow's run-name carries the commit, so a retried dispatch can see the first one.
        const runs = await sourceHost.listWorkflowRuns(app.repo, app.build.workflow);
        const running = runs.some((run) => run.displayTitle.includes(request.sha) && run.conclusion !== 'failure' && run.conclusion !== 'cancelled');
        if (running) return;
        await sourceHost.dispatchWorkflow(app.repo, app.build.workflow, app.build.ref, { gitRef: request.sha });
      });
    },

    /** Waits for the image; the workflow bounds it with the app's build timeout. */
    async waitForImage(request: BuildRequest): Promise<void> {
      return classified(async () => {
        const app = stage.app(request.app);
        const tag = validateImageTag(request.tag);
        await stage.pollUntil(async () => {
          if (await registry.hasImage(app.imageRepository, tag)) return true;
          const runs = await sourceHost.listWorkflowRuns(app.repo, app.build.workflow);
          const ours = runs.filter((run) => run.displayTitle.includes(request.sha));
          const latest = ours.sort((a, b) => b.id - a.id)[0];
          if (latest && latest.status === 'completed' && latest.conclusion !== 'success') {
            const where = latest.htmlUrl ? ` (${latest.htmlUrl})` : '';
            throw permanent(
              FailureTypes.ImageBuildFailed,
              `image build for ${app.name} ${shortSha(request.sha)} ended "${latest.conclusion}"${where}; no image ${app.imageRepository}:${tag}`,
            );
          }
          return undefined;
        });
      });
    },

    /** Marks the image as deployed to the environment in ECR. */
    async tagImage(step: EnvironmentStep): Promise<void> {
      return classified(async () => {
        const { app, env } = stage.target(step);
        await registry.addTag(app.imageRepository, validateImageTag(step.tag), deployedToTag(env.name));
      });
    },
  };
}
