import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DeliveryMetrics } from '../common/delivery-metrics';
import { escapeHtml, hasToken, json, Simulator, type SimRequest, type SimResponse } from './http';

/**
 * GOV.UK's Release app, as the pipeline uses it: `POST /deployments` records which version of a repo
 * went to which environment. Its page (`GET /`) lists, per app, the version each environment runs and the
 * pipelines awaiting approval: the versions come from those records, the approvals from whoever
 * `awaitingApproval` asks (the sandbox asks Temporal), never from bookkeeping of its own. As GOV.UK's does, the
 * page asks GitHub's compare itself for the commits between one environment and the next, and between what an
 * environment runs and what an approval would put there: the pipeline tells it only repo, environment and version.
 */

export interface ReleaseApplication {
  name: string;
  repo: string;
  /** In promotion order. */
  environments: Array<{ name: string; continuousDeployment: boolean }>;
}

export interface PendingApproval {
  workflowId: string;
  app?: string;
  commit?: string;
  environment?: string;
  startedAt?: Date;
}

export interface ReleaseAppSimulatorOptions {
  token: string;
  host?: string;
  port?: number;
  /** Keeps the records across restarts (one JSON object per line); in memory only without it. */
  storeFile?: string;
  /** The apps the page lists, in this order; without it, every repo that has a record. */
  applications?: ReleaseApplication[];
  /** Asked on every page view. */
  awaitingApproval?: () => Promise<PendingApproval[]>;
  /** Where a pipeline can be looked at, e.g. its page in Temporal Web UI. */
  pipelineUrl?: (workflowId: string) => string;
  /**
   * Apps promoted by their charts flags: whether a release deployed to the environment goes on to the next on its
   * own (its image-tag file says so); undefined for apps the catalogue promotes. Asked on every page view.
   */
  promotesOnItsOwn?: (app: string, environment: string) => Promise<boolean | undefined>;
  /** How people run the deploy CLI where this page is read; default `deploy`. */
  deployCommand?: string;
  /** GitHub's API, for the commits between versions (the URL may be known only once GitHub's simulator listens). */
  github?: { apiUrl: string | (() => string); token: string };
  /** Deployment frequency, lead time, change failure rate and time to restore per app and environment; asked on every view. */
  deliveryMetrics?: () => Promise<DeliveryMetrics[]>;
}

/** A commit as the page lists it, from GitHub's compare. */
export interface ComparedCommit {
  sha: string;
  title: string;
  author?: string;
  pullRequest?: number;
}

export interface Comparison {
  /** Newest first, as a changelog reads; at most COMMITS_LISTED. */
  commits: ComparedCommit[];
  total: number;
}

export interface ReleaseRecord {
  id: number;
  repo: string;
  environment: string;
  version: string;
  createdAt: Date;
  idempotencyKey?: string;
}

const REPO = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const FULL_SHA = /^[0-9a-f]{40}$/;
/** The page is meant to be left open while pipelines run. */
const REFRESH_SECONDS = 5;
const COMMITS_LISTED = 20;
const MERGED_PULL_REQUEST = /^Merge pull request #(\d+)/;

export class ReleaseAppSimulator extends Simulator {
  readonly deployments: ReleaseRecord[] = [];
  private readonly token: string;
  private readonly options: ReleaseAppSimulatorOptions;
  /** Appends happen one at a time so the file keeps the records' order. */
  private storeQueue: Promise<void> = Promise.resolve();

  constructor(options: ReleaseAppSimulatorOptions) {
    super({
      host: options.host,
      port: options.port,
      invalidJson: () => json(400, { message: 'request body is not valid JSON' }),
    });
    this.token = options.token;
    this.options = options;
    this.server.route('POST', /^\/deployments\/?$/, (req) => this.record(req));
    this.server.route('GET', /^\/deployments\/?$/, (req) => this.list(req));
    this.server.route('GET', /^\/(?:applications\/?)?$/, () => this.page());
  }

  /** The newest record for (repo, environment). */
  latest(repo: string, environment: string): ReleaseRecord | undefined {
    return [...this.deployments].reverse().find((d) => d.repo === repo && d.environment === environment);
  }

