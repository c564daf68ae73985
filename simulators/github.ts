import { createHash } from 'node:crypto';
import { hasToken, json, randomHex, Simulator, type SimRequest, type SimResponse } from './http';

/**
 * GitHub's REST API, as far as the pipeline uses it: commits, tags, compare, pull requests, workflow
 * dispatches and runs, deployments, teams and SSH signing keys. Answers in GitHub's JSON shapes so that @octokit/rest runs against it unchanged.
 */

export interface GitHubSimulatorOptions {
  /** Requests must carry `Authorization: Bearer <token>` or `token <token>`. */
  token: string;
  host?: string;
  port?: number;
  /** Login that creates deployments and triggers runs. */
  viewerLogin?: string;
  /** Mimics the build workflow's `run-name: Build image ${{ inputs.gitRef }}`. */
  runName?: (inputs: Record<string, unknown>, workflowFile: string) => string;
}

export interface AddRepoOptions {
  defaultBranch?: string;
  private?: boolean;
}

export interface AddCommitOptions {
  /** Branch to create or advance; default: the default branch; null: none, the commit is reachable by SHA only. */
  branch?: string | null;
  /** Parents of the commit; default: the branch's tip (a new branch starts at the default branch's tip). */
  parents?: string[];
  authorLogin?: string;
  /** Default: the author. `web-flow` is who GitHub's web UI commits a merge as. */
  committerLogin?: string;
  /** The commit's e-mail addresses belong to no GitHub account: GitHub shows no author or committer user. */
  unlinked?: boolean;
  message?: string;
  date?: Date;
  sha?: string;
}

export interface SimCommit {
  sha: string;
  parents: string[];
  authorLogin: string;
  /** Absent: the author committed it (sandbox states saved before committers were recorded lack it). */
  committerLogin?: string;
  unlinked?: boolean;
  message: string;
  /** ISO 8601, seconds precision, as GitHub writes it. */
  date: string;
}

export interface AddPullRequestOptions {
  /** Default: the next number in the repository. */
  number?: number;
  author: string;
  headSha: string;
  /** The commit the merge made on the base branch; required once merged. */
  mergeCommitSha?: string;
  /** Who merged it; without, the pull request is open. */
  mergedBy?: string;
  title?: string;
  headRef?: string;
  baseRef?: string;
}

export interface SimPullRequest {
  number: number;
  id: number;
  author: string;
  headSha: string;
  headRef: string;
  baseRef: string;
  title: string;
  mergeCommitSha: string | null;
  mergedBy: string | null;
  createdAt: Date;
  mergedAt: Date | null;
}

export interface StartRunOptions {
  workflowFile: string;
  /** What the workflow's `run-name` made of its inputs. */
  displayTitle: string;
  /** Who started the run. */
  actor: string;
  /** Default: the actor. */
  triggeringActor?: string;
  /** Default workflow_dispatch. */
  event?: string;
  /** Default: the default branch. */
  branch?: string;
}

export interface DispatchRecord {
  repo: string;
  workflowFile: string;
  ref: string;
  inputs: Record<string, unknown>;
  at: Date;
  runId: number;
}

export type RunStatus = 'queued' | 'in_progress' | 'completed';

export interface SimWorkflowRun {
  id: number;
  runNumber: number;
  repo: string;
  workflowFile: string;
  workflowId: number;
  name: string;
  displayTitle: string;
  event: string;
  status: RunStatus;
  conclusion: string | null;
  headBranch: string;
  headSha: string;
  inputs: Record<string, unknown>;
  /** 1, then one more per re-run. */
  runAttempt: number;
  /** Who started the first attempt. */
  actor: string;
  /** Who started the latest attempt. */
  triggeringActor: string;
  createdAt: Date;
  updatedAt: Date;
  /** Why the run failed, when a dispatch handler threw. */
  failure?: string;
  /** The run's jobs: one named after the workflow, unless a handler's JobFailedError names the one that failed. */
  jobs: SimJob[];
}

export interface SimJob {
  id: number;
  name: string;
  status: RunStatus;
  conclusion: string | null;
}

/**
 * What a dispatch handler throws to end the run with a conclusion other than `failure`: `startup_failure` (the
 * workflow file is invalid, no job ran), `timed_out`, … Its jobs are gone when none started.
 */
export class RunEndedError extends Error {
  constructor(
    readonly conclusion: string,
    message: string,
  ) {
    super(message);
  }
}

/** What a dispatch handler throws to fail the run in a job of that name (a suite's e2e job, say). */
export class JobFailedError extends Error {
  constructor(
    readonly job: string,
    message: string,
  ) {
    super(message);
  }
}

export type DispatchHandler = (dispatch: DispatchRecord, run: SimWorkflowRun) => void | Promise<void>;

export interface SimDeployment {
  id: number;
  repo: string;
  sha: string;
  ref: string;
  task: string;
  payload: unknown;
  environment: string;
  originalEnvironment: string;
  description: string | null;
  creator: string;
  transientEnvironment: boolean;
  productionEnvironment: boolean;
  createdAt: Date;
}

export const DEPLOYMENT_STATES = ['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success'] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

export interface SimDeploymentStatus {
  id: number;
  deploymentId: number;
  repo: string;
  state: DeploymentState;
  description: string;
  environment: string;
  logUrl: string;
  environmentUrl: string;
  creator: string;
  createdAt: Date;
}

interface RepoState {
  id: number;
  owner: string;
  name: string;
  fullName: string;
  defaultBranch: string;
  private: boolean;
  createdAt: Date;
  commits: Map<string, SimCommit>;
  branches: Map<string, string>;
  /** Oldest first. */
  tags: Array<{ name: string; sha: string }>;
  workflows: Map<string, number>;
  pulls: SimPullRequest[];
}

