import { deployedToTag, shortSha, validateImageTag } from '../common/names';
import { FailureTypes } from '../common/types';
import { classified, permanent, type EnvironmentStep, type Stage } from './stage';

export interface BuildRequest {
  app: string;
  sha: string;
  tag: string;
}

/**
 * Step 2, the image: is it where the app's builds push it, have GitHub Actions build it, wait for it; and step
 * 3.3, tag it deployed where the team looks for that. A pull-through cache is never asked whether an image
 * exists: it holds one only once something pulled it.
 */
export function createImageActivities(stage: Stage) {
  const { sourceHost } = stage.deps;

  return {
    /** The image's digest when the registry has the tag, else false (1.0's pipelines read it as a boolean). */
    async imageExists(appName: string, tag: string): Promise<string | false> {
      return classified(async () => {
        const { built } = stage.app(appName).image;
        return (await stage.registryOf(built).digestOf(built.repository, validateImageTag(tag))) ?? false;
      });
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

    /** Waits for the image and returns its digest; the workflow bounds it with the app's build timeout. */
    async waitForImage(request: BuildRequest): Promise<string> {
      return classified(async () => {
        const app = stage.app(request.app);
        const { built } = app.image;
        const registry = stage.registryOf(built);
        const tag = validateImageTag(request.tag);
        return stage.pollUntil(async () => {
          const digest = await registry.digestOf(built.repository, tag);
          if (digest) return digest;
          const runs = await sourceHost.listWorkflowRuns(app.repo, app.build.workflow);
          const ours = runs.filter((run) => run.displayTitle.includes(request.sha));
          const latest = ours.sort((a, b) => b.id - a.id)[0];
          if (latest && latest.status === 'completed' && latest.conclusion !== 'success') {
            const where = latest.htmlUrl ? ` (${latest.htmlUrl})` : '';
            throw permanent(
              FailureTypes.ImageBuildFailed,
              `image build for ${app.name} ${shortSha(request.sha)} ended "${latest.conclusion}"${where}; no image ${built.repository}:${tag}`,
            );
          }
          return undefined;
        });
      });
    },

    /**
     * Marks the image as deployed to the environment. With the digest the pipeline checked, the tag goes on that
     * very image, whatever the release's tag names by now.
     */
    async tagImage(step: EnvironmentStep): Promise<void> {
      return classified(async () => {
        const { app, env } = stage.target(step);
        const where = app.image.deployedToTags;
        await stage.registryOf(where).addTag(where.repository, step.digest ?? validateImageTag(step.tag), deployedToTag(env.name));
      });
    },
  };
}
