/** Data that crosses the workflow boundary. No Node imports: the workflow bundle uses it. */

export type Trigger = 'ci' | 'manual';

export const DEPLOY_STATUSES = [
  'RESOLVING',
  'BUILDING',
  // Held back before a deploy, each for its own reason, so that a filter picks out what a freeze or a window holds.
  'OUTSIDE_WINDOW',
  'WAITING_FOR_LANE',
  'FROZEN',
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
  /** What the person or CI asked for (branch, tag or SHA), for display: the pipeline never resolves it again. */
  ref: string;
  /**
   * The full 40-character SHA the client resolved `ref` to, once: the commit the pipeline deploys and its
   * workflow ID names, however the ref moves later.
   */
  sha: string;
  trigger: Trigger;
  /** Manual deploys only: the one environment to deploy. */
  environment?: string;
  /** Who started it (CI job or person), shown in the UI; on its own it proves nothing. */
  requestedBy?: string;
  /**
   * Manual deploys: the starter's proof of who they are (their Actions run's OIDC token, or a signed statement),
   * checked by the worker against the environment's deployers and approvers.
   */
  proof?: DecisionProof;
  /** Manual deploys: the person knows the commit is not on the main branch, and wants it deployed anyway. */
  allowUnmerged?: boolean;
  /**
   * Only the pipeline's own continue-as-new sets this: where a long wait stands, so the next run goes on from
   * there. A run that was not continued from another refuses it.
   */
  resume?: PipelineResume;
}

export interface PipelineResume {
  plan: ReleasePlan;
  status: PipelineStatus;
  /** The environment the pipeline was waiting at; those before it are done, and its approval gate is passed. */
  environmentIndex: number;
  rolledBack: boolean;
}

export interface EnvironmentPlan {
  name: string;
  /** Reached without approval once the previous environment succeeded. */
  continuousDeployment: boolean;
  /** Needs a person's approval before a deploy here (every environment but the first, unless continuous). */
  needsApproval: boolean;
  /** GitHub logins and `@org/team`s allowed to approve a promotion into this environment; `anyone` lets anyone. */
  approvers: string[];
  allowSelfApproval: boolean;
  /** `verified`: a decision counts only with a proof of who sent it; `claimed`: a name is taken at its word. */
  identity: IdentityPolicy;
  /** GitHub logins and `@org/team`s who may start a manual deploy here, or `anyone`. */
  deployers: string[];
  /** Automatic deploys here wait for a deploy window. */
  hasDeployWindows: boolean;
  syncTimeoutMs: number;
  /** Where end-to-end suites run, how long the smoke step may take (absent: the workflow's 30 minutes). */
  smokeTestsTimeoutMs?: number;
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
  /** GitHub login of the commit's author, for the self-approval rule. */
  authorLogin?: string;
  freezeRecheckIntervalMs: number;
  /** How often a pipeline queued for a lane asks again (a lane terminated by hand has lost its queue). */
  laneRecheckIntervalMs: number;
  /** A run's history length past which a long wait continues as new (far below Temporal's 51,200). */
  historyLimit: number;
  /** Where an environment has diverged from the release: wait for a person, or deploy over it. */
  onDivergence: 'wait' | 'deploy';
  /** The app's lane order (absent from plans recorded before it existed: in order). */
  queue?: LaneQueueOrder;
  /** Manual deploys: whether the commit is on the app's main branch (named here), which GitHub says. */
  onMainBranch?: boolean;
  mainBranch?: string;
  /** Absent (the catalogue's continuousDeployment decides) unless the app is promoted by its charts flags. */
  promotion?: 'chartsFlags';
  /** Where a release is not promoted by its charts flags: wait for approval, or end (deploy by hand). */
  unpromoted?: 'approval' | 'deployByHand';
  /** The timeouts are absent from plans recorded before they existed: the workflow's defaults apply. */
  stepRetry: { maximumAttempts: number; maximumIntervalMs: number; attemptTimeoutMs?: number; heartbeatTimeoutMs?: number };
}