type Resolution = { sha: string; kind: 'branch' | 'tag' | 'sha' } | { status: 404 | 422 };

const HTML_BASE = 'https://github.com';
const DOCS = 'https://docs.github.com/rest';
const REF_PATH = /^(?:refs\/)?(heads|tags)\/(.+)$/;

export class GitHubSimulator extends Simulator {
  readonly dispatches: DispatchRecord[] = [];
  readonly runs: SimWorkflowRun[] = [];
  readonly deployments: SimDeployment[] = [];
  readonly deploymentStatuses: SimDeploymentStatus[] = [];
  private readonly teams = new Map<string, Set<string>>();
  private readonly signingKeys = new Map<string, { id: number; key: string; title: string; created_at: string }[]>();
  private readonly knownUsers = new Set<string>();
  private readonly repos = new Map<string, RepoState>();
  private readonly dispatchHandlers = new Set<DispatchHandler>();
  private readonly pendingRuns = new Set<Promise<void>>();
  private nextId = 1000;
  private readonly token: string;
  private readonly viewerLogin: string;
  private readonly runName: (inputs: Record<string, unknown>, workflowFile: string) => string;

  constructor(options: GitHubSimulatorOptions) {
    super({
      host: options.host,
      port: options.port,
      notFound: (request) => this.unauthorized(request) ?? json(404, notFound()),
      invalidJson: () => json(400, { message: 'Problems parsing JSON', documentation_url: DOCS, status: '400' }),
    });
    this.token = options.token;
    this.viewerLogin = options.viewerLogin ?? 'deploy-pipeline';
    this.runName = options.runName ?? ((inputs) => `Build image ${typeof inputs.gitRef === 'string' ? inputs.gitRef : ''}`.trimEnd());

    const repo = '/repos/([^/]+)/([^/]+)';
    this.api('GET', new RegExp(`^${repo}$`), (req) => this.getRepo(req));
    this.api('GET', new RegExp(`^${repo}/commits/([^/]+)$`), (req) => this.getCommit(req));
    this.api('GET', new RegExp(`^${repo}/commits/([^/]+)/pulls$`), (req) => this.pullsOfCommit(req));
    this.api('GET', new RegExp(`^${repo}/pulls/(\\d+)$`), (req) => this.getPull(req));
    this.api('GET', new RegExp(`^${repo}/tags$`), (req) => this.listTags(req));
    this.api('GET', new RegExp(`^${repo}/compare/(.+)$`), (req) => this.compare(req));
    this.api('POST', new RegExp(`^${repo}/actions/workflows/([^/]+)/dispatches$`), (req) => this.dispatch(req));
    this.api('GET', new RegExp(`^${repo}/actions/workflows/([^/]+)/runs$`), (req) => this.listRuns(req));
    this.api('GET', new RegExp(`^${repo}/actions/runs/(\\d+)$`), (req) => this.getRun(req));
    this.api('GET', new RegExp(`^${repo}/actions/runs/(\\d+)/jobs$`), (req) => this.listJobs(req));
    this.api('POST', new RegExp(`^${repo}/actions/runs/(\\d+)/cancel$`), (req) => this.cancelRun(req));
    this.api('POST', new RegExp(`^${repo}/deployments$`), (req) => this.createDeployment(req));
    this.api('GET', new RegExp(`^${repo}/deployments$`), (req) => this.listDeployments(req));
    this.api('POST', new RegExp(`^${repo}/deployments/(\\d+)/statuses$`), (req) => this.createDeploymentStatus(req));
    this.api('GET', new RegExp(`^${repo}/deployments/(\\d+)/statuses$`), (req) => this.listDeploymentStatuses(req));
    this.server.route('GET', /^\/orgs\/([^/]+)\/teams\/([^/]+)\/memberships\/([^/]+)$/, (req) => this.teamMembership(req));
    this.server.route('GET', /^\/users\/([^/]+)\/ssh_signing_keys$/, (req) => this.sshSigningKeys(req));
  }

  /** Adds an SSH signing key (`ssh-ed25519 AAAA… comment`) to a user's account, as Settings → SSH keys does. */
  addSshSigningKey(login: string, key: string, title = 'signing key'): void {
    const keys = this.signingKeys.get(login.toLowerCase()) ?? [];
    keys.push({ id: this.newId(), key: key.trim().split(' ').slice(0, 2).join(' '), title, created_at: new Date().toISOString() });
    this.signingKeys.set(login.toLowerCase(), keys);
  }

  /** `GET /users/{username}/ssh_signing_keys`: a known user's keys (none is an empty list), 404 for anyone else. */
  private sshSigningKeys(req: SimRequest): SimResponse {
    const denied = this.unauthorized(req);
    if (denied) return denied;
    const login = req.params[0]!.toLowerCase();
    const keys = this.signingKeys.get(login);
    if (!keys && !this.knownUsers.has(login)) return json(404, notFound());
    const page = this.paginate(req, keys ?? []);
    return json(200, page.items, page.headers);
  }

  /** A user GitHub knows, with or without signing keys. */
  addUser(login: string): void {
    this.knownUsers.add(login.toLowerCase());
  }

  /** Makes `login` an active member of `org/team`. */
  addTeamMember(org: string, team: string, login: string): void {
    const key = `${org}/${team}`.toLowerCase();
    const members = this.teams.get(key) ?? new Set<string>();
    members.add(login.toLowerCase());
    this.teams.set(key, members);
  }

  private teamMembership(req: SimRequest): SimResponse {
    const denied = this.unauthorized(req);
    if (denied) return denied;
    const [org, team, login] = req.params;
    const member = this.teams.get(`${org}/${team}`.toLowerCase())?.has(login!.toLowerCase());
    if (!member) return json(404, notFound());
    return json(200, { url: `${this.url}/orgs/${org}/teams/${team}/memberships/${login}`, role: 'member', state: 'active' });
  }

