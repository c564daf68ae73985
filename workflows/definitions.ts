/** The public names of the DeployPipeline workflow, shared by the workflow, the worker and the CLI. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { ApprovalReceipt, ApproveRequest, Hold, LaneDeployed, LaneRequest, LaneState, PipelineStatus, RejectRequest } from '../common/types';

export const WORKFLOW_TYPE = 'DeployPipeline';
export const DEFAULT_TASK_QUEUE = 'deployments';

export const approveSignal = defineSignal<[ApproveRequest]>('approve');
export const rejectSignal = defineSignal<[RejectRequest]>('reject');
/** Same names as the signals: the CLI uses the updates for an immediate, precise refusal. */
export const approveUpdate = defineUpdate<ApprovalReceipt, [ApproveRequest]>('approve');
export const rejectUpdate = defineUpdate<ApprovalReceipt, [RejectRequest]>('reject');
export const statusQuery = defineQuery<PipelineStatus>('status');

export const DeployApp = defineSearchAttributeKey('DeployApp', SearchAttributeType.KEYWORD);
export const DeployCommit = defineSearchAttributeKey('DeployCommit', SearchAttributeType.KEYWORD);
export const DeployEnvironment = defineSearchAttributeKey('DeployEnvironment', SearchAttributeType.KEYWORD);
export const DeployStatusAttribute = defineSearchAttributeKey('DeployStatus', SearchAttributeType.KEYWORD);
export const DeployTrigger = defineSearchAttributeKey('DeployTrigger', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [DeployApp, DeployCommit, DeployEnvironment, DeployStatusAttribute, DeployTrigger];

export const LANE_WORKFLOW_TYPE = 'DeployLane';

/** Lanes belong to a task queue: two deploy systems sharing a namespace keep separate lanes and holds. */
export function laneWorkflowId(taskQueue: string, app: string, environment: string): string {
  return `lane-${taskQueue}-${app}-${environment}`;
}

/** Pipeline → lane. */
export const acquireLaneSignal = defineSignal<[LaneRequest]>('acquire');
/** `deployed`: the releasing pipeline deployed here; the lane tells pipelines waiting for approval there. */
export const releaseLaneSignal = defineSignal<[{ pipelineId: string; deployed?: LaneDeployed }]>('release');
export const awaitingApprovalSignal = defineSignal<[LaneRequest]>('awaitingApproval');
export const stoppedAwaitingSignal = defineSignal<[{ pipelineId: string }]>('stoppedAwaiting');
export const setHoldSignal = defineSignal<[Hold]>('setHold');
/** People → lane. */
export const clearHoldUpdate = defineUpdate<Hold, [{ by: string }]>('clearHold');
export const laneStateQuery = defineQuery<LaneState>('laneState');

/** Lane → pipeline. */
export const laneGrantedSignal = defineSignal<[{ environment: string }]>('laneGranted');
export const laneWaitingSignal = defineSignal<[{ environment: string; reason: string }]>('laneWaiting');
export const newerDeployedSignal = defineSignal<[{ environment: string } & LaneDeployed]>('newerDeployed');
/** Asks nothing: the lane learns its holder has ended when this cannot be delivered. */
export const laneHolderCheckSignal = defineSignal<[{ environment: string }]>('laneHolderCheck');