  protected override async beforeStart(): Promise<void> {
    const file = this.options.storeFile;
    if (!file) return;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const [index, line] of text.split('\n').entries()) {
      if (!line.trim()) continue;
      try {
        const stored = JSON.parse(line) as Omit<ReleaseRecord, 'createdAt'> & { createdAt: string };
        this.deployments.push({ ...stored, createdAt: new Date(stored.createdAt) });
      } catch {
        // A line cut short by a crash mid-append is the only way to get here; the records before it stand.
        throw new Error(`${file} line ${index + 1} is not a release record; fix or delete that line`);
      }
    }
  }

  protected override async afterClose(): Promise<void> {
    await this.storeQueue;
  }

  private unauthorized(req: SimRequest): SimResponse | undefined {
    return hasToken(req.headers, this.token) ? undefined : json(401, { message: 'Unauthorized: a valid bearer token is required' });
  }

  private async record(req: SimRequest): Promise<SimResponse> {
    const denied = this.unauthorized(req);
    if (denied) return denied;
    const problem = validate(req.body);
    if (problem) return json(400, { message: problem });
    const body = req.body as { repo: string; deployment: { environment: string; version: string } };
    const key = headerValue(req.headers['idempotency-key']);
    if (key !== undefined) {
      const earlier = this.deployments.find((d) => d.idempotencyKey === key);
      if (earlier) {
        const same = earlier.repo === body.repo && earlier.environment === body.deployment.environment && earlier.version === body.deployment.version;
        if (!same) return json(422, { message: `Idempotency-Key ${key} was already used for a different deployment` });
        return json(200, recordJson(earlier));
      }
    }
    const record: ReleaseRecord = {
      id: this.deployments.length + 1,
      repo: body.repo,
      environment: body.deployment.environment,
      version: body.deployment.version,
      createdAt: new Date(),
      idempotencyKey: key,
    };
    this.deployments.push(record);
    // Answer only once the record is on disk: a 201 must survive a restart.
    await this.store(record);
    return json(201, recordJson(record));
  }

  private store(record: ReleaseRecord): Promise<void> {
    const file = this.options.storeFile;
    if (!file) return Promise.resolve();
    const next = this.storeQueue.then(async () => {
      await mkdir(dirname(file), { recursive: true });
      await appendFile(file, `${JSON.stringify(record)}\n`);
    });
    this.storeQueue = next.catch(() => undefined);
    return next;
  }

  private list(req: SimRequest): SimResponse {
    const denied = this.unauthorized(req);
    if (denied) return denied;
    return json(200, this.deployments.map(recordJson));
  }

  private applications(): ReleaseApplication[] {
    if (this.options.applications) return this.options.applications;
    const environments = [...new Set(this.deployments.map((d) => d.environment))].map((name) => ({ name, continuousDeployment: true }));
    return [...new Set(this.deployments.map((d) => d.repo))].sort().map((repo) => ({ name: repo, repo, environments }));
  }

  /** GitHub's compare from `base` to `head`, as the real app asks it (GET /repos/{repo}/compare/{base}...{head}). */
  async compare(repo: string, base: string, head: string): Promise<Comparison> {
    const github = this.options.github;
    if (!github) throw new Error('the release app has no GitHub API to ask');
    const apiUrl = (typeof github.apiUrl === 'function' ? github.apiUrl() : github.apiUrl).replace(/\/$/, '');
    const response = await fetch(`${apiUrl}/repos/${repo}/compare/${encodeURIComponent(base)}...${encodeURIComponent(head)}`, {
      headers: { authorization: `Bearer ${github.token}`, accept: 'application/vnd.github+json' },
    });
    const body = (await response.json().catch(() => ({}))) as {
      message?: string;
      total_commits?: number;
      commits?: Array<{ sha: string; commit?: { message?: string }; author?: { login?: string } | null }>;
    };
    if (!response.ok) throw new Error(`GitHub answered ${response.status} to compare ${base}...${head}: ${body.message ?? 'no message'}`);
    const commits = (body.commits ?? [])
      .slice(-COMMITS_LISTED)
      .reverse()
      .map((commit): ComparedCommit => {
        const title = (commit.commit?.message ?? '').split('\n')[0]!;
        const pullRequest = MERGED_PULL_REQUEST.exec(title)?.[1];
        return { sha: commit.sha, title, ...(commit.author?.login ? { author: commit.author.login } : {}), ...(pullRequest ? { pullRequest: Number(pullRequest) } : {}) };
      });
    return { commits, total: body.total_commits ?? commits.length };
  }

  /** Per app, what each environment would get from the one before it: GitHub's compare of what they run. */
  private async changesSection(applications: ReleaseApplication[]): Promise<string> {
    const blocks: string[] = [];
    for (const app of applications) {
      const pairs: string[] = [];
      for (const [index, environment] of app.environments.entries()) {
        const from = app.environments[index - 1];
        if (!from) continue;
        const ahead = this.latest(app.repo, from.name);
        const here = this.latest(app.repo, environment.name);
        if (!ahead) continue;
        const heading = `${escapeHtml(from.name)} → ${escapeHtml(environment.name)}`;
        let content: string;
        if (!here) content = `<p>Nothing recorded in ${escapeHtml(environment.name)} yet; ${escapeHtml(from.name)} runs ${versionHtml(ahead.version)}.</p>`;
        else if (here.version === ahead.version) content = `<p>${escapeHtml(environment.name)} runs what ${escapeHtml(from.name)} runs.</p>`;
        else content = await this.comparisonHtml(app.repo, here.version, ahead.version, `not yet in ${environment.name}`);
        pairs.push(`<div class="changes" data-app="${escapeHtml(app.name)}" data-environment="${escapeHtml(environment.name)}"><h3>${escapeHtml(app.name)}: ${heading}</h3>${content}</div>`);
      }
      blocks.push(...pairs);
    }
    return `<h2>Changes between environments</h2>\n${blocks.length > 0 ? blocks.join('\n') : '<p>Nothing has been deployed yet.</p>'}`;
  }

  /** What an approval would put on its environment: the commits from what runs there to the pipeline's commit. */
  private async wouldShip(pending: PendingApproval, app: ReleaseApplication | undefined): Promise<string> {
    if (!this.options.github || !app || !pending.environment || !pending.commit) return '';
    const here = this.latest(app.repo, pending.environment);
    if (!here) return `<p>Nothing recorded in ${escapeHtml(pending.environment)} yet: the first deploy there.</p>`;
    if (here.version === pending.commit) return `<p>${escapeHtml(pending.environment)} already runs it.</p>`;
    return this.comparisonHtml(app.repo, here.version, pending.commit, `would go to ${pending.environment}`);
  }

  private async comparisonHtml(repo: string, base: string, head: string, what: string): Promise<string> {
    let comparison: Comparison;
    try {
      comparison = await this.compare(repo, base, head);
    } catch (err) {
      return `<p class="problem">Could not compare ${escapeHtml(base)}...${escapeHtml(head)}: ${escapeHtml((err as Error).message)}</p>`;
    }
    const count = `${comparison.total} ${comparison.total === 1 ? 'commit' : 'commits'} ${escapeHtml(what)}`;
    const more = comparison.total > comparison.commits.length ? `<li>… and ${comparison.total - comparison.commits.length} older</li>` : '';
    const items = comparison.commits.map((commit) => {
      const pull = commit.pullRequest ? ` <a href="https://github.com/${escapeHtml(repo)}/pull/${commit.pullRequest}">#${commit.pullRequest}</a>` : '';
      return `<li data-sha="${escapeHtml(commit.sha)}">${versionHtml(commit.sha)} ${escapeHtml(commit.title)}${commit.author ? ` <span class="mode">by ${escapeHtml(commit.author)}</span>` : ''}${pull}</li>`;
    });
    return `<p>${count}</p><ul class="commits">${items.join('')}${more}</ul>`;
  }

  private async page(): Promise<SimResponse> {
    const applications = this.applications();
    const promotes = new Map<string, boolean>();
    if (this.options.promotesOnItsOwn) {
      for (const app of applications) {
        for (const env of app.environments.slice(0, -1)) {
          const answer = await this.options.promotesOnItsOwn(app.name, env.name).catch(() => undefined);
          if (answer !== undefined) promotes.set(`${app.name} ${env.name}`, answer);
        }
      }
    }
    const sections = [deployedSection(applications, (repo, environment) => this.latest(repo, environment), (app, environment) => promotes.get(`${app} ${environment}`))];
    if (this.options.github) sections.push(await this.changesSection(applications));
    if (this.options.awaitingApproval) {
      const known = new Map(applications.map((app) => [app.name, app]));
      try {
        const pending = await this.options.awaitingApproval();
        const shipping = await Promise.all(pending.map((p) => this.wouldShip(p, known.get(p.app ?? ''))));
        sections.push(approvalSection(pending, shipping, known, this.options.deployCommand ?? 'deploy', this.options.pipelineUrl));
      } catch (err) {
        sections.push(
          `<h2>Awaiting approval</h2>\n<p class="problem">Could not ask Temporal which pipelines await approval: ${escapeHtml((err as Error).message ?? String(err))}</p>`,
        );
      }
    }
    if (this.options.deliveryMetrics) {
      try {
        sections.push(metricsSection(await this.options.deliveryMetrics()));
      } catch (err) {
        sections.push(`<h2>Delivery metrics</h2>\n<p class="problem">Could not read the pipelines' records: ${escapeHtml((err as Error).message ?? String(err))}</p>`);
      }
    }
    const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${REFRESH_SECONDS}">
<title>Release</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #0b0c0c; }
table { border-collapse: collapse; margin-bottom: 2rem; }
th, td { border-bottom: 1px solid #b1b4b6; padding: 0.5rem 1rem 0.5rem 0; text-align: left; vertical-align: top; }
code { font-size: 0.95em; }
.when, .mode { color: #505a5f; font-size: 0.85em; }
.problem { color: #d4351c; }
</style>
</head>
<body>
<h1>Release</h1>
${sections.join('\n')}
<p class="when">Refreshes every ${REFRESH_SECONDS} seconds.</p>
</body>
</html>
`;
    return { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: html };
  }
}

function deployedSection(
  applications: ReleaseApplication[],
  latest: (repo: string, environment: string) => ReleaseRecord | undefined,
  promotes: (app: string, environment: string) => boolean | undefined,
): string {
  if (applications.length === 0) return '<h2>Deployed versions</h2>\n<p>Nothing has been deployed yet.</p>';
  const environments = [...new Set(applications.flatMap((app) => app.environments.map((e) => e.name)))];
  const header = ['Application', ...environments, 'Deployment'].map((cell) => `<th scope="col">${escapeHtml(cell)}</th>`).join('');
  const rows = applications.map((app) => {
    const cells = environments.map((environment) => {
      const record = app.environments.some((e) => e.name === environment) ? latest(app.repo, environment) : undefined;
      const content = record
        ? `${versionHtml(record.version)}<br><span class="when" title="${escapeHtml(record.createdAt.toISOString())}">${escapeHtml(formatTime(record.createdAt))}</span>`
        : '–';
      const promotion = promotes(app.name, environment);
      const note = promotion === undefined ? '' : `<br><span class="mode promotion">${promotion ? 'promotes on its own' : 'does not promote on its own'}</span>`;
      return `<td data-environment="${escapeHtml(environment)}">${content}${note}</td>`;
    });
    const name = app.name === app.repo ? escapeHtml(app.repo) : `${escapeHtml(app.name)}<br><span class="mode">${escapeHtml(app.repo)}</span>`;
    return `<tr data-app="${escapeHtml(app.name)}"><th scope="row">${name}</th>${cells.join('')}<td class="mode">${escapeHtml(deploymentMode(app))}</td></tr>`;
  });
  return `<h2>Deployed versions</h2>\n<table id="deployed">\n<thead><tr>${header}</tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
}

function approvalSection(
  pending: PendingApproval[],
  shipping: string[],
  known: Map<string, ReleaseApplication>,
  deployCommand: string,
  pipelineUrl?: (workflowId: string) => string,
): string {
  if (pending.length === 0) return '<h2>Awaiting approval</h2>\n<p id="awaiting-none">No pipeline is waiting for approval.</p>';
  const withChanges = shipping.some((html) => html !== '');
  const rows = pending.map((p, index) => {
    const link = pipelineUrl ? `<a href="${escapeHtml(pipelineUrl(p.workflowId))}">${escapeHtml(p.workflowId)}</a>` : escapeHtml(p.workflowId);
    const app = p.app ? (known.get(p.app)?.name ?? p.app) : '?';
    const approve = p.environment ? `${deployCommand} approve ${p.workflowId} --environment ${p.environment}` : '';
    return (
      `<tr data-workflow-id="${escapeHtml(p.workflowId)}"><th scope="row">${escapeHtml(app)}</th>` +
      `<td>${p.commit ? versionHtml(p.commit) : '?'}</td><td>${escapeHtml(p.environment ?? '?')}</td>` +
      `<td>${link}${p.startedAt ? `<br><span class="when">started ${escapeHtml(formatTime(p.startedAt))}</span>` : ''}</td>` +
      `<td><code>${escapeHtml(approve)}</code></td>${withChanges ? `<td class="would-ship">${shipping[index]}</td>` : ''}</tr>`
    );
  });
  const header = ['Application', 'Commit', 'Environment', 'Pipeline', 'Approve with', ...(withChanges ? ['Would ship'] : [])].map((cell) => `<th scope="col">${cell}</th>`).join('');
  return `<h2>Awaiting approval</h2>\n<table id="awaiting">\n<thead><tr>${header}</tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
}

function metricsSection(rows: DeliveryMetrics[]): string {
  const days = rows[0]?.windowDays;
  const title = `<h2>Delivery metrics${days ? ` (last ${days} days)` : ''}</h2>`;
  if (rows.length === 0) return `${title}\n<p>No pipeline has deployed anything yet.</p>`;
  const header = ['Application', 'Environment', 'Deploys', 'Per day', 'Lead time (median)', 'Change failure rate', 'Time to restore (median)']
    .map((cell) => `<th scope="col">${cell}</th>`)
    .join('');
  const body = rows.map((row) => {
    const failureRate = row.changeFailureRate === undefined ? '–' : `${Math.round(row.changeFailureRate * 100)}% (${row.failures} of ${row.deployments + row.failures})`;
    const restore = row.timeToRestoreSeconds === undefined ? '–' : `${formatDuration(row.timeToRestoreSeconds)} (${row.restores} restored)`;
    const failing = row.failingSince ? `<br><span class="problem">failing since ${escapeHtml(formatTime(new Date(row.failingSince)))}</span>` : '';
    const cells = [String(row.deployments), row.deploymentsPerDay.toFixed(2), row.leadTimeSeconds === undefined ? '–' : formatDuration(row.leadTimeSeconds), failureRate];
    return (
      `<tr data-app="${escapeHtml(row.app)}" data-environment="${escapeHtml(row.environment)}"><th scope="row">${escapeHtml(row.app)}</th><td>${escapeHtml(row.environment)}</td>` +
      `${cells.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}<td>${escapeHtml(restore)}${failing}</td></tr>`
    );
  });
  const note = "<p class=\"when\">From the pipelines' own records: a deploy counts once it changed the charts; a rollback or a failure after that is a failed change; time to restore runs from a failed deploy to the next one that stayed.</p>";
  return `${title}\n<table id="delivery-metrics">\n<thead><tr>${header}</tr></thead>\n<tbody>\n${body.join('\n')}\n</tbody>\n</table>\n${note}`;
}

/** Seconds as people say them: 45s, 12m 5s, 3h 20m, 2d 4h. */
function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ''}`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600) ? ` ${Math.floor((s % 86_400) / 3600)}h` : ''}`;
}

/** A commit SHA is shown short, as people quote it; the full one stays at hand in the tooltip. */
function versionHtml(version: string): string {
  if (FULL_SHA.test(version)) return `<code title="${escapeHtml(version)}">${escapeHtml(version.slice(0, 7))}</code>`;
  return `<code>${escapeHtml(version)}</code>`;
}

function deploymentMode(app: ReleaseApplication): string {
  const manual = app.environments.slice(1).filter((e) => !e.continuousDeployment);
  if (manual.length === 0) return 'Continuous deployment';
  return `Needs approval for ${manual.map((e) => e.name).join(' and ')}`;
}

function formatTime(date: Date): string {
  return date.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

function validate(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'expected a JSON object {"repo": ..., "deployment": {"environment": ..., "version": ...}}';
  const { repo, deployment } = body as { repo?: unknown; deployment?: unknown };
  if (typeof repo !== 'string' || !REPO.test(repo)) return 'repo must be "<org>/<repo>"';
  if (typeof deployment !== 'object' || deployment === null || Array.isArray(deployment)) return 'deployment must be an object with environment and version';
  const { environment, version } = deployment as { environment?: unknown; version?: unknown };
  if (typeof environment !== 'string' || environment.trim() === '') return 'deployment.environment must be a non-empty string';
  if (typeof version !== 'string' || version.trim() === '') return 'deployment.version must be a non-empty string';
  return undefined;
}

function recordJson(record: ReleaseRecord): Record<string, unknown> {
  return {
    id: record.id,
    repo: record.repo,
    environment: record.environment,
    version: record.version,
    created_at: record.createdAt.toISOString(),
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const single = Array.isArray(value) ? value[0] : value;
  return single && single.length > 0 ? single : undefined;
}