  addRepo(repo: string, options: AddRepoOptions = {}): void {
    const [owner, name] = splitRepo(repo);
    if (this.repos.has(repo.toLowerCase())) throw new Error(`repository ${repo} already exists`);
    this.repos.set(repo.toLowerCase(), {
      id: this.newId(),
      owner,
      name,
      fullName: `${owner}/${name}`,
      defaultBranch: options.defaultBranch ?? 'main',
      private: options.private ?? false,
      createdAt: new Date(),
      commits: new Map(),
      branches: new Map(),
      tags: [],
      workflows: new Map(),
      pulls: [],
    });
  }

  /** Adds a commit and returns its SHA; see AddCommitOptions for which branch moves. */
  addCommit(repo: string, options: AddCommitOptions = {}): string {
    const state = this.repoOrThrow(repo);
    const moves = options.branch === null ? undefined : (options.branch ?? state.defaultBranch);
    let parents = options.parents;
    if (!parents) {
      const tip = (moves && state.branches.get(moves)) ?? state.branches.get(state.defaultBranch);
      parents = tip ? [tip] : [];
    }
    for (const parent of parents) {
      if (!state.commits.has(parent)) throw new Error(`parent ${parent} is not a commit of ${repo}`);
    }
    const sha = options.sha ?? randomHex(40);
    if (!/^[0-9a-f]{40}$/.test(sha)) throw new Error(`sha ${sha} is not 40 lower-case hex digits`);
    if (state.commits.has(sha)) throw new Error(`commit ${sha} already exists in ${repo}`);
    state.commits.set(sha, {
      sha,
      parents: [...parents],
      authorLogin: options.authorLogin ?? 'octocat',
      committerLogin: options.committerLogin ?? options.authorLogin ?? 'octocat',
      ...(options.unlinked ? { unlinked: true } : {}),
      message: options.message ?? `Commit ${state.commits.size + 1}`,
      date: githubDate(options.date ?? new Date()),
    });
    if (moves) state.branches.set(moves, sha);
    return sha;
  }

  /** Adds a pull request and returns its number: merged when `mergedBy` is given, open otherwise. */
  addPullRequest(repo: string, options: AddPullRequestOptions): number {
    const state = this.repoOrThrow(repo);
    for (const sha of [options.headSha, options.mergeCommitSha]) {
      if (sha !== undefined && !state.commits.has(sha)) throw new Error(`${sha} is not a commit of ${repo}`);
    }
    if (options.mergedBy && !options.mergeCommitSha) throw new Error('a merged pull request needs its mergeCommitSha');
    const number = options.number ?? Math.max(0, ...state.pulls.map((pull) => pull.number)) + 1;
    if (state.pulls.some((pull) => pull.number === number)) throw new Error(`pull request #${number} already exists in ${repo}`);
    const now = new Date();
    state.pulls.push({
      number,
      id: this.newId(),
      author: options.author,
      headSha: options.headSha,
      headRef: options.headRef ?? `change-${number}`,
      baseRef: options.baseRef ?? state.defaultBranch,
      title: options.title ?? `Change ${number}`,
      mergeCommitSha: options.mergeCommitSha ?? null,
      mergedBy: options.mergedBy ?? null,
      createdAt: now,
      mergedAt: options.mergedBy ? now : null,
    });
    return number;
  }

  /**
   * A run a person started (from the Actions tab or `gh workflow run`), already in progress, as its job sees it
   * when it asks for an OIDC token; returns the run's ID. No dispatch handler is called.
   */
  startRun(repo: string, options: StartRunOptions): number {
    const state = this.repoOrThrow(repo);
    const workflow = this.workflow(state, options.workflowFile);
    if (!workflow) throw new Error(`${options.workflowFile} is not a workflow file name`);
    const branch = options.branch ?? state.defaultBranch;
    const headSha = state.branches.get(branch);
    if (!headSha) throw new Error(`branch ${branch} of ${repo} has no commits; add one first`);
    const run = this.recordRun(state, workflow, {
      displayTitle: options.displayTitle,
      event: options.event ?? 'workflow_dispatch',
      status: 'in_progress',
      headBranch: branch,
      headSha,
      inputs: {},
      actor: options.actor,
      triggeringActor: options.triggeringActor ?? options.actor,
    });
    return run.id;
  }

  /** A new run of the workflow, its first attempt, numbered after the workflow's earlier runs. */
  private recordRun(
    state: RepoState,
    workflow: { id: number; file: string },
    fields: Pick<SimWorkflowRun, 'displayTitle' | 'event' | 'status' | 'headBranch' | 'headSha' | 'inputs' | 'actor' | 'triggeringActor'>,
  ): SimWorkflowRun {
    const now = new Date();
    const run: SimWorkflowRun = {
      id: this.newId(),
      runNumber: this.runs.filter((r) => r.workflowId === workflow.id).length + 1,
      repo: state.fullName,
      workflowFile: workflow.file,
      workflowId: workflow.id,
      name: workflowName(workflow.file),
      conclusion: null,
      runAttempt: 1,
      createdAt: now,
      updatedAt: now,
      ...fields,
      jobs: [],
    };
    run.jobs.push({ id: this.newId(), name: workflowName(workflow.file), status: fields.status, conclusion: null });
    this.runs.push(run);
    return run;
  }

  /** "Re-run jobs": the same run, its next attempt, started by `by`. */
  rerun(repo: string, runId: number, by: string): void {
    const state = this.repoOrThrow(repo);
    const run = this.runs.find((candidate) => candidate.repo === state.fullName && candidate.id === runId);
    if (!run) throw new Error(`run ${runId} is not a run of ${repo}`);
    run.runAttempt += 1;
    run.triggeringActor = by;
    run.status = 'in_progress';
    run.conclusion = null;
    run.updatedAt = new Date();
  }

