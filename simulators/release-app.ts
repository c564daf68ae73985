import { escapeHtml, hasToken, json, Simulator, type SimRequest, type SimResponse } from './http';

/**
 * GOV.UK's Release app, as the pipeline uses it: `POST /deployments` records which version of a repo
 * went to which environment; `GET /` shows the latest version per repo and environment.
 */

export interface ReleaseAppSimulatorOptions {
  token: string;
  host?: string;
  port?: number;
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

export class ReleaseAppSimulator extends Simulator {
  readonly deployments: ReleaseRecord[] = [];
  private readonly token: string;

  constructor(options: ReleaseAppSimulatorOptions) {
    super({
      host: options.host,
      port: options.port,
      invalidJson: () => json(400, { message: 'request body is not valid JSON' }),
    });
    this.token = options.token;
    this.server.route('POST', /^\/deployments\/?$/, (req) => this.record(req));
    this.server.route('GET', /^\/deployments\/?$/, (req) => this.list(req));
    this.server.route('GET', /^\/$/, () => this.page());
  }

  /** The newest record for (repo, environment). */
  latest(repo: string, environment: string): ReleaseRecord | undefined {
    return [...this.deployments].reverse().find((d) => d.repo === repo && d.environment === environment);
  }

  private unauthorized(req: SimRequest): SimResponse | undefined {
    return hasToken(req.headers, this.token) ? undefined : json(401, { message: 'Unauthorized: a valid bearer token is required' });
  }

  private record(req: SimRequest): SimResponse {
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
    return json(201, recordJson(record));
  }

  private list(req: SimRequest): SimResponse {
    const denied = this.unauthorized(req);
    if (denied) return denied;
    return json(200, this.deployments.map(recordJson));
  }

  private page(): SimResponse {
    const latest = new Map<string, Map<string, ReleaseRecord>>();
    for (const record of this.deployments) {
      const byEnvironment = latest.get(record.repo) ?? new Map<string, ReleaseRecord>();
      byEnvironment.set(record.environment, record);
      latest.set(record.repo, byEnvironment);
    }
    const environments = [...new Set(this.deployments.map((d) => d.environment))];
    const header = ['Repository', ...environments].map((cell) => `<th>${escapeHtml(cell)}</th>`).join('');
    const rows = [...latest.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([repo, byEnvironment]) => {
        const cells = environments.map((environment) => {
          const record = byEnvironment.get(environment);
          return record ? `<td title="${escapeHtml(record.createdAt.toISOString())}">${escapeHtml(record.version)}</td>` : '<td>–</td>';
        });
        return `<tr><th scope="row">${escapeHtml(repo)}</th>${cells.join('')}</tr>`;
      })
      .join('\n');
    const body = rows
      ? `<table>\n<thead><tr>${header}</tr></thead>\n<tbody>\n${rows}\n</tbody>\n</table>`
      : '<p>Nothing has been deployed yet.</p>';
    const html = `<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Release</title></head>\n<body>\n<h1>Deployed versions</h1>\n${body}\n</body>\n</html>\n`;
    return { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: html };
  }
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
