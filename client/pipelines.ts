import {
  Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import type { Catalogue } from '../common/catalogue';
import { ciWorkflowId, isFullSha, manualWorkflowId, validateAppName, validateApprover, validateEnvironmentName, validateGitRef } from '../common/names';
import type { SourceHost } from '../common/ports';
import { DEPLOY_STATUSES, type ApprovalReceipt, type DecisionProof, type Hold, type PipelineInput, type PipelineStatus } from '../common/types';
import {
  approveUpdate,
  DeployApp,
  DeployCommit,
  DeployEnvironment,
  DeployStatusAttribute,
  DeployTrigger,
  clearHoldUpdate,
  LANE_WORKFLOW_TYPE,
  laneStateQuery,
  laneWorkflowId,
  rejectUpdate,
  statusQuery,
  WORKFLOW_TYPE,
} from '../workflows/definitions';
import { staticSummary } from '../workflows/details';
import type { DeployPipeline } from '../workflows/deploy-pipeline';

/** What the CLI does, as functions the tests and the sandbox call directly. */

export class RefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedError';
  }
}

export class BadInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadInputError';
  }
}

export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** A service the command needs besides Temporal (GitHub, the charts repository) did not answer. */
export class UnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreachableError';
  }
}

export interface StartRequest {
  app: string;
  ref: string;
  /** Set for a manual deploy of one environment. */
  environment?: string;
  requestedBy?: string;
  /** Manual deploys: the commit may be off the main branch. */
  allowUnmerged?: boolean;
  /** Manual deploys: proves who starts it, for the commit and workflow ID once known. */
  prove?: (about: { pipelineId: string; environment: string; commit: string }) => Promise<DecisionProof | undefined>;
}

export interface StartContext {
  client: Client;
  taskQueue: string;
  /** When present, app and environment are checked here before anything starts. */
  catalogue?: Catalogue;
  /** Resolves branches and tags to a SHA, once: the workflow ID and the pipeline's input carry that commit. */
  sourceHost?: SourceHost;
}

export interface StartedPipeline {
  workflowId: string;
  runId: string;
  sha: string;
  /** False when CI's retry found the pipeline for this commit already there. */
  started: boolean;
}

function asBadInput<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw new BadInputError((err as Error).message);
  }
}

async function resolveSha(request: StartRequest, context: StartContext): Promise<string> {
  if (isFullSha(request.ref)) return request.ref;
  const app = context.catalogue?.apps.get(request.app);
  if (!app || !context.sourceHost) {
    throw new BadInputError(`"${request.ref}" is not a full commit SHA; resolving a branch or tag needs the app catalogue and GITHUB_TOKEN`);
  }
  try {
    return await context.sourceHost.resolveRef(app.repo, request.ref);
  } catch (err) {
    if ((err as Error).name === 'RefNotFoundError') throw new BadInputError((err as Error).message);
    throw err;
  }
}

