import { Simulator, type SimRequest, type SimResponse } from './http';

/** Slack incoming webhooks: `POST /services/T…/B…/…` with `{"text": …}` answers `ok` as text. */

export interface SlackMessage {
  path: string;
  text: string;
  blocks?: unknown;
  at: Date;
}

export class SlackSimulator extends Simulator {
  readonly messages: SlackMessage[] = [];

  constructor(options: { host?: string; port?: number } = {}) {
    super({ host: options.host, port: options.port, invalidJson: () => ({ status: 400, body: 'invalid_payload' }) });
    this.server.route('POST', /^\/services\/[A-Za-z0-9]+\/[A-Za-z0-9]+\/[A-Za-z0-9]+$/, (req) => this.receive(req));
  }

  /** The URL of a webhook this simulator accepts. */
  get webhookUrl(): string {
    return `${this.url}/services/T0SANDBOX/B0DEPLOYS/sandboxwebhooksecret`;
  }

  private receive(req: SimRequest): SimResponse {
    const body = req.body as { text?: unknown; blocks?: unknown } | undefined;
    if (!body || typeof body.text !== 'string' || body.text.length === 0) return { status: 400, body: 'no_text' };
    this.messages.push({ path: req.path, text: body.text, blocks: body.blocks, at: new Date() });
    return { status: 200, body: 'ok' };
  }
}
