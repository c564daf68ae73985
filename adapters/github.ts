import { RefNotFoundError, TransientHttpError } from '../common/errors';
import { Octokit } from '@octokit/rest';
import { validateRepo } from '../common/names';
import { type CompareStatus, type DeploymentTracker, type ReleaseChange, type ReleasePeople, type SourceHost, type WorkflowRun, type WorkflowRunIdentity } from '../common/ports';
import { describeNetworkError, displayUrl, httpFailure, redact } from './http-client';

export interface GitHubSourceHostOptions {
  token: string;
  /** GitHub Enterprise or a simulator; default https://api.github.com. */
  baseUrl?: string;
  userAgent?: string;
  /** Per HTTP request, pages of a listing included. */
  timeoutMs?: number;
}

const COMPARE_STATUSES: readonly CompareStatus[] = ['ahead', 'behind', 'identical', 'diverged'];
/** GitHub commits what its web UI merges as this account: nobody chose to commit it. */
const WEB_UI_COMMITTER = 'web-flow';

interface CommitPeople {
  sha: string;
  commit?: { message?: string };
  author?: { login?: string } | null;
  committer?: { login?: string } | null;
}

/** The commits an approval request lists, newest first; the count says how many more there are. */
const MAX_CHANGES_LISTED = 20;

function addLogin(into: Set<string>, login: string | undefined): void {
  if (login) into.add(login.toLowerCase());
}

interface OctokitLikeError {
  status?: unknown;
  response?: { headers?: Record<string, string | number | undefined>; data?: unknown };
  request?: { method?: string; url?: string };
  cause?: unknown;
}

