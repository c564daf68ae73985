/** The public names of the DeployPipeline and DeployLane workflows, shared by the workflows, the worker and the CLI. */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { ApprovalReceipt, ApproveRequest, PipelineStatus, RejectRequest } from '../common/types';

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

/** The lane's names live with the rest of its protocol; they are public too. */
export {
  acquireLaneSignal,
  awaitingApprovalSignal,
  clearHoldUpdate,
  LANE_WORKFLOW_TYPE,
  laneGrantedSignal,
  laneHolderCheckSignal,
  laneStateQuery,
  laneWaitingSignal,
  laneWorkflowId,
  newerDeployedSignal,
  releaseLaneSignal,
  setHoldSignal,
  stoppedAwaitingSignal,
} from './lane-protocol';
export type { LaneGrant, LaneInput, LaneRelease, LaneView, NewerDeployed } from './lane-protocol';