export async function startPipeline(request: StartRequest, context: StartContext): Promise<StartedPipeline> {
  const app = asBadInput(() => validateAppName(request.app));
  const ref = asBadInput(() => validateGitRef(request.ref));
  const environment = request.environment === undefined ? undefined : asBadInput(() => validateEnvironmentName(request.environment));
  let environments: string[] | undefined;
  if (context.catalogue) {
    const config = context.catalogue.apps.get(app);
    if (!config) throw new BadInputError(`unknown app "${app}": it is not in the app catalogue ${context.catalogue.file}`);
    const known = config.environments.map((e) => e.name);
    if (environment && !known.includes(environment)) {
      throw new BadInputError(`app "${app}" has no environment "${environment}" (it has: ${known.join(', ')})`);
    }
    environments = environment ? [environment] : known;
  }
  const sha = await resolveSha({ ...request, app, ref }, context);
  const trigger = environment ? 'manual' : 'ci';
  const workflowId = environment ? manualWorkflowId(app, sha, environment) : ciWorkflowId(app, sha);
  // The one lookup of the ref: the pipeline deploys this commit, and its ID names it, wherever the ref moves next.
  const proof = environment && request.prove ? await request.prove({ pipelineId: workflowId, environment, commit: sha }) : undefined;
  const input: PipelineInput = {
    app,
    ref,
    sha,
    trigger,
    environment,
    requestedBy: request.requestedBy,
    ...(proof ? { proof } : {}),
    ...(environment && request.allowUnmerged ? { allowUnmerged: true } : {}),
  };
  const startOptions = {
    taskQueue: context.taskQueue,
    workflowId,
    args: [input] as [PipelineInput],
    workflowIdConflictPolicy: 'USE_EXISTING' as const,
    // CI may re-run a failed pipeline for the same commit; a person may redeploy the same commit by hand.
    workflowIdReusePolicy: environment ? ('ALLOW_DUPLICATE' as const) : ('ALLOW_DUPLICATE_FAILED_ONLY' as const),
    staticSummary: staticSummary(app, sha, environments ?? ['(environments from the catalogue)']),
    typedSearchAttributes: [
      { key: DeployApp, value: app },
      { key: DeployCommit, value: sha },
      { key: DeployTrigger, value: trigger },
      { key: DeployStatusAttribute, value: 'RESOLVING' },
      ...(environment ? [{ key: DeployEnvironment, value: environment }] : []),
    ],
  };
  const before = await describeOrUndefined(context.client.workflow.getHandle(workflowId));
  try {
    const handle = await context.client.workflow.start<typeof DeployPipeline>(WORKFLOW_TYPE, startOptions);
    const started = !before || before.runId !== handle.firstExecutionRunId;
    return { workflowId, runId: handle.firstExecutionRunId, sha, started };
  } catch (err) {
    // A CI retry after the pipeline finished: it is still the one pipeline for this commit.
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const existing = await context.client.workflow.getHandle(workflowId).describe();
      return { workflowId, runId: existing.runId, sha, started: false };
    }
    throw err;
  }
}

async function describeOrUndefined(handle: WorkflowHandle): Promise<WorkflowExecutionDescription | undefined> {
  try {
    return await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

export async function pipelineStatus(client: Client, workflowId: string): Promise<PipelineStatus> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    return await handle.query(statusQuery);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`no pipeline ${workflowId}`);
    throw err;
  }
}

async function decide(client: Client, workflowId: string, run: (handle: WorkflowHandle) => Promise<ApprovalReceipt>): Promise<ApprovalReceipt> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    return await run(handle);
  } catch (err) {
    // The validator's message is the reason; the server wraps it once.
    if (err instanceof WorkflowUpdateFailedError) throw new RefusedError(err.cause?.message ?? err.message);
    if (err instanceof WorkflowNotFoundError) {
      // The server says "not found" both for no such pipeline and for one that has finished.
      const existing = await describeOrUndefined(handle);
      if (!existing) throw new NotFoundError(`no pipeline ${workflowId}`);
      const outcome = await handle.query(statusQuery).catch(() => undefined);
      const why = outcome ? `: ${outcome.status}${outcome.failure ? ` (${outcome.failure})` : ''}` : '';
      throw new RefusedError(`pipeline ${workflowId} has already finished${why}`);
    }
    throw err;
  }
}

export async function approvePipeline(
  client: Client,
  workflowId: string,
  request: { environment: string; approver: string; comment?: string; proof?: DecisionProof },
): Promise<ApprovalReceipt> {
  const environment = asBadInput(() => validateEnvironmentName(request.environment));
  const approver = asBadInput(() => validateApprover(request.approver));
  const proof = request.proof ? { proof: request.proof } : {};
  return decide(client, workflowId, (handle) => handle.executeUpdate(approveUpdate, { args: [{ environment, approver, comment: request.comment, ...proof }] }));
}

