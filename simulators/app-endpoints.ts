import { escapeHtml, json, Simulator, type SimRequest, type SimResponse } from './http';

/**
 * The deployed apps' own endpoints, for smoke checks: `GET /{app}/{environment}/healthcheck` reports
 * the version that is running, e.g. the tag the Argo CD simulator has synced.
 */

export type VersionSource = (app: string, environment: string) => string | undefined | Promise<string | undefined>;

export interface AppEndpointsSimulatorOptions {
  /** The running version; without it every app answers with version null. When it returns undefined the app is not deployed (404). */
  versionOf?: VersionSource;
  host?: string;
  port?: number;
}

export interface CheckFailure {
  status?: number;
  body?: unknown;
  /** Answer only after this long, e.g. to exceed a check's timeout. */
  delayMs?: number;
}

export class AppEndpointsSimulator extends Simulator {
  private readonly failures = new Map<string, Required<Pick<CheckFailure, 'status'>> & CheckFailure>();
  private readonly versionOf?: VersionSource;

  constructor(options: AppEndpointsSimulatorOptions = {}) {
    super({ host: options.host, port: options.port });
    this.versionOf = options.versionOf;
    const app = '([a-z0-9][a-z0-9-]*)';
    const environment = '([a-z][a-z0-9-]*)';
    this.server.route('GET', new RegExp(`^/${app}/${environment}/healthcheck$`), (req) => this.healthcheck(req));
    this.server.route('GET', new RegExp(`^/${app}/${environment}/?$`), (req) => this.home(req));
  }

  /** Makes the app's endpoints fail until restore(); status defaults to 500. */
  failChecks(app: string, environment: string, failure: CheckFailure = {}): void {
    this.failures.set(key(app, environment), { ...failure, status: failure.status ?? 500 });
  }

  restore(app: string, environment: string): void {
    this.failures.delete(key(app, environment));
  }

  /** The healthcheck URL of (app, environment). */
  healthcheckUrl(app: string, environment: string): string {
    return `${this.url}/${app}/${environment}/healthcheck`;
  }

  private async healthcheck(req: SimRequest): Promise<SimResponse> {
    const [app, environment] = req.params;
    const failure = await this.failure(app, environment);
    if (failure) return failure;
    const version = this.versionOf ? await this.versionOf(app, environment) : null;
    if (version === undefined) return json(404, { status: 'not_deployed', app, environment });
    return json(200, { status: 'ok', app, environment, version });
  }

  private async home(req: SimRequest): Promise<SimResponse> {
    const [app, environment] = req.params;
    const failure = await this.failure(app, environment);
    if (failure) return failure;
    const version = this.versionOf ? await this.versionOf(app, environment) : null;
    if (version === undefined) return { status: 404, headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<!doctype html><title>Not found</title><h1>Not deployed</h1>\n' };
    const title = `${escapeHtml(app)} (${escapeHtml(environment)})`;
    const html = `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>\n<body><h1>${title}</h1><p>Version ${escapeHtml(version ?? 'unknown')}</p></body></html>\n`;
    return { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: html };
  }

  private async failure(app: string, environment: string): Promise<SimResponse | undefined> {
    const failure = this.failures.get(key(app, environment));
    if (!failure) return undefined;
    if (failure.delayMs) await new Promise((resolve) => setTimeout(resolve, failure.delayMs).unref());
    return { status: failure.status, body: failure.body ?? { status: 'error', app, environment } };
  }
}

function key(app: string, environment: string): string {
  return `${app}/${environment}`;
}
