import { createAnnouncementActivities } from './announcements';
import { createApproverActivities } from './approvers';
import { createArgoCdActivities } from './argocd';
import { createChartsActivities } from './charts';
import { createImageActivities } from './image';
import { createLaneActivities } from './lanes';
import { createResolveActivities } from './resolve';
import { createSmokeTestActivities } from './smoke-tests';
import { createStage, type ActivityDependencies } from './stage';

/**
 * The pipeline's steps, one stage per file in the order the pipeline runs them. Each stage's factory gets the
 * same opening (stage.ts); the worker registers what this returns under the activity names the workflows call.
 */
export function createActivities(deps: ActivityDependencies) {
  const stage = createStage(deps);
  return {
    ...createResolveActivities(stage),
    ...createImageActivities(stage),
    ...createLaneActivities(stage),
    ...createChartsActivities(stage),
    ...createAnnouncementActivities(stage),
    ...createArgoCdActivities(stage),
    ...createSmokeTestActivities(stage),
    ...createApproverActivities(stage),
  };
}

export type PipelineActivities = ReturnType<typeof createActivities>;

export type { ActivityDependencies, EnvironmentStep, PollingSettings } from './stage';
export type { GitHubDeploymentRequest } from './announcements';
export type { SyncedState, SyncTarget } from './argocd';
export type { BumpOutcome, BumpRequest, DeployedRelease, ThawProgress, ThawRequest } from './charts';
export type { BuildRequest } from './image';
export type { LaneSignalRequest } from './lanes';
