/**
 * What a pipeline and its lane say to each other: the lane's workflow ID, its input, and the signals each side sends
 * and hears, with their payloads. The pipeline, the lane and the activity that signals-with-start a lane all use it.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DecisionProof, Hold, LaneDeployed, LaneRequest, LaneState, NewerFollows } from '../common/types';

export type { FollowerWatch, Hold, LaneDeployed, LaneHolder, LaneRequest, LaneState, NewerFollows } from '../common/types';

export const LANE_WORKFLOW_TYPE = 'DeployLane';

/**
 * Lanes belong to a task queue: two deploy systems sharing a namespace keep separate lanes and holds. App and
 * environment names cannot hold a "/", so the last two parts name them whatever the task queue is called, and no
 * two (task queue, app, environment) share a lane (with "-" between them, app "search" in "api-staging" and app
 * "search-api" in "staging" did).
 */
export function laneWorkflowId(taskQueue: string, app: string, environment: string): string {
  return `lane/${taskQueue}/${app}/${environment}`;
}

export interface LaneInput {
  app: string;
  environment: string;
  /** Carried over by continue-as-new. */
  state?: LaneState;
  /** How often a lane with pipelines waiting checks that its holder still runs (default one minute). */
  holderCheckIntervalMs?: number;
}

/**
 * `token`: the one `laneGranted` carried; a release without the holder's token is ignored, news and all.
 * `deployed`: the releasing pipeline deployed here; the lane tells pipelines waiting for approval there.
 */
export interface LaneRelease {
  pipelineId: string;
  token?: string;
  deployed?: LaneDeployed;
  /** 1.4: the pipeline goes on to its next environment by itself, and waits to hear whether a newer commit follows it here. */
  awaitsFollower?: boolean;
}

/**
 * What the `laneState` query shows: the state without the holder's token. Web UI and `temporal workflow query` show
 * it to anyone who looks; the token stays in the lane's history, which stops a release sent by hand in a pipeline's
 * name, not someone who reads that history.
 */
export type LaneView = Omit<LaneState, 'holder'> & { holder?: LaneRequest };

export interface LaneGrant {
  environment: string;
  /** Absent from lanes started before 1.1. */
  token?: string;
  /** The last deploy through the lane, if it knows one: a pipeline it supersedes names it. */
  lastDeployed?: LaneDeployed;
  /** From 1.4's lanes: a release may ask to hear whether a newer commit follows (`newerFollows`). */
  tellsFollower?: boolean;
  /** From 1.4's lanes: others wait in the queue behind this grant (one that queues later brings a `laneHolderCheck`). */
  othersQueued?: boolean;
}

/** A newer release reached `environment` while the pipeline told waits there, for approval or (from 1.2) in the queue. */
export type NewerDeployed = { environment: string } & LaneDeployed;

/** Pipeline → lane. */
export const acquireLaneSignal = defineSignal<[LaneRequest]>('acquire');
export const releaseLaneSignal = defineSignal<[LaneRelease]>('release');
export const awaitingApprovalSignal = defineSignal<[LaneRequest]>('awaitingApproval');
export const stoppedAwaitingSignal = defineSignal<[{ pipelineId: string }]>('stoppedAwaiting');
export const setHoldSignal = defineSignal<[Hold]>('setHold');
/** People → lane. */
/** `proof`: the person's, over the lane's ID, the environment and the hold's `setAt` (action `clear-hold`). */
export interface ClearHoldRequest {
  by: string;
  proof?: DecisionProof;
}
export const clearHoldUpdate = defineUpdate<Hold, [ClearHoldRequest]>('clearHold');
export const laneStateQuery = defineQuery<LaneView>('laneState');

/** Lane → pipeline. */
/** `token`: what the pipeline sends back with its release. */
export const laneGrantedSignal = defineSignal<[LaneGrant]>('laneGranted');
export const laneWaitingSignal = defineSignal<[{ environment: string; reason: string }]>('laneWaiting');
export const newerDeployedSignal = defineSignal<[NewerDeployed]>('newerDeployed');
export const newerFollowsSignal = defineSignal<[NewerFollows]>('newerFollows');
/** Asks nothing: the lane learns its holder has ended when this cannot be delivered. */
export const laneHolderCheckSignal = defineSignal<[{ environment: string }]>('laneHolderCheck');