export async function rejectPipeline(
  client: Client,
  workflowId: string,
  request: { environment: string; approver: string; reason: string; proof?: DecisionProof },
): Promise<ApprovalReceipt> {
  const environment = asBadInput(() => validateEnvironmentName(request.environment));
  const approver = asBadInput(() => validateApprover(request.approver));
  if (!request.reason.trim()) throw new BadInputError('a rejection gives a reason');
  const proof = request.proof ? { proof: request.proof } : {};
  return decide(client, workflowId, (handle) => handle.executeUpdate(rejectUpdate, { args: [{ environment, approver, reason: request.reason, ...proof }] }));
}

export async function cancelPipeline(client: Client, workflowId: string): Promise<void> {
  try {
    await client.workflow.getHandle(workflowId).cancel();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`no running pipeline ${workflowId}`);
    throw err;
  }
}

export interface ListFilter {
  app?: string;
  status?: string;
  environment?: string;
  limit?: number;
}

export interface PipelineSummary {
  workflowId: string;
  app?: string;
  commit?: string;
  environment?: string;
  status?: string;
  trigger?: string;
  startTime: string;
  closeTime?: string;
  temporalStatus: string;
}

/** Builds the visibility query from validated values only, so a filter cannot inject query text. */
export function listQuery(filter: ListFilter): string {
  const clauses = [`WorkflowType = "${WORKFLOW_TYPE}"`];
  if (filter.app) clauses.push(`DeployApp = "${asBadInput(() => validateAppName(filter.app))}"`);
  if (filter.environment) clauses.push(`DeployEnvironment = "${asBadInput(() => validateEnvironmentName(filter.environment))}"`);
  if (filter.status) {
    const status = filter.status.toUpperCase();
    if (!(DEPLOY_STATUSES as readonly string[]).includes(status)) {
      throw new BadInputError(`unknown status "${filter.status}" (one of: ${DEPLOY_STATUSES.join(', ')})`);
    }
    clauses.push(`DeployStatus = "${status}"`);
  }
  return clauses.join(' AND ');
}

export async function listPipelines(client: Client, filter: ListFilter): Promise<PipelineSummary[]> {
  const limit = filter.limit ?? 50;
  const out: PipelineSummary[] = [];
  for await (const execution of client.workflow.list({ query: listQuery(filter), pageSize: Math.min(limit, 1000) })) {
    const attributes = execution.typedSearchAttributes;
    out.push({
      workflowId: execution.workflowId,
      app: attributes.get(DeployApp),
      commit: attributes.get(DeployCommit),
      environment: attributes.get(DeployEnvironment),
      status: attributes.get(DeployStatusAttribute),
      trigger: attributes.get(DeployTrigger),
      startTime: execution.startTime.toISOString(),
      closeTime: execution.closeTime?.toISOString(),
      temporalStatus: execution.status.name,
    });
    if (out.length >= limit) break;
  }
  return out;
}

export interface HoldRow extends Hold {
  app: string;
  environment: string;
}

/** Holds live in the running lane workflows; a lane with a hold never ends on its own. */
export async function listHolds(client: Client, filter: { taskQueue: string; app?: string; environment?: string }): Promise<HoldRow[]> {
  const clauses = [`WorkflowType = "${LANE_WORKFLOW_TYPE}"`, 'ExecutionStatus = "Running"', `TaskQueue = "${filter.taskQueue}"`];
  if (filter.app) clauses.push(`DeployApp = "${asBadInput(() => validateAppName(filter.app))}"`);
  if (filter.environment) clauses.push(`DeployEnvironment = "${asBadInput(() => validateEnvironmentName(filter.environment))}"`);
  const rows: HoldRow[] = [];
  for await (const lane of client.workflow.list({ query: clauses.join(' AND ') })) {
    const laneState = await client.workflow.getHandle(lane.workflowId).query(laneStateQuery).catch(() => undefined);
    if (laneState?.hold) rows.push({ app: laneState.app, environment: laneState.environment, ...laneState.hold });
  }
  return rows.sort((a, b) => `${a.app}/${a.environment}`.localeCompare(`${b.app}/${b.environment}`));
}

