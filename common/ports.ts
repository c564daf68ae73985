/**
 * The outside systems the pipeline talks to. Each has one production adapter in adapters/;
 * tests run those same adapters against simulators over real HTTP, real git and moto's ECR.
 */
import type { DecisionProof, VerifiedPerson } from './types';
import type { TemporalPrincipal } from './temporal-principals';

export interface WorkflowRun {
  id: number;
  /** queued | in_progress | completed */
  status: string;
  /** success | failure | cancelled | … once completed, otherwise null */
  conclusion: string | null;
  displayTitle: string;
  htmlUrl?: string;
}

export type CompareStatus = 'ahead' | 'behind' | 'identical' | 'diverged';

/** What GitHub says about one workflow run: what an Actions OIDC token's run_id is checked against. */
export interface WorkflowRunIdentity {
  id: number;
  /** `owner/name` of the repository the run belongs to. */
  repository: string;
  /** The run's name as its `run-name` made it. */
  displayTitle: string;
  event: string;
  /** 1, then one more for every re-run. */
  runAttempt: number;
  /** Who started this attempt: the person a re-run is down to. */
  triggeringActor?: string;
  /** Who started the first attempt. */
  actor?: string;
  headBranch?: string;
}

/** The people behind a release, as GitHub links commits and pull requests to accounts. */
export interface ReleasePeople {
  authors: string[];
  committers: string[];
  mergedBy: string[];
  /** GitHub listed only some of the commits; the lists may lack people. */
  truncated: boolean;
  /** What an approver is shown: the newest commits the release brings (at most 20), and how many it brings in all. */
  changes?: ReleaseChange[];
  totalChanges?: number;
}

export interface ReleaseChange {
  sha: string;
  /** The first line of the commit message. */
  message: string;
  author?: string;
}

/** GitHub's REST API. */
export interface SourceHost {
  /** Full SHA of a branch, tag or commit; throws RefNotFoundError when GitHub does not know it. */
  resolveRef(repo: string, ref: string): Promise<string>;
  /** Whether the full SHA names a commit of the repo (GET /repos/{owner}/{repo}/commits/{sha}); a branch or tag never counts. */
  hasCommit(repo: string, sha: string): Promise<boolean>;
  /** A tag of the repo that points at the commit and matches the pattern, if any. */
  findTagForCommit(repo: string, sha: string, pattern: RegExp): Promise<string | undefined>;
  dispatchWorkflow(repo: string, workflowFile: string, ref: string, inputs: Record<string, string>): Promise<void>;
  listWorkflowRuns(repo: string, workflowFile: string): Promise<WorkflowRun[]>;
  /** How `head` relates to `base`: GitHub's compare status. */
  compareCommits(repo: string, base: string, head: string): Promise<CompareStatus>;
  /** GitHub login of the commit's author, when GitHub links the commit to an account. */
  commitAuthor(repo: string, sha: string): Promise<string | undefined>;
  /** Whether the user is an active member of the organisation's team. */
  isTeamMember(org: string, teamSlug: string, login: string): Promise<boolean>;
  /** GET /repos/{owner}/{repo}/actions/runs/{run_id}; a run GitHub does not know is a PermanentHttpError (404). */
  workflowRunById(repo: string, runId: number): Promise<WorkflowRunIdentity>;
  /**
   * Who wrote, committed and merged the commits from `base` (exclusive; undefined: just `head`) to `head`: GitHub
   * compare's commits (author.login / committer.login; null users and GitHub's own `web-flow` committer skipped),
   * and merged_by of the merged pull requests GitHub links to `head` (GET /repos/{o}/{r}/commits/{sha}/pulls, then
   * GET /repos/{o}/{r}/pulls/{n}). Lower-cased, unique. `truncated` when compare listed fewer commits than
   * total_commits (GitHub lists at most 250).
   */
  releasePeople(repo: string, base: string | undefined, head: string): Promise<ReleasePeople>;
}

export type DeploymentState = 'in_progress' | 'success' | 'failure' | 'inactive';

export interface DeploymentRequest {
  sha: string;
  environment: string;
  /** The pipeline's workflow ID: what makes a retried create find the first deployment. */
  pipelineId: string;
  description: string;
  production: boolean;
  /** The image deployed, by digest: it goes in the deployment's payload (`image_repository`, `image_digest`). */
  image?: { repository: string; digest: string };
}

export interface DeploymentStatusUpdate {
  state: DeploymentState;
  description: string;
  logUrl?: string;
  environmentUrl?: string;
}

/** GitHub deployments: what is deployed where, shown on the repository's page. */
export interface DeploymentTracker {
  /** The pipeline's deployment of the commit to the environment, created on the first call. */
  ensureDeployment(repo: string, request: DeploymentRequest): Promise<number>;
  /** Adds the status unless it is already the deployment's latest. */
  setDeploymentState(repo: string, deploymentId: number, update: DeploymentStatusUpdate): Promise<void>;
}

