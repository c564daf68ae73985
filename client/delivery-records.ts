import type { Client } from '@temporalio/client';
import type { Catalogue } from '../common/catalogue';
import { computeDeliveryMetrics, DEFAULT_METRICS_WINDOW_DAYS, deployAttemptsOf, type DeliveryMetrics, type DeployAttempt } from '../common/delivery-metrics';
import type { PipelineStatus } from '../common/types';
import { DeployEnvironment, DeployStatusAttribute, statusQuery, WORKFLOW_TYPE } from '../workflows/definitions';
import type { DeployPipeline } from '../workflows/deploy-pipeline';

/**
 * Reads the deploys the pipelines of a task queue recorded in a window: Temporal's visibility lists them (it
 * outlives every worker), each pipeline's result or `status` query says what happened where. Nothing is counted
 * in a process, so a restarted worker, or a second one, reads the same.
 */

/** When a commit was made: GitHub's commit date; undefined when it cannot say. */
export type CommitDates = (repo: string, sha: string) => Promise<string | undefined>;

export interface DeliveryRecordsOptions {
  taskQueue: string;
  catalogue?: Catalogue;
  now?: Date;
  windowDays?: number;
  /** Pipelines read at most, newest first. */
  limit?: number;
  commitDates?: CommitDates;
  /**
   * What pipelines recorded, by run, with the state it was read at: a reader that looks every minute asks Temporal
   * again only about runs that moved since (a query makes a worker replay a pipeline it no longer caches, and
   * thousands waiting for approval would be replayed every minute, BENCHMARKS.md item 3). A closed run never
   * changes; a running one has moved when its search attributes (status, environment) have.
   */
  seen?: Map<string, { state: string; attempts: DeployAttempt[] }>;
}

const DAY_MS = 86_400_000;

export async function readDeployAttempts(client: Client, options: DeliveryRecordsOptions): Promise<DeployAttempt[]> {
  const now = options.now ?? new Date();
  const since = new Date(now.getTime() - (options.windowDays ?? DEFAULT_METRICS_WINDOW_DAYS) * DAY_MS);
  const limit = options.limit ?? 500;
  // A pipeline that started before the window may have deployed inside it (an approval days later): look back twice as far.
  const startedAfter = new Date(since.getTime() - (now.getTime() - since.getTime()));
  const query = `WorkflowType = "${WORKFLOW_TYPE}" AND TaskQueue = "${options.taskQueue}" AND StartTime > "${startedAfter.toISOString()}"`;
  const latestRuns = new Map<string, { runId: string; running: boolean; completed: boolean; startTime: Date; state: string }>();
  for await (const execution of client.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
    // A frozen pipeline continues as new: its newest run carries the whole record.
    if (execution.status.name === 'CONTINUED_AS_NEW' || latestRuns.has(execution.workflowId)) continue;
    const status = execution.status.name;
    const running = status === 'RUNNING';
    // Where it stands, as the pipeline publishes it (the attributes come in no fixed order, and Temporal's own change).
    const attributes = execution.typedSearchAttributes;
    const state = running ? `running ${JSON.stringify([attributes.get(DeployStatusAttribute) ?? null, attributes.get(DeployEnvironment) ?? null])}` : status;
    latestRuns.set(execution.workflowId, { runId: execution.runId, running, completed: status === 'COMPLETED', startTime: execution.startTime, state });
    if (latestRuns.size >= limit) break;
  }
  const attempts = await Promise.all(
    [...latestRuns.entries()].map(async ([workflowId, run]) => {
      const key = `${workflowId}/${run.runId}`;
      const known = options.seen?.get(key);
      if (known?.state === run.state) return known.attempts;
      const handle = client.workflow.getHandle<typeof DeployPipeline>(workflowId, run.runId);
      const status: PipelineStatus | undefined = await (run.completed ? handle.result() : handle.query(statusQuery)).catch(() => undefined);
      if (!status) return [];
      const repo = options.catalogue?.apps.get(status.app)?.repo;
      const committed = repo && status.sha && options.commitDates ? await options.commitDates(repo, status.sha).catch(() => undefined) : undefined;
      const recorded = deployAttemptsOf(status, committed ?? run.startTime.toISOString());
      options.seen?.set(key, { state: run.state, attempts: recorded });
      return recorded;
    }),
  );
  if (options.seen) {
    // Only runs still listed are kept: the window moves on.
    const listed = new Set([...latestRuns.entries()].map(([workflowId, run]) => `${workflowId}/${run.runId}`));
    for (const key of options.seen.keys()) if (!listed.has(key)) options.seen.delete(key);
  }
  return attempts.flat();
}

/** The metrics of the task queue's pipelines, with every app and environment of the catalogue listed. */
export async function readDeliveryMetrics(client: Client, options: DeliveryRecordsOptions): Promise<DeliveryMetrics[]> {
  const now = options.now ?? new Date();
  const attempts = await readDeployAttempts(client, { ...options, now });
  const known = options.catalogue ? [...options.catalogue.apps.values()].map((app) => ({ app: app.name, environments: app.environments.map((e) => e.name) })) : undefined;
  return computeDeliveryMetrics(attempts, { now, windowDays: options.windowDays, known });
}

/** GitHub's commit dates (GET /repos/{owner}/{repo}/commits/{sha}), each asked once: a commit's date never changes. */
export function githubCommitDates(options: { apiUrl: string; token: string }): CommitDates {
  const cache = new Map<string, Promise<string | undefined>>();
  return (repo, sha) => {
    const key = `${repo}@${sha}`;
    let answer = cache.get(key);
    if (!answer) {
      answer = (async () => {
        const response = await fetch(`${options.apiUrl.replace(/\/$/, '')}/repos/${repo}/commits/${sha}`, {
          headers: { authorization: `Bearer ${options.token}`, accept: 'application/vnd.github+json' },
        });
        if (!response.ok) return undefined;
        const body = (await response.json()) as { commit?: { committer?: { date?: string }; author?: { date?: string } } };
        return body.commit?.committer?.date ?? body.commit?.author?.date;
      })();
      // A failed look-up is asked again next time.
      answer.then((date) => date === undefined && cache.delete(key), () => cache.delete(key));
      cache.set(key, answer);
    }
    return answer;
  };
}