export async function clearHold(
  client: Client,
  request: {
    taskQueue: string;
    app: string;
    environment: string;
    by: string;
    /** Proves who clears it: the statement names the lane, the environment and the hold (by when it was set). */
    prove?: (about: { pipelineId: string; environment: string; commit: string }) => Promise<DecisionProof | undefined>;
  },
): Promise<Hold> {
  const app = asBadInput(() => validateAppName(request.app));
  const environment = asBadInput(() => validateEnvironmentName(request.environment));
  const by = asBadInput(() => validateApprover(request.by));
  const laneId = laneWorkflowId(request.taskQueue, app, environment);
  const lane = client.workflow.getHandle(laneId);
  try {
    let proof: DecisionProof | undefined;
    if (request.prove) {
      const hold = (await lane.query(laneStateQuery)).hold;
      if (!hold) throw new RefusedError(`there is no hold on ${app} in ${environment}`);
      proof = await request.prove({ pipelineId: laneId, environment, commit: hold.setAt });
    }
    return await lane.executeUpdate(clearHoldUpdate, { args: [{ by, ...(proof ? { proof } : {}) }] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new RefusedError(err.cause?.message ?? err.message);
    if (err instanceof WorkflowNotFoundError) throw new RefusedError(`there is no hold on ${app} in ${environment}`);
    throw err;
  }
}

/** What a running pipeline waits for now (approval, a lane, a freeze, a window), for `deploy list`. */
export async function waitingFor(client: Client, summary: PipelineSummary): Promise<string> {
  if (summary.temporalStatus !== 'RUNNING') return '';
  const status = await client.workflow.getHandle(summary.workflowId).query(statusQuery).catch(() => undefined);
  if (!status) return '';
  if (status.awaitingApprovalFor) return `approval for ${status.awaitingApprovalFor}`;
  const current = status.environments.find((e) => e.environment === status.currentEnvironment);
  return current?.waitingFor ?? '';
}

export interface EnvironmentRun {
  at: string;
  tag?: string;
  state: string;
  /** `ci` or `manual` for a pipeline's deploy; `charts` for a commit to the file that no pipeline of ours made. */
  trigger: string;
  /** The pipeline's ID; for a charts commit, its subject. */
  pipeline: string;
  approvedBy?: string;
  channel?: string;
  /** The charts commit that put the tag there, when known. */
  chartsCommit?: string;
  /** Who made a charts commit that no pipeline made. */
  author?: string;
}

/**
 * What ran on one environment of an app, newest first, from the pipelines' own records: every pipeline of the app
 * that reached the environment (finished ones from their results, running ones from their status).
 */
export async function environmentHistory(client: Client, request: { app: string; environment: string; limit?: number }): Promise<EnvironmentRun[]> {
  const app = asBadInput(() => validateAppName(request.app));
  const environment = asBadInput(() => validateEnvironmentName(request.environment));
  const pipelines = await listPipelines(client, { app, limit: Math.min(1000, (request.limit ?? 20) * 5) });
  const statuses = await Promise.all(
    pipelines.map(async (p) => {
      const handle = client.workflow.getHandle<typeof DeployPipeline>(p.workflowId);
      return (p.temporalStatus === 'COMPLETED' ? handle.result() : handle.query(statusQuery)).catch(() => undefined);
    }),
  );
  const runs = statuses.flatMap((status): EnvironmentRun[] => {
    const env = status?.environments.find((e) => e.environment === environment);
    if (!status || !env || !env.startedAt) return [];
    return [
      {
        at: env.finishedAt ?? env.startedAt,
        tag: env.tag,
        state: env.state,
        trigger: status.trigger,
        pipeline: status.workflowId,
        ...(env.approval ? { approvedBy: env.approval.by, channel: env.approval.channel ?? 'claimed' } : {}),
        ...(env.chartsCommit ? { chartsCommit: env.chartsCommit } : {}),
      },
    ];
  });
  return runs.sort((a, b) => b.at.localeCompare(a.at)).slice(0, request.limit ?? 20);
}