  /** Tags `target` (a SHA or branch); the newest tag is listed first. */
  addTag(repo: string, name: string, target: string): void {
    const state = this.repoOrThrow(repo);
    const resolved = this.resolve(state, target);
    if (!('sha' in resolved)) throw new Error(`${target} is not a commit or branch of ${repo}`);
    if (state.tags.some((tag) => tag.name === name)) throw new Error(`tag ${name} already exists in ${repo}`);
    state.tags.push({ name, sha: resolved.sha });
  }

  setBranch(repo: string, branch: string, sha: string): void {
    const state = this.repoOrThrow(repo);
    if (!state.commits.has(sha)) throw new Error(`${sha} is not a commit of ${repo}`);
    state.branches.set(branch, sha);
  }

  branchTip(repo: string, branch?: string): string | undefined {
    const state = this.repoOrThrow(repo);
    return state.branches.get(branch ?? state.defaultBranch);
  }

  getCommitRecord(repo: string, sha: string): SimCommit | undefined {
    return this.repoOrThrow(repo).commits.get(sha);
  }

  /** Called for every workflow_dispatch while its run is in progress; a throw makes the run fail. */
  onDispatch(handler: DispatchHandler): () => void {
    this.dispatchHandlers.add(handler);
    return () => this.dispatchHandlers.delete(handler);
  }

  /** Resolves once every run dispatched so far has completed. */
  async settled(): Promise<void> {
    while (this.pendingRuns.size > 0) await Promise.allSettled([...this.pendingRuns]);
  }

  /** Every endpoint checks the token before the repo, as GitHub does: a bad token never learns whether a repo exists. */
  private api(method: string, pattern: RegExp, handler: (req: SimRequest) => SimResponse): void {
    this.server.route(method, pattern, (req) => {
      const denied = this.unauthorized(req);
      if (denied) return denied;
      if (!this.repos.has(`${req.params[0]}/${req.params[1]}`.toLowerCase())) return json(404, notFound());
      return handler(req);
    });
  }