export type EnvironmentState =
  | 'PENDING'
  | 'OUTSIDE_WINDOW'
  | 'WAITING_FOR_LANE'
  | 'FROZEN'
  | 'ROLLING_BACK'
  | 'ROLLED_BACK'
  | 'SUPERSEDED'
  | 'DEPLOYING'
  | 'WAITING_FOR_SYNC'
  | 'SMOKE_TESTING'
  | 'DEPLOYED'
  | 'AWAITING_APPROVAL'
  | 'FAILED'
  | 'REJECTED'
  | 'EXPIRED'
  | 'CANCELLED';

export type IdentityPolicy = 'verified' | 'claimed';

/**
 * How the decider was known: a GitHub Actions OIDC token, an SSH signature, the principal the Temporal server
 * verified for a signal's sender (mapped to a login by the worker's settings), or their word (`claimed`).
 */
export type IdentityChannel = 'github-actions' | 'ssh-signature' | 'temporal-principal' | 'claimed';

/** What proves who sent a decision (or started a manual deploy). */
export type DecisionProof = { channel: 'github-actions'; token: string } | { channel: 'ssh-signature'; signature: string; signedAt: string };

/** A person known by a proof: their login, the channel, and what lets anyone check it again (never a usable token). */
export interface VerifiedPerson {
  login: string;
  channel: Exclude<IdentityChannel, 'claimed'>;
  /**
   * Claims of the OIDC token and its SHA-256; the signed statement's time, key fingerprint and signature; or the
   * signal's event and the principal the server recorded on it.
   */
  evidence: Record<string, string>;
  /** Refused when seen again: the token's jti, the signature's digest, or the signal's run and event. */
  proofId: string;
}

export interface Decision {
  by: string;
  at: string;
  comment?: string;
  /** Absent in decisions recorded before identities were checked. */
  channel?: IdentityChannel;
  evidence?: Record<string, string>;
  proofId?: string;
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
  /** Why the environment is not moving: lane, hold, freeze or deploy window. */
  waitingFor?: string;
  /** What a deploy here would bring (GitHub's compare with what it runs): shown to whoever approves it. */
  changes?: { total: number; commits: { sha: string; message: string; author?: string }[] };
  /** The last decision refused here, and why: a signal cannot answer back, so its refusal is shown here. */
  refusedDecision?: { reason: string; at: string; claimedBy?: string };
  /** Every state it entered, with when, so a follower that looks now and then misses none. */
  transitions?: { state: EnvironmentState; at: string }[];
  error?: string;
  /** Promotion by charts flags: whether this environment's file said to promote, at the commit Argo CD synced. */
  promotes?: boolean;
}

export interface PipelineStatus {
  workflowId: string;
  app: string;
  ref: string;
  trigger: Trigger;
  sha?: string;
  tag?: string;
  /** The digest of the image the tag named when the pipeline made sure of it: what every environment gets. */
  imageDigest?: string;
  status: DeployStatus;
  currentEnvironment?: string;
  awaitingApprovalFor?: string;
  environments: EnvironmentStatus[];
  /** Why it failed, rolled back, or was superseded, rejected or expired. */
  failure?: string;
}

export interface ApproveRequest {
  environment: string;
  approver: string;
  comment?: string;
  proof?: DecisionProof;
}

export interface RejectRequest {
  environment: string;
  approver: string;
  reason: string;
  proof?: DecisionProof;
}

export interface ApprovalReceipt {
  environment: string;
  approver: string;
  at: string;
  decision: 'approved' | 'rejected';
  channel: IdentityChannel;
}

/** Failure types the workflow treats as final. Activities throw them non-retryable. */
export const FailureTypes = {
  UnknownApp: 'UnknownApp',
  InvalidInput: 'InvalidInput',
  RefNotFound: 'RefNotFound',
  ImageBuildFailed: 'ImageBuildFailed',
  ImageBuildTimedOut: 'ImageBuildTimedOut',
  ImageNotFound: 'ImageNotFound',
  /** The release's tag names another image than the one the pipeline checked: it deploys nothing it did not check. */
  ImageDigestChanged: 'ImageDigestChanged',
  SmokeTestFailed: 'SmokeTestFailed',
  ArgoCdDegraded: 'ArgoCdDegraded',
  ArgoCdSyncFailed: 'ArgoCdSyncFailed',
  ArgoCdSyncTimedOut: 'ArgoCdSyncTimedOut',
  PermanentHttpError: 'PermanentHttpError',
  ApprovalRefused: 'ApprovalRefused',
  ChartsPushRefused: 'ChartsPushRefused',
  IdentityRefused: 'IdentityRefused',
  RolledBack: 'RolledBack',
} as const;
export type FailureType = (typeof FailureTypes)[keyof typeof FailureTypes];