/** One message for people, as one notifyPeople step sends it, however often that step is retried. */
export interface Notice {
  text: string;
  /**
   * The same for every attempt of one step and different for every other step (workflow ID, run ID and activity
   * ID): what lets a retry find the message an earlier attempt posted.
   */
  key: string;
  /** Nothing can have been posted before a step's first attempt, so it posts without looking. */
  firstAttempt: boolean;
  /** When the step's first attempt was scheduled (ms since the epoch): no earlier attempt posted before then. */
  firstScheduledAtMs: number;
}

/** Where people hear about pipelines that need them (Slack). */
export interface Notifier {
  /** Posts the notice; a notifier that can (Slack's Web API) posts it at most once per key, retries included. */
  notify(notice: Notice): Promise<void>;
}

/** Where images are: ECR, or any registry speaking the OCI distribution API. */
export interface ImageRegistry {
  hasImage(repository: string, tag: string): Promise<boolean>;
  /** The digest (`sha256:…`) of the manifest the tag names now, or undefined when there is no such tag. */
  digestOf(repository: string, tag: string): Promise<string | undefined>;
  /** Puts `newTag` on the image that `sourceTag` (a tag, or an image's digest) names; a tag already there is success. */
  addTag(repository: string, sourceTag: string, newTag: string): Promise<void>;
}

export interface ImageTagFile {
  /** Path of the file inside the charts repo. */
  path: string;
  exists: boolean;
  imageTag?: string;
  /** False when the file turns automatic deploys off, and when its flag says neither true nor false. */
  automaticDeploysEnabled: boolean;
  /** Why the flag could not be read as true or false; automatic deploys stay off until a person fixes it. */
  freezeFlagProblem?: string;
}

export interface ImageTagChange {
  /** The charts commit whose tree first holds the tag (ours, or the one a retry finds). */
  chartsCommit: string;
  /** The tag the file held before that commit; undefined when the file was new. */
  previousTag?: string;
  /** False when the file already held the tag and nothing was pushed. */
  changed: boolean;
}

/** The Helm-charts git repository. */
export interface ChartsRepository {
  readImageTag(app: string, environment: string): Promise<ImageTagFile>;
  /**
   * Commits `Deploy <app> <tag> to <environment>` unless the file already holds the tag (and the digest). A
   * `digest` is written as `image_digest` beside the tag, for charts that pull by digest; `''` empties it, so
   * the tag alone decides; undefined leaves the file's digest, if any, as it is. A `promoteDeployment` is written
   * as `promote_deployment` in the same commit, as GOV.UK's update-image-tag writes it (added where missing);
   * undefined leaves the flag alone. A file that already holds the tag is left as it is, flag included, as
   * update-image-tag leaves it.
   */
  setImageTag(app: string, environment: string, tag: string, message: string, digest?: string, promoteDeployment?: boolean): Promise<ImageTagChange>;
  /** True when `descendant` is `ancestor` or has it in its history (after fetching). */
  isAncestor(ancestor: string, descendant: string): Promise<boolean>;
  /** The file's `promote_deployment` and `automatic_deploys_enabled` at a commit: true only where they say true. */
  promotionFlagsAt?(app: string, environment: string, commit: string): Promise<PromotionFlags>;
  /** The newest `limit` commits on the branch that changed the app's image-tag file, newest first: people's too. */
  imageTagHistory?(app: string, environment: string, limit: number): Promise<ImageTagCommit[]>;
}

export interface ImageTagCommit {
  commit: string;
  /** The committer's date, ISO 8601. */
  at: string;
  author: string;
  subject: string;
  /** The file's image_tag in that commit; undefined when the file was removed or holds none. */
  tag?: string;
}

export interface PromotionFlags {
  promoteDeployment: boolean;
  automaticDeploysEnabled: boolean;
}

export interface ArgoApplicationStatus {
  name: string;
  syncStatus: string;
  syncRevision?: string;
  healthStatus: string;
  healthMessage?: string;
  operationPhase?: string;
  operationMessage?: string;
  operationRevision?: string;
  /** `status.summary.images`: the images the application's workloads run, `repository:tag`. */
  images?: string[];
}

/** Argo CD's REST API. */
export interface ArgoCd {
  /** GET /api/v1/applications/{name}; `refresh` asks Argo CD to look at git now. */
  getApplication(name: string, refresh?: 'normal' | 'hard'): Promise<ArgoApplicationStatus>;
}

export interface ReleaseDeployment {
  repo: string;
  environment: string;
  version: string;
}