  private unauthorized(req: SimRequest): SimResponse | undefined {
    if (hasToken(req.headers, this.token, ['bearer', 'token'])) return undefined;
    return json(401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });
  }

  private getRepo(req: SimRequest): SimResponse {
    return json(200, this.repoJson(this.repoFor(req)));
  }

  private getCommit(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const ref = req.params[2];
    const resolved = this.resolve(state, ref);
    if ('status' in resolved) {
      return json(resolved.status, { message: `No commit found for SHA: ${ref}`, documentation_url: `${DOCS}/commits/commits#get-a-commit`, status: String(resolved.status) });
    }
    return json(200, this.commitJson(state, resolved.sha, true));
  }

  private listTags(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const newestFirst = [...state.tags].reverse();
    const page = this.paginate(req, newestFirst);
    const body = page.items.map((tag) => ({
      name: tag.name,
      commit: { sha: tag.sha, url: `${this.apiBase(state)}/commits/${tag.sha}` },
      zipball_url: `${this.apiBase(state)}/zipball/refs/tags/${tag.name}`,
      tarball_url: `${this.apiBase(state)}/tarball/refs/tags/${tag.name}`,
      node_id: nodeId('Ref', `${state.fullName}:${tag.name}`),
    }));
    return json(200, body, page.headers);
  }

  private compare(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const basehead = req.params[2];
    const separator = basehead.indexOf('...');
    if (separator <= 0) return json(404, notFound());
    const base = this.resolve(state, basehead.slice(0, separator));
    const head = this.resolve(state, basehead.slice(separator + 3));
    if (!('sha' in base) || !('sha' in head)) return json(404, notFound());
    const baseAncestors = this.ancestors(state, base.sha);
    const headAncestors = this.ancestors(state, head.sha);
    const mergeBase = [...headAncestors].find((sha) => baseAncestors.has(sha));
    if (!mergeBase) {
      return json(404, { message: `No common ancestor between ${basehead.slice(0, separator)} and ${basehead.slice(separator + 3)}.`, documentation_url: DOCS, status: '404' });
    }
    const aheadCommits = [...headAncestors].filter((sha) => !baseAncestors.has(sha));
    const behindBy = [...baseAncestors].filter((sha) => !headAncestors.has(sha)).length;
    const aheadBy = aheadCommits.length;
    const status = aheadBy === 0 && behindBy === 0 ? 'identical' : behindBy === 0 ? 'ahead' : aheadBy === 0 ? 'behind' : 'diverged';
    // Without page or per_page GitHub lists the first 250 commits; with them, pages of at most 100.
    const paged = req.query.has('per_page') || req.query.has('page');
    const perPage = paged ? clampPerPage(req.query.get('per_page'), 100) : 250;
    const page = paged ? Math.max(1, Number.parseInt(req.query.get('page') ?? '1', 10) || 1) : 1;
    const html = `${HTML_BASE}/${state.fullName}/compare/${basehead}`;
    return json(200, {
      url: `${this.apiBase(state)}/compare/${basehead}`,
      html_url: html,
      permalink_url: `${HTML_BASE}/${state.fullName}/compare/${state.owner}:${base.sha.slice(0, 7)}...${state.owner}:${head.sha.slice(0, 7)}`,
      diff_url: `${html}.diff`,
      patch_url: `${html}.patch`,
      base_commit: this.commitJson(state, base.sha, false),
      merge_base_commit: this.commitJson(state, mergeBase, false),
      status,
      ahead_by: aheadBy,
      behind_by: behindBy,
      total_commits: aheadBy,
      commits: aheadCommits
        .reverse()
        .slice((page - 1) * perPage, page * perPage)
        .map((sha) => this.commitJson(state, sha, false)),
      files: [],
    });
  }

  private dispatch(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const workflow = this.workflow(state, req.params[2]);
    if (!workflow) return json(404, notFound());
    const body = isObject(req.body) ? req.body : {};
    const ref = body.ref;
    if (typeof ref !== 'string' || ref.length === 0) {
      return json(422, { message: 'Invalid request.\n\n"ref" wasn\'t supplied.', documentation_url: DOCS, status: '422' });
    }
    if (body.inputs !== undefined && !isObject(body.inputs)) {
      return json(422, { message: 'Invalid request.\n\nFor \'properties/inputs\', is not an object.', documentation_url: DOCS, status: '422' });
    }
    const resolved = this.resolve(state, ref);
    if (!('sha' in resolved) || resolved.kind === 'sha') {
      return json(422, { message: `No ref found for: ${ref}`, documentation_url: DOCS, status: '422' });
    }
    const inputs = { ...((body.inputs as Record<string, unknown> | undefined) ?? {}) };
    const refMatch = REF_PATH.exec(ref);
    const run = this.recordRun(state, workflow, {
      displayTitle: this.runName(inputs, workflow.file),
      event: 'workflow_dispatch',
      status: 'queued',
      headBranch: refMatch ? refMatch[2] : ref,
      headSha: resolved.sha,
      inputs,
      actor: this.viewerLogin,
      triggeringActor: this.viewerLogin,
    });
    const dispatch: DispatchRecord = { repo: state.fullName, workflowFile: workflow.file, ref, inputs, at: run.createdAt, runId: run.id };
    this.dispatches.push(dispatch);
    this.execute(dispatch, run);
    return { status: 204 };
  }

  private execute(dispatch: DispatchRecord, run: SimWorkflowRun): void {
    const handlers = [...this.dispatchHandlers];
    const finished = (async () => {
      // Let the dispatch answer first, as GitHub queues the run.
      await new Promise((resolve) => setImmediate(resolve));
      run.status = 'in_progress';
      run.updatedAt = new Date();
      for (const job of run.jobs) job.status = 'in_progress';
      let conclusion = 'success';
      let failedJob: string | undefined;
      try {
        for (const handler of handlers) await handler(dispatch, run);
      } catch (err) {
        conclusion = err instanceof RunEndedError ? err.conclusion : 'failure';
        run.failure = err instanceof Error ? err.message : String(err);
        if (err instanceof JobFailedError) failedJob = err.job;
        if (conclusion === 'startup_failure') run.jobs.length = 0;
      }
      // A run cancelled meanwhile stays cancelled.
      if ((run.status as RunStatus) === 'completed') return;
      if (failedJob !== undefined) run.jobs[0]!.name = failedJob;
      for (const job of run.jobs) Object.assign(job, { status: 'completed', conclusion });
      run.conclusion = conclusion;
      run.status = 'completed';
      run.updatedAt = new Date();
    })();
    this.pendingRuns.add(finished);
    void finished.finally(() => this.pendingRuns.delete(finished));
  }

  private listRuns(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const workflow = this.workflow(state, req.params[2]);
    if (!workflow) return json(404, notFound());
    const query = req.query;
    const runs = this.runs
      .filter((run) => run.repo === state.fullName && run.workflowId === workflow.id)
      .filter((run) => !query.get('branch') || run.headBranch === query.get('branch'))
      .filter((run) => !query.get('event') || run.event === query.get('event'))
      .filter((run) => !query.get('head_sha') || run.headSha === query.get('head_sha'))
      .filter((run) => {
        const status = query.get('status');
        return !status || run.status === status || run.conclusion === status;
      })
      .reverse();
    const page = this.paginate(req, runs);
    return json(200, { total_count: runs.length, workflow_runs: page.items.map((run) => this.runJson(state, run)) }, page.headers);
  }

  private getRun(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const run = this.runs.find((candidate) => candidate.repo === state.fullName && candidate.id === Number(req.params[2]));
    return run ? json(200, this.runJson(state, run)) : json(404, notFound());
  }

  /** `GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs`: the latest attempt's jobs. */
  private listJobs(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const run = this.runs.find((candidate) => candidate.repo === state.fullName && candidate.id === Number(req.params[2]));
    if (!run) return json(404, notFound());
    const page = this.paginate(req, run.jobs);
    const api = this.apiBase(state);
    const jobs = page.items.map((job) => ({
      id: job.id,
      run_id: run.id,
      run_attempt: run.runAttempt,
      node_id: nodeId('Job', String(job.id)),
      head_sha: run.headSha,
      head_branch: run.headBranch,
      url: `${api}/actions/jobs/${job.id}`,
      html_url: `${HTML_BASE}/${state.fullName}/actions/runs/${run.id}/job/${job.id}`,
      run_url: `${api}/actions/runs/${run.id}`,
      status: job.status,
      conclusion: job.conclusion,
      name: job.name,
      workflow_name: run.name,
      started_at: githubDate(run.createdAt),
      completed_at: job.status === 'completed' ? githubDate(run.updatedAt) : null,
      steps: [],
      labels: ['ubuntu-latest'],
    }));
    return json(200, { total_count: run.jobs.length, jobs }, page.headers);
  }

  /** `POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel`: 202, or 409 once the run has completed. */
  private cancelRun(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const run = this.runs.find((candidate) => candidate.repo === state.fullName && candidate.id === Number(req.params[2]));
    if (!run) return json(404, notFound());
    if (run.status === 'completed') {
      return json(409, { message: 'Cannot cancel a workflow run that is completed.', documentation_url: `${DOCS}/actions/workflow-runs#cancel-a-workflow-run`, status: '409' });
    }
    for (const job of run.jobs) Object.assign(job, { status: 'completed', conclusion: 'cancelled' });
    Object.assign(run, { status: 'completed', conclusion: 'cancelled', updatedAt: new Date() });
    return json(202, {});
  }

  /** `GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls`: the pull requests that merged as, or end at, the commit. */
  private pullsOfCommit(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const ref = req.params[2];
    const resolved = this.resolve(state, ref);
    if (!('sha' in resolved)) {
      return json(422, { message: `No commit found for SHA: ${ref}`, documentation_url: `${DOCS}/commits/commits#list-pull-requests-associated-with-a-commit`, status: '422' });
    }
    const linked = state.pulls.filter((pull) => pull.mergeCommitSha === resolved.sha || pull.headSha === resolved.sha).reverse();
    const page = this.paginate(req, linked);
    return json(200, page.items.map((pull) => this.pullJson(state, pull, false)), page.headers);
  }

  private getPull(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const pull = state.pulls.find((candidate) => candidate.number === Number(req.params[2]));
    return pull ? json(200, this.pullJson(state, pull, true)) : json(404, notFound());
  }

  private createDeployment(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const body = isObject(req.body) ? req.body : {};
    if (typeof body.ref !== 'string' || body.ref.length === 0) return validationFailed('Deployment', 'ref', 'missing_field');
    const resolved = this.resolve(state, body.ref);
    if (!('sha' in resolved)) return json(422, { message: `No ref found for: ${body.ref}`, documentation_url: DOCS, status: '422' });
    const environment = typeof body.environment === 'string' && body.environment ? body.environment : 'production';
    let payload: unknown = body.payload ?? {};
    if (typeof payload === 'string') {
      try {
        payload = JSON.parse(payload) as unknown;
      } catch {
        return validationFailed('Deployment', 'payload', 'invalid');
      }
    }
    const deployment: SimDeployment = {
      id: this.newId(),
      repo: state.fullName,
      sha: resolved.sha,
      ref: body.ref,
      task: typeof body.task === 'string' && body.task ? body.task : 'deploy',
      payload,
      environment,
      originalEnvironment: environment,
      description: typeof body.description === 'string' ? body.description : null,
      creator: this.viewerLogin,
      transientEnvironment: body.transient_environment === true,
      productionEnvironment: typeof body.production_environment === 'boolean' ? body.production_environment : environment === 'production',
      createdAt: new Date(),
    };
    this.deployments.push(deployment);
    return json(201, this.deploymentJson(state, deployment));
  }

  private listDeployments(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const query = req.query;
    const matches = this.deployments
      .filter((d) => d.repo === state.fullName)
      .filter((d) => !query.get('sha') || d.sha === query.get('sha'))
      .filter((d) => !query.get('ref') || d.ref === query.get('ref'))
      .filter((d) => !query.get('task') || d.task === query.get('task'))
      .filter((d) => !query.get('environment') || d.environment === query.get('environment'))
      .reverse();
    const page = this.paginate(req, matches);
    return json(200, page.items.map((d) => this.deploymentJson(state, d)), page.headers);
  }

  private createDeploymentStatus(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const deployment = this.deployments.find((d) => d.repo === state.fullName && d.id === Number(req.params[2]));
    if (!deployment) return json(404, notFound());
    const body = isObject(req.body) ? req.body : {};
    const stateName = body.state;
    if (typeof stateName !== 'string' || !(DEPLOYMENT_STATES as readonly string[]).includes(stateName)) {
      return validationFailed('DeploymentStatus', 'state', typeof stateName === 'string' ? 'invalid' : 'missing_field');
    }
    if (typeof body.environment === 'string' && body.environment) deployment.environment = body.environment;
    const status: SimDeploymentStatus = {
      id: this.newId(),
      deploymentId: deployment.id,
      repo: state.fullName,
      state: stateName as DeploymentState,
      description: typeof body.description === 'string' ? body.description : '',
      environment: deployment.environment,
      logUrl: stringField(body.log_url) ?? stringField(body.target_url) ?? '',
      environmentUrl: stringField(body.environment_url) ?? '',
      creator: this.viewerLogin,
      createdAt: new Date(),
    };
    this.deploymentStatuses.push(status);
    return json(201, this.deploymentStatusJson(state, deployment, status));
  }

  private listDeploymentStatuses(req: SimRequest): SimResponse {
    const state = this.repoFor(req);
    const deployment = this.deployments.find((d) => d.repo === state.fullName && d.id === Number(req.params[2]));
    if (!deployment) return json(404, notFound());
    const statuses = this.deploymentStatuses.filter((s) => s.deploymentId === deployment.id).reverse();
    const page = this.paginate(req, statuses);
    return json(200, page.items.map((s) => this.deploymentStatusJson(state, deployment, s)), page.headers);
  }

  private repoFor(req: SimRequest): RepoState {
    return this.repoOrThrow(`${req.params[0]}/${req.params[1]}`);
  }

  private repoOrThrow(repo: string): RepoState {
    const state = this.repos.get(repo.toLowerCase());
    if (!state) throw new Error(`unknown repository ${repo}; call addRepo first`);
    return state;
  }

  private resolve(state: RepoState, ref: string): Resolution {
    const qualified = REF_PATH.exec(ref);
    if (qualified) {
      const sha = qualified[1] === 'heads' ? state.branches.get(qualified[2]) : state.tags.find((tag) => tag.name === qualified[2])?.sha;
      return sha ? { sha, kind: qualified[1] === 'heads' ? 'branch' : 'tag' } : { status: 422 };
    }
    const branch = state.branches.get(ref);
    if (branch) return { sha: branch, kind: 'branch' };
    const tag = state.tags.find((candidate) => candidate.name === ref);
    if (tag) return { sha: tag.sha, kind: 'tag' };
    if (!/^[0-9a-f]{7,40}$/i.test(ref)) return { status: 422 };
    const prefix = ref.toLowerCase();
    const found = [...state.commits.keys()].filter((sha) => sha.startsWith(prefix));
    if (found.length === 1) return { sha: found[0], kind: 'sha' };
    return { status: found.length === 0 ? 404 : 422 };
  }

  /** The commit and all its ancestors, nearest first. */
  private ancestors(state: RepoState, sha: string): Set<string> {
    const seen = new Set<string>();
    const queue = [sha];
    while (queue.length > 0) {
      const next = queue.shift() as string;
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push(...(state.commits.get(next)?.parents ?? []));
    }
    return seen;
  }

  private workflow(state: RepoState, idOrFile: string): { id: number; file: string } | undefined {
    if (/^\d+$/.test(idOrFile)) {
      const id = Number(idOrFile);
      const entry = [...state.workflows.entries()].find(([, workflowId]) => workflowId === id);
      return entry ? { id, file: entry[0] } : undefined;
    }
    if (!/^[A-Za-z0-9_.-]+\.ya?ml$/.test(idOrFile)) return undefined;
    let id = state.workflows.get(idOrFile);
    if (id === undefined) {
      id = this.newId();
      state.workflows.set(idOrFile, id);
    }
    return { id, file: idOrFile };
  }

  private paginate<T>(req: SimRequest, items: T[]): { items: T[]; headers: Record<string, string> } {
    const perPage = clampPerPage(req.query.get('per_page'), 100);
    const page = Math.max(1, Number.parseInt(req.query.get('page') ?? '1', 10) || 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (target: number, rel: string) => {
      const url = new URL(req.path, this.url);
      for (const [key, value] of req.query) url.searchParams.set(key, value);
      url.searchParams.set('per_page', String(perPage));
      url.searchParams.set('page', String(target));
      return `<${url.toString()}>; rel="${rel}"`;
    };
    const links: string[] = [];
    if (page > 1) links.push(link(page - 1, 'prev'));
    if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
    if (page > 1) links.push(link(1, 'first'));
    return { items: items.slice((page - 1) * perPage, page * perPage), headers: links.length > 0 ? { link: links.join(', ') } : {} };
  }

  private newId(): number {
    this.nextId += 1;
    return this.nextId;
  }

  private apiBase(state: RepoState): string {
    return `${this.url}/repos/${state.fullName}`;
  }

  private userJson(login: string): Record<string, unknown> {
    const id = Number.parseInt(createHash('sha1').update(login).digest('hex').slice(0, 7), 16);
    return {
      login,
      id,
      node_id: nodeId('User', login),
      avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`,
      url: `${this.url}/users/${login}`,
      html_url: `${HTML_BASE}/${login}`,
      type: login.endsWith('[bot]') ? 'Bot' : 'User',
      site_admin: false,
    };
  }

  private repoJson(state: RepoState): Record<string, unknown> {
    const api = this.apiBase(state);
    return {
      id: state.id,
      node_id: nodeId('Repository', state.fullName),
      name: state.name,
      full_name: state.fullName,
      private: state.private,
      owner: { ...this.userJson(state.owner), type: 'Organization' },
      html_url: `${HTML_BASE}/${state.fullName}`,
      description: null,
      fork: false,
      url: api,
      tags_url: `${api}/tags`,
      deployments_url: `${api}/deployments`,
      clone_url: `${HTML_BASE}/${state.fullName}.git`,
      default_branch: state.defaultBranch,
      visibility: state.private ? 'private' : 'public',
      archived: false,
      disabled: false,
      created_at: githubDate(state.createdAt),
      pushed_at: githubDate(new Date()),
      permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
    };
  }

  private commitJson(state: RepoState, sha: string, detailed: boolean): Record<string, unknown> {
    const commit = state.commits.get(sha);
    if (!commit) throw new Error(`commit ${sha} is missing from ${state.fullName}`);
    const api = this.apiBase(state);
    const person = (login: string) =>
      login === 'web-flow' ? { name: 'GitHub', email: 'noreply@github.com', date: commit.date } : { name: login, email: `${login}@users.noreply.github.com`, date: commit.date };
    const tree = createHash('sha1').update(`tree:${sha}`).digest('hex');
    const result: Record<string, unknown> = {
      sha,
      node_id: nodeId('Commit', `${state.fullName}:${sha}`),
      commit: {
        author: person(commit.authorLogin),
        committer: person(commit.committerLogin ?? commit.authorLogin),
        message: commit.message,
        tree: { sha: tree, url: `${api}/git/trees/${tree}` },
        url: `${api}/git/commits/${sha}`,
        comment_count: 0,
        verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
      },
      url: `${api}/commits/${sha}`,
      html_url: `${HTML_BASE}/${state.fullName}/commit/${sha}`,
      comments_url: `${api}/commits/${sha}/comments`,
      author: commit.unlinked ? null : this.userJson(commit.authorLogin),
      committer: commit.unlinked ? null : this.userJson(commit.committerLogin ?? commit.authorLogin),
      parents: commit.parents.map((parent) => ({ sha: parent, url: `${api}/commits/${parent}`, html_url: `${HTML_BASE}/${state.fullName}/commit/${parent}` })),
    };
    if (detailed) {
      result.stats = { total: 0, additions: 0, deletions: 0 };
      result.files = [];
    }
    return result;
  }

  private runJson(state: RepoState, run: SimWorkflowRun): Record<string, unknown> {
    const api = this.apiBase(state);
    return {
      id: run.id,
      name: run.name,
      node_id: nodeId('WorkflowRun', String(run.id)),
      head_branch: run.headBranch,
      head_sha: run.headSha,
      path: `.github/workflows/${run.workflowFile}`,
      display_title: run.displayTitle,
      run_number: run.runNumber,
      event: run.event,
      status: run.status,
      conclusion: run.conclusion,
      workflow_id: run.workflowId,
      url: `${api}/actions/runs/${run.id}`,
      html_url: `${HTML_BASE}/${state.fullName}/actions/runs/${run.id}`,
      jobs_url: `${api}/actions/runs/${run.id}/jobs`,
      logs_url: `${api}/actions/runs/${run.id}/logs`,
      workflow_url: `${api}/actions/workflows/${run.workflowId}`,
      created_at: githubDate(run.createdAt),
      updated_at: githubDate(run.updatedAt),
      run_started_at: githubDate(run.createdAt),
      run_attempt: run.runAttempt,
      actor: this.userJson(run.actor),
      triggering_actor: this.userJson(run.triggeringActor),
      repository: { id: state.id, name: state.name, full_name: state.fullName, url: api },
    };
  }

  /** A pull request as the listings show it, or `detailed` as GET /pulls/{n} does (with merged and merged_by). */
  private pullJson(state: RepoState, pull: SimPullRequest, detailed: boolean): Record<string, unknown> {
    const api = this.apiBase(state);
    const html = `${HTML_BASE}/${state.fullName}/pull/${pull.number}`;
    const repository = this.repoJson(state);
    const side = (ref: string, sha: string) => ({ label: `${state.owner}:${ref}`, ref, sha, user: repository.owner, repo: repository });
    const result: Record<string, unknown> = {
      url: `${api}/pulls/${pull.number}`,
      id: pull.id,
      node_id: nodeId('PullRequest', String(pull.id)),
      html_url: html,
      diff_url: `${html}.diff`,
      patch_url: `${html}.patch`,
      issue_url: `${api}/issues/${pull.number}`,
      commits_url: `${api}/pulls/${pull.number}/commits`,
      number: pull.number,
      state: pull.mergedAt ? 'closed' : 'open',
      locked: false,
      title: pull.title,
      user: this.userJson(pull.author),
      body: null,
      labels: [],
      created_at: githubDate(pull.createdAt),
      updated_at: githubDate(pull.mergedAt ?? pull.createdAt),
      closed_at: pull.mergedAt ? githubDate(pull.mergedAt) : null,
      merged_at: pull.mergedAt ? githubDate(pull.mergedAt) : null,
      merge_commit_sha: pull.mergeCommitSha,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      head: side(pull.headRef, pull.headSha),
      base: side(pull.baseRef, state.branches.get(pull.baseRef) ?? pull.headSha),
      author_association: 'MEMBER',
      auto_merge: null,
      draft: false,
    };
    if (detailed) {
      Object.assign(result, {
        merged: pull.mergedAt !== null,
        mergeable: pull.mergedAt ? null : true,
        mergeable_state: pull.mergedAt ? 'unknown' : 'clean',
        merged_by: pull.mergedBy ? this.userJson(pull.mergedBy) : null,
        comments: 0,
        review_comments: 0,
        maintainer_can_modify: false,
        commits: 1,
        additions: 0,
        deletions: 0,
        changed_files: 0,
      });
    }
    return result;
  }

  private deploymentJson(state: RepoState, deployment: SimDeployment): Record<string, unknown> {
    const url = `${this.apiBase(state)}/deployments/${deployment.id}`;
    return {
      url,
      id: deployment.id,
      node_id: nodeId('Deployment', String(deployment.id)),
      sha: deployment.sha,
      ref: deployment.ref,
      task: deployment.task,
      payload: deployment.payload,
      original_environment: deployment.originalEnvironment,
      environment: deployment.environment,
      description: deployment.description,
      creator: this.userJson(deployment.creator),
      created_at: githubDate(deployment.createdAt),
      updated_at: githubDate(deployment.createdAt),
      statuses_url: `${url}/statuses`,
      repository_url: this.apiBase(state),
      transient_environment: deployment.transientEnvironment,
      production_environment: deployment.productionEnvironment,
    };
  }

  private deploymentStatusJson(state: RepoState, deployment: SimDeployment, status: SimDeploymentStatus): Record<string, unknown> {
    const deploymentUrl = `${this.apiBase(state)}/deployments/${deployment.id}`;
    return {
      url: `${deploymentUrl}/statuses/${status.id}`,
      id: status.id,
      node_id: nodeId('DeploymentStatus', String(status.id)),
      state: status.state,
      creator: this.userJson(status.creator),
      description: status.description,
      environment: status.environment,
      target_url: status.logUrl,
      log_url: status.logUrl,
      environment_url: status.environmentUrl,
      created_at: githubDate(status.createdAt),
      updated_at: githubDate(status.createdAt),
      deployment_url: deploymentUrl,
      repository_url: this.apiBase(state),
    };
  }
}

function splitRepo(repo: string): [string, string] {
  const match = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repo);
  if (!match) throw new Error(`repository must be "owner/name", got ${JSON.stringify(repo)}`);
  return [match[1], match[2]];
}

function notFound(): Record<string, unknown> {
  return { message: 'Not Found', documentation_url: DOCS, status: '404' };
}

function validationFailed(resource: string, field: string, code: string): SimResponse {
  return json(422, { message: 'Validation Failed', errors: [{ resource, code, field }], documentation_url: DOCS, status: '422' });
}

function githubDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function nodeId(kind: string, key: string): string {
  return Buffer.from(`${kind}:${key}`).toString('base64').replace(/=+$/, '');
}

function workflowName(file: string): string {
  return file.replace(/\.ya?ml$/, '');
}

function clampPerPage(value: string | null, max: number): number {
  const parsed = Number.parseInt(value ?? '30', 10);
  return Math.min(max, Math.max(1, Number.isNaN(parsed) ? 30 : parsed));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringField(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