/** A pipeline's request to deploy one app to one environment. */
export interface LaneRequest {
  pipelineId: string;
  /** The pipeline's run: a pipeline ID is reused when a commit is deployed again. Pipelines send it; a request sent by hand may leave it out. */
  runId?: string;
  sha: string;
  trigger: Trigger;
  /** The app's `queue` (absent from requests sent before 1.1's newest-first lanes, and by hand: in order). */
  queue?: LaneQueueOrder;
  /**
   * Set by the lane: a newer commit of the app queued here goes first (the pipeline ID of the one it lost to). The
   * order only: whether this request then deploys is for its pipeline's compare with what the environment runs.
   */
  behind?: string;
  /**
   * Sent by pipelines from 1.2 on: queued, the pipeline hears `newerDeployed` too, so the lane may take it out of the
   * queue when a newer commit deploys (it compares, then ends SUPERSEDED or asks again; lane-supersede.ts).
   */
  hearsNewerDeployed?: boolean;
}

/**
 * How a lane orders the CI pipelines of one app queued for it: `newest-first` grants the newest commit first, and the
 * older ones then find the environment ahead of them (SUPERSEDED, no deploy); `in-order` deploys each in turn.
 */
export type LaneQueueOrder = 'newest-first' | 'in-order';

/**
 * The run the lane granted, with the token it made for the grant: only a release carrying that token hands the lane
 * back, so a release sent by hand in the holder's name (or by a run that no longer holds it) changes nothing.
 */
export interface LaneHolder extends LaneRequest {
  /** Absent where a lane granted before tokens existed (1.0). */
  token?: string;
}

export interface Hold {
  reason: string;
  setBy: string;
  setAt: string;
  pipelineId?: string;
  /**
   * `manual-deploy`: a person deployed by hand, and automatic deploys wait; another manual deploy may go ahead.
   * `safety` (a rollback, an unverified deploy): nothing deploys here, by hand or not, until an approver clears it.
   * Absent in holds set before 1.1: read from the reason.
   */
  kind?: 'manual-deploy' | 'safety';
}

export interface LaneState {
  app: string;
  environment: string;
  holder?: LaneHolder;
  queue: LaneRequest[];
  hold?: Hold;
  /** Pipelines waiting for approval to deploy here; a newer deploy supersedes them. */
  awaitingApproval: LaneRequest[];
  /** Deploys the pipelines waiting for approval have not heard of yet: kept across continue-as-new. */
  news?: LaneDeployed[];
  /** The last deploy through this lane: a grant names it, so a pipeline it supersedes says who did. */
  lastDeployed?: LaneDeployed;
  /** Queued pipelines a deploy here took out of the queue, not yet told of it: kept across continue-as-new. */
  obsoleted?: { pipelineId: string; news: LaneDeployed }[];
  /**
   * 1.4 (lane-follow.ts): the pipeline that deployed here last and waits, before its next environment, to hear
   * whether the lane's next grant goes to a newer commit of the app.
   */
  owedFollower?: FollowerWatch;
  /** The older pipeline waiting for the newer one deploying here now (`newer`) to deploy or not. */
  followed?: FollowerWatch & { newer: LaneDeployed };
  /** What the pipelines waiting on a newer commit here are yet to hear: kept across continue-as-new. */
  followerNews?: { to: FollowerWatch; news: NewerFollows }[];
}

/** A pipeline waiting to hear of the commit that follows it through a lane: its run, and the commit it deployed. */
export interface FollowerWatch {
  pipelineId: string;
  runId?: string;
  sha: string;
}

/**
 * Lane → the pipeline that deployed there last (1.4): `newer` deploys there now (`deployed` once it has), or,
 * with no `newer`, nothing newer follows it there.
 */
export interface NewerFollows {
  environment: string;
  newer?: LaneDeployed;
  deployed?: boolean;
}

export interface LaneDeployed {
  pipelineId: string;
  sha: string;
}