/** GOV.UK's Release app. */
export interface ReleaseApp {
  /** POST /deployments; the key lets the app drop a retried duplicate. */
  recordDeployment(deployment: ReleaseDeployment, idempotencyKey: string): Promise<void>;
}

export interface SmokeCheck {
  name?: string;
  url: string;
  expectStatus: number;
  expectBodyContains?: string;
  timeoutMs: number;
}

export interface SmokeCheckOutcome {
  check: SmokeCheck;
  ok: boolean;
  detail: string;
}

/** HTTP checks against a deployed app. */
export interface SmokeTester {
  run(check: SmokeCheck): Promise<SmokeCheckOutcome>;
}

/** What a decision (or a manual deploy's start) is about, as the worker knows it: the proof must be for exactly this. */
export interface IdentityQuestion {
  pipelineId: string;
  environment: string;
  /** The release's full SHA. */
  commit: string;
  /** What the person did: approve or reject a promotion, start a manual deploy, clear a hold. */
  action: 'approve' | 'reject' | 'deploy' | 'clear-hold';
  /** The approval's comment or the rejection's reason, as sent. */
  comment?: string;
  /** The login the sender gave; a proof for someone else is refused. */
  claimedLogin?: string;
  /** Manual deploys: what the run-name of the starting Actions run must say. */
  app?: string;
  ref?: string;
}

/** A decision signal a pipeline run received: the `ordinal`-th (from 1) signal of that name in the run's history. */
export interface DecisionSignal {
  workflowId: string;
  runId: string;
  name: string;
  ordinal: number;
}

/**
 * Who sent a decision, from a proof GitHub or the person's SSH key vouches for, or from the principal the Temporal
 * server recorded on the decision's signal; IdentityRefusedError otherwise.
 */
export interface IdentityVerifier {
  verify(question: IdentityQuestion, proof: DecisionProof): Promise<VerifiedPerson>;
  signalSender(question: IdentityQuestion, signal: DecisionSignal): Promise<VerifiedPerson>;
}

/** A signal as the Temporal server recorded it. */
export interface RecordedSignal {
  eventId: string;
  /** When the server wrote the event, ISO 8601. */
  time?: string;
  /** The signal's arguments, decoded. */
  args: unknown[];
  /** Who sent it, as the server verified it; absent where the server records none (no authorizer, or propagation off). */
  principal?: TemporalPrincipal;
}

/** A workflow run's own history, as the Temporal server keeps it. */
export interface WorkflowHistory {
  /** The `ordinal`-th (from 1) signal named `name` in the run's history; undefined when the run has fewer. */
  nthSignal(run: { workflowId: string; runId: string }, name: string, ordinal: number): Promise<RecordedSignal | undefined>;
}

/** One workflow in an Argo Workflows server, as the pipeline follows it. */
export interface ArgoWorkflowStatus {
  name: string;
  /** `Pending`, `Running`, `Succeeded`, `Failed` or `Error`; empty before the controller saw it. */
  phase: string;
  message?: string;
  /** The nodes that ended `Failed` or `Error`, pods first: what went wrong, in the workflow's words. */
  failedNodes: Array<{ name: string; type?: string; message?: string }>;
}

/** Argo Workflows' REST API (the argo-server of one cluster). */
export interface ArgoWorkflows {
  /**
   * POST /api/v1/workflows/{namespace}/submit of a WorkflowTemplate under the given name; `existed` when a workflow
   * of that name was already there (an earlier try submitted it), which is then returned as it is now.
   */
  submitFromTemplate(request: { namespace: string; template: string; name: string; parameters: Record<string, string>; labels: Record<string, string> }): Promise<{ existed: boolean; workflow: ArgoWorkflowStatus }>;
  /** GET /api/v1/workflows/{namespace}/{name}. */
  getWorkflow(namespace: string, name: string): Promise<ArgoWorkflowStatus>;
  /** PUT /api/v1/workflows/{namespace}/{name}/stop: exit handlers still run. */
  stopWorkflow(namespace: string, name: string, message: string): Promise<void>;
}

export interface WorkflowJob {
  id: number;
  name: string;
  status: string;
  conclusion: string | null;
  htmlUrl?: string;
}

/** What a dispatched GitHub Actions run is followed and stopped with, beside SourceHost's dispatch and listing. */
export interface ActionsRuns {
  /** GET /repos/{o}/{r}/actions/runs/{run_id}: where one run is, however many runs came after it. */
  getRun(repo: string, runId: number): Promise<WorkflowRun>;
  /** GET /repos/{o}/{r}/actions/runs/{run_id}/jobs (the latest attempt's). */
  jobsOfRun(repo: string, runId: number): Promise<WorkflowJob[]>;
  /** POST /repos/{o}/{r}/actions/runs/{run_id}/cancel; a run that has already completed is left as it is. */
  cancelRun(repo: string, runId: number): Promise<void>;
}
