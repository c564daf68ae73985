/** Data that crosses the workflow boundary. No Node imports: the workflow bundle uses it. */

export type Trigger = 'ci' | 'manual';

export const DEPLOY_STATUSES = [
  'RESOLVING',
  'BUILDING',
  'DEPLOYING',
  'WAITING_FOR_SYNC',
  'SMOKE_TESTING',
  'AWAITING_APPROVAL',
  'SUCCEEDED',
  'FAILED',
  'ROLLED_BACK',
  'SUPERSEDED',
  'REJECTED',
  'EXPIRED',
  'CANCELLED',
] as const;
export type DeployStatus = (typeof DEPLOY_STATUSES)[number];

export const FINAL_STATUSES: readonly DeployStatus[] = [
  'SUCCEEDED',
  'FAILED',
  'ROLLED_BACK',
  'SUPERSEDED',
  'REJECTED',
  'EXPIRED',
  'CANCELLED',
];

export interface PipelineInput {
  app: string;
  /** Branch, tag or SHA; CI passes the merged commit's SHA. */
  ref: string;
  trigger: Trigger;
  /** Manual deploys only: the one environment to deploy. */
  environment?: string;
  /** Who started it (CI job or person), shown in the UI. */
  requestedBy?: string;
}

export interface EnvironmentPlan {
  name: string;
  /** Reached without approval once the previous environment succeeded. */
  continuousDeployment: boolean;
  /** GitHub logins allowed to approve a promotion into this environment; empty means anyone. */
  approvers: string[];
  syncTimeoutMs: number;
}

/** What the resolve step fixed for this pipeline; snapshotted in history so replays agree. */
export interface ReleasePlan {
  app: string;
  repo: string;
  sha: string;
  tag: string;
  environments: EnvironmentPlan[];
  approvalTimeoutMs: number;
  buildTimeoutMs: number;
}

export type EnvironmentState =
  | 'PENDING'
  | 'DEPLOYING'
  | 'WAITING_FOR_SYNC'
  | 'SMOKE_TESTING'
  | 'DEPLOYED'
  | 'AWAITING_APPROVAL'
  | 'FAILED'
  | 'REJECTED'
  | 'EXPIRED'
  | 'CANCELLED';

export interface Decision {
  by: string;
  at: string;
  comment?: string;
}

export interface EnvironmentStatus {
  environment: string;
  state: EnvironmentState;
  tag?: string;
  chartsCommit?: string;
  previousTag?: string;
  startedAt?: string;
  finishedAt?: string;
  approval?: Decision;
  rejection?: Decision;
  error?: string;
}

export interface PipelineStatus {
  workflowId: string;
  app: string;
  ref: string;
  trigger: Trigger;
  sha?: string;
  tag?: string;
  status: DeployStatus;
  currentEnvironment?: string;
  awaitingApprovalFor?: string;
  environments: EnvironmentStatus[];
  failure?: string;
}

export interface ApproveRequest {
  environment: string;
  approver: string;
  comment?: string;
}

export interface RejectRequest {
  environment: string;
  approver: string;
  reason: string;
}

export interface ApprovalReceipt {
  environment: string;
  approver: string;
  at: string;
  decision: 'approved' | 'rejected';
}

/** Failure types the workflow treats as final. Activities throw them non-retryable. */
export const FailureTypes = {
  UnknownApp: 'UnknownApp',
  InvalidInput: 'InvalidInput',
  RefNotFound: 'RefNotFound',
  ImageBuildFailed: 'ImageBuildFailed',
  ImageBuildTimedOut: 'ImageBuildTimedOut',
  ImageNotFound: 'ImageNotFound',
  SmokeTestFailed: 'SmokeTestFailed',
  ArgoCdDegraded: 'ArgoCdDegraded',
  ArgoCdSyncFailed: 'ArgoCdSyncFailed',
  ArgoCdSyncTimedOut: 'ArgoCdSyncTimedOut',
  PermanentHttpError: 'PermanentHttpError',
} as const;
export type FailureType = (typeof FailureTypes)[keyof typeof FailureTypes];
