import { z } from 'zod';
import { PermanentHttpError } from '../common/errors';
import { validateRepo } from '../common/names';
import type { ActionsRuns, WorkflowJob, WorkflowRun } from '../common/ports';
import { joinUrl, sendRequest } from './http-client';

export interface GitHubActionsRunsOptions {
  token: string;
  /** GitHub Enterprise or a simulator; default https://api.github.com. */
  baseUrl?: string;
  timeoutMs?: number;
}

const runSchema = z.object({
  id: z.number(),
  status: z.string().nullable().catch(null),
  conclusion: z.string().nullable().catch(null),
  display_title: z.string().catch(''),
  html_url: z.string().optional().catch(undefined),
});

const jobsSchema = z.object({
  total_count: z.number(),
  jobs: z.array(
    z.object({ id: z.number(), name: z.string(), status: z.string(), conclusion: z.string().nullable().catch(null), html_url: z.string().nullable().optional().catch(undefined) }),
  ),
});

/** The jobs of a run and its cancellation, GitHub's REST API (the token needs `actions: write` for the latter). */
export function createGitHubActionsRuns(options: GitHubActionsRunsOptions): ActionsRuns {
  const { token } = options;
  const base = options.baseUrl ?? 'https://api.github.com';
  const request = (method: 'GET' | 'POST', path: string) =>
    sendRequest({
      service: 'GitHub',
      method,
      url: joinUrl(base, path),
      headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
      timeoutMs: options.timeoutMs ?? 30_000,
      secrets: [token],
    });
  const runPath = (repo: string, runId: number) => {
    if (!Number.isSafeInteger(runId) || runId <= 0) throw new Error(`invalid workflow run ID ${runId}`);
    return `repos/${validateRepo(repo)}/actions/runs/${runId}`;
  };

  return {
    async getRun(repo, runId): Promise<WorkflowRun> {
      const { body } = await request('GET', runPath(repo, runId));
      const parsed = runSchema.safeParse(body);
      if (!parsed.success) throw new Error(`GitHub answered run ${runId} of ${repo} with something else: ${z.prettifyError(parsed.error)}`);
      const run = parsed.data;
      return { id: run.id, status: run.status ?? 'queued', conclusion: run.conclusion, displayTitle: run.display_title, ...(run.html_url ? { htmlUrl: run.html_url } : {}) };
    },
    async jobsOfRun(repo, runId) {
      const jobs: WorkflowJob[] = [];
      // A matrix can have hundreds of jobs; GitHub pages them 100 at a time.
      for (let page = 1; page <= 10; page++) {
        const { body } = await request('GET', `${runPath(repo, runId)}/jobs?per_page=100&page=${page}`);
        const parsed = jobsSchema.safeParse(body);
        if (!parsed.success) throw new Error(`GitHub answered the jobs of run ${runId} of ${repo} with something else: ${z.prettifyError(parsed.error)}`);
        jobs.push(...parsed.data.jobs.map((job) => ({ id: job.id, name: job.name, status: job.status, conclusion: job.conclusion, ...(job.html_url ? { htmlUrl: job.html_url } : {}) })));
        if (jobs.length >= parsed.data.total_count || parsed.data.jobs.length === 0) break;
      }
      return jobs;
    },
    async cancelRun(repo, runId) {
      try {
        await request('POST', `${runPath(repo, runId)}/cancel`);
      } catch (err) {
        // "Cannot cancel a workflow run that is completed."
        if (err instanceof PermanentHttpError && err.status === 409) return;
        throw err;
      }
    },
  };
}