export function createGitHubSourceHost(options: GitHubSourceHostOptions): SourceHost & DeploymentTracker {
  const { token } = options;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const octokit = new Octokit({
    auth: token,
    baseUrl: options.baseUrl,
    userAgent: options.userAgent ?? 'durable-deploy-pipelines',
    // The adapter turns every failure into a classified error; octokit's own error log would only repeat it.
    log: { debug: () => undefined, info: () => undefined, warn: (message: string) => console.warn(message), error: () => undefined },
    request: {
      fetch: (input: string | URL | Request, init?: RequestInit) => fetch(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(timeoutMs) }),
    },
  });

  function split(repo: string): { owner: string; repo: string } {
    const [owner, name] = validateRepo(repo).split('/');
    return { owner, repo: name };
  }

  /** A failed call as PermanentHttpError (401, 403, 404, 422, …) or TransientHttpError (5xx, 429, rate limit, network). */
  function classify(err: unknown, operation: string): Error {
    const failure = err as OctokitLikeError;
    if (typeof failure?.status !== 'number') return err instanceof Error ? new Error(redact(err.message, [token])) : new Error(String(err));
    const method = failure.request?.method ?? 'GET';
    const url = failure.request?.url ?? operation;
    if (!failure.response) {
      const problem = describeNetworkError(failure.cause ?? err);
      const message = problem.timedOut
        ? `GitHub ${method} ${displayUrl(url)} timed out after ${timeoutMs} ms`
        : `GitHub ${method} ${displayUrl(url)} failed: ${problem.description}`;
      return new TransientHttpError(redact(message, [token]));
    }
    return httpFailure({
      service: 'GitHub',
      method,
      url,
      status: failure.status,
      headers: failure.response.headers,
      body: failure.response.data,
      secrets: [token],
    });
  }

  function statusOf(err: unknown): number | undefined {
    const failure = err as OctokitLikeError;
    return failure?.response && typeof failure.status === 'number' ? failure.status : undefined;
  }

  return {
    async resolveRef(repo, ref) {
      const target = split(repo);
      try {
        const { data } = await octokit.rest.repos.getCommit({ ...target, ref, per_page: 1 });
        return data.sha;
      } catch (err) {
        const status = statusOf(err);
        if (status === 404 || status === 422) throw new RefNotFoundError(repo, ref);
        throw classify(err, `resolve ${ref} in ${repo}`);
      }
    },

    async hasCommit(repo, sha) {
      const target = split(repo);
      try {
        const { data } = await octokit.rest.repos.getCommit({ ...target, ref: sha, per_page: 1 });
        // The endpoint takes any ref: a branch that happens to be named like a SHA is not that commit.
        return data.sha === sha;
      } catch (err) {
        const status = statusOf(err);
        if (status === 404 || status === 422) return false;
        throw classify(err, `read commit ${sha} of ${repo}`);
      }
    },

    async findTagForCommit(repo, sha, pattern) {
      const target = split(repo);
      // A global or sticky pattern would carry lastIndex from one test() to the next.
      const matcher = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
      try {
        for await (const page of octokit.paginate.iterator(octokit.rest.repos.listTags, { ...target, per_page: 100 })) {
          const found = page.data.find((tag) => tag.commit.sha === sha && matcher.test(tag.name));
          if (found) return found.name;
        }
        return undefined;
      } catch (err) {
        throw classify(err, `list tags of ${repo}`);
      }
    },

    async dispatchWorkflow(repo, workflowFile, ref, inputs) {
      const target = split(repo);
      try {
        await octokit.rest.actions.createWorkflowDispatch({ ...target, workflow_id: workflowFile, ref, inputs });
      } catch (err) {
        throw classify(err, `dispatch ${workflowFile} in ${repo}`);
      }
    },

    async listWorkflowRuns(repo, workflowFile): Promise<WorkflowRun[]> {
      const target = split(repo);
      try {
        const { data } = await octokit.rest.actions.listWorkflowRuns({ ...target, workflow_id: workflowFile, event: 'workflow_dispatch', per_page: 100 });
        return data.workflow_runs.map((run) => ({
          id: run.id,
          status: run.status ?? 'queued',
          conclusion: run.conclusion ?? null,
          displayTitle: run.display_title,
          htmlUrl: run.html_url,
        }));
      } catch (err) {
        throw classify(err, `list runs of ${workflowFile} in ${repo}`);
      }
    },

    async compareCommits(repo, base, head) {
      const target = split(repo);
      let status: string;
      try {
        const { data } = await octokit.rest.repos.compareCommitsWithBasehead({ ...target, basehead: `${base}...${head}`, per_page: 1 });
        status = data.status;
      } catch (err) {
        throw classify(err, `compare ${base}...${head} in ${repo}`);
      }
      if (!(COMPARE_STATUSES as readonly string[]).includes(status)) {
        throw new Error(`GitHub compared ${base}...${head} in ${repo} with an unknown status "${status}"`);
      }
      return status as CompareStatus;
    },

    async commitAuthor(repo, sha) {
      const target = split(repo);
      try {
        const { data } = await octokit.rest.repos.getCommit({ ...target, ref: sha, per_page: 1 });
        return data.author?.login ?? undefined;
      } catch (err) {
        const status = statusOf(err);
        if (status === 404 || status === 422) throw new RefNotFoundError(repo, sha);
        throw classify(err, `read commit ${sha} of ${repo}`);
      }
    },

    async ensureDeployment(repo, request) {
      const target = split(repo);
      try {
        const existing = await octokit.paginate(octokit.rest.repos.listDeployments, { ...target, sha: request.sha, environment: request.environment, per_page: 100 });
        const ours = existing.find((d) => (d.payload as { pipeline?: string } | null)?.pipeline === request.pipelineId);
        if (ours) return ours.id;
        const { data } = await octokit.rest.repos.createDeployment({
          ...target,
          ref: request.sha,
          environment: request.environment,
          description: request.description,
          payload: { pipeline: request.pipelineId, ...(request.image ? { image_repository: request.image.repository, image_digest: request.image.digest } : {}) },
          production_environment: request.production,
          transient_environment: false,
          // The image was built and checked by CI already; GitHub must not merge or wait for checks.
          auto_merge: false,
          required_contexts: [],
        });
        if (!('id' in data)) throw new Error(`GitHub did not create a deployment of ${request.sha} to ${request.environment}: ${data.message ?? 'no reason given'}`);
        return data.id;
      } catch (err) {
        throw classify(err, `record a deployment to ${request.environment} in ${repo}`);
      }
    },

    async setDeploymentState(repo, deploymentId, update) {
      const target = split(repo);
      try {
        const { data: statuses } = await octokit.rest.repos.listDeploymentStatuses({ ...target, deployment_id: deploymentId, per_page: 1 });
        if (statuses[0]?.state === update.state) return;
        await octokit.rest.repos.createDeploymentStatus({
          ...target,
          deployment_id: deploymentId,
          state: update.state,
          description: update.description.slice(0, 140),
          ...(update.logUrl ? { log_url: update.logUrl } : {}),
          ...(update.environmentUrl ? { environment_url: update.environmentUrl } : {}),
          auto_inactive: true,
        });
      } catch (err) {
        throw classify(err, `set deployment ${deploymentId} of ${repo} to ${update.state}`);
      }
    },

    async isTeamMember(org, teamSlug, login) {
      try {
        const { data } = await octokit.rest.teams.getMembershipForUserInOrg({ org, team_slug: teamSlug, username: login });
        return data.state === 'active';
      } catch (err) {
        // GitHub answers 404 for "not a member" as well as for an unknown team.
        if (statusOf(err) === 404) return false;
        throw classify(err, `check ${login} in team ${org}/${teamSlug}`);
      }
    },

    async workflowRunById(repo, runId): Promise<WorkflowRunIdentity> {
      const target = split(repo);
      try {
        const { data } = await octokit.rest.actions.getWorkflowRun({ ...target, run_id: runId });
        return {
          id: data.id,
          repository: data.repository.full_name,
          displayTitle: data.display_title,
          event: data.event,
          runAttempt: data.run_attempt ?? 1,
          triggeringActor: data.triggering_actor?.login ?? undefined,
          actor: data.actor?.login ?? undefined,
          headBranch: data.head_branch ?? undefined,
        };
      } catch (err) {
        throw classify(err, `read workflow run ${runId} of ${repo}`);
      }
    },

    async releasePeople(repo, base, head): Promise<ReleasePeople> {
      const target = split(repo);
      const authors = new Set<string>();
      const committers = new Set<string>();
      const mergedBy = new Set<string>();
      const addPeople = (commit: CommitPeople) => {
        addLogin(authors, commit.author?.login);
        if (commit.committer?.login?.toLowerCase() !== WEB_UI_COMMITTER) addLogin(committers, commit.committer?.login);
      };
      let commits: CommitPeople[] = [];
      let truncated = false;
      let totalChanges = 1;
      try {
        if (base === undefined) {
          const { data } = await octokit.rest.repos.getCommit({ ...target, ref: head, per_page: 1 });
          commits = [data];
        } else {
          // Without page or per_page GitHub lists the first 250 commits of the comparison, and says how many there are.
          const { data } = await octokit.rest.repos.compareCommitsWithBasehead({ ...target, basehead: `${base}...${head}` });
          commits = data.commits;
          truncated = data.commits.length < data.total_commits;
          totalChanges = data.total_commits;
        }
      } catch (err) {
        throw classify(err, base === undefined ? `read commit ${head} of ${repo}` : `compare ${base}...${head} in ${repo}`);
      }
      commits.forEach(addPeople);
      // Newest first, as an approver reads a changelog; compare lists them oldest first.
      const changes: ReleaseChange[] = commits
        .slice(-MAX_CHANGES_LISTED)
        .reverse()
        .map((commit) => ({ sha: commit.sha, message: (commit.commit?.message ?? '').split('\n')[0]!.slice(0, 120), ...(commit.author?.login ? { author: commit.author.login } : {}) }));
      try {
        const linked = await octokit.paginate(octokit.rest.repos.listPullRequestsAssociatedWithCommit, { ...target, commit_sha: head, per_page: 100 });
        for (const pull of linked.filter((candidate) => candidate.merged_at)) {
          // The listing leaves out who merged; only the pull request itself says.
          const { data } = await octokit.rest.pulls.get({ ...target, pull_number: pull.number });
          if (data.merged) addLogin(mergedBy, data.merged_by?.login);
        }
      } catch (err) {
        throw classify(err, `read the pull requests of ${head} in ${repo}`);
      }
      return { authors: [...authors], committers: [...committers], mergedBy: [...mergedBy], truncated, changes, totalChanges };
    },
  };
}
