import { bearerToken, sameSecret, Simulator, type SimRequest, type SimResponse } from './http';

/**
 * Slack, as the worker uses it:
 *
 * - incoming webhooks: `POST /services/T…/B…/…` with `{"text": …}` answers `ok` as text;
 * - the Web API under `/api/`: `chat.postMessage` (JSON or form-encoded) and `conversations.history` (GET or
 *   POST, cursor paging, `include_all_metadata`), with a bot token (`Authorization: Bearer xoxb-…`, or a form's
 *   `token` field). Like Slack, it answers HTTP 200 with `{"ok": false, "error": "invalid_auth"}` and the like.
 *
 * Every message, whichever way it came, is in `messages`, oldest first.
 */

export interface SlackMetadata {
  event_type: string;
  event_payload: Record<string, unknown>;
}

export interface SlackMessage {
  /** The webhook's path, or `/api/chat.postMessage`. */
  path: string;
  text: string;
  blocks?: unknown;
  at: Date;
  /** Web API messages: the channel ID, Slack's `ts` (e.g. `1700000000.000100`) and the metadata sent along. */
  channel?: string;
  ts?: string;
  metadata?: SlackMetadata;
  /** Web API messages: the bot that posted, or a person's user ID for messages added with `addChannelMessage`. */
  user?: string;
}

export interface SlackSimulatorOptions {
  host?: string;
  port?: number;
  /** The bot token the Web API accepts; default `SANDBOX_BOT_TOKEN`. */
  botToken?: string;
  /** Channels the bot is a member of; default `[SANDBOX_CHANNEL]`. */
  channels?: string[];
}

export const SANDBOX_BOT_TOKEN = 'xoxb-1000000001-2000000002-sandboxBotToken0000000';
export const SANDBOX_CHANNEL = 'C0DEPLOYS';
const BOT_USER = 'U0DEPLOYBOT';
const BOT_ID = 'B0DEPLOYBOT';
const APP_ID = 'A0DEPLOYAPP';
const MAX_HISTORY_LIMIT = 999;

/** A Slack `ts` in microseconds since the epoch (exact as a double until the year 2255). */
function parseTs(value: string): number | undefined {
  const match = /^(\d{1,12})(?:\.(\d{1,6}))?$/.exec(value.trim());
  if (!match) return undefined;
  return Number(match[1]) * 1_000_000 + Number((match[2] ?? '').padEnd(6, '0'));
}

function formatTs(micros: number): string {
  return `${Math.floor(micros / 1_000_000)}.${String(micros % 1_000_000).padStart(6, '0')}`;
}

/** Slack answers its Web API calls with HTTP 200, success or not. */
function answer(body: Record<string, unknown>): SimResponse {
  return { status: 200, body };
}

function failure(error: string, extra: Record<string, unknown> = {}): SimResponse {
  return answer({ ok: false, error, ...extra });
}

export class SlackSimulator extends Simulator {
  readonly messages: SlackMessage[] = [];
  readonly botToken: string;
  /** Channel ID → whether the bot is a member. */
  private readonly channels = new Map<string, boolean>();
  private lastTs = 0;

  constructor(options: SlackSimulatorOptions = {}) {
    super({
      host: options.host,
      port: options.port,
      invalidJson: (req) => (req.path.startsWith('/api/') ? failure('invalid_json') : { status: 400, body: 'invalid_payload' }),
      notFound: (req) => (req.path.startsWith('/api/') ? { status: 404, body: { ok: false, error: 'unknown_method' } } : { status: 404, body: 'no_service' }),
    });
    this.botToken = options.botToken ?? SANDBOX_BOT_TOKEN;
    for (const channel of options.channels ?? [SANDBOX_CHANNEL]) this.channels.set(channel, true);
    this.server.route('POST', /^\/services\/[A-Za-z0-9]+\/[A-Za-z0-9]+\/[A-Za-z0-9]+$/, (req) => this.receive(req));
    this.server.route('POST', /^\/api\/chat\.postMessage$/, (req) => this.postMessage(req));
    this.server.route('GET', /^\/api\/conversations\.history$/, (req) => this.history(req));
    this.server.route('POST', /^\/api\/conversations\.history$/, (req) => this.history(req));
  }

  /** The URL of a webhook this simulator accepts. */
  get webhookUrl(): string {
    return `${this.url}/services/T0SANDBOX/B0DEPLOYS/sandboxwebhooksecret`;
  }

  /** The Web API base URL (SLACK_API_URL). */
  get apiUrl(): string {
    return `${this.url}/api`;
  }

  /** A channel that exists; `member: false` leaves the bot outside it (not_in_channel). */
  addChannel(id: string, options: { member?: boolean } = {}): void {
    this.channels.set(id, options.member ?? true);
  }

  /** The channel's messages, oldest first. */
  channelMessages(channel: string): SlackMessage[] {
    return this.messages.filter((m) => m.channel === channel);
  }

  /** A message someone else wrote in the channel (what fills a busy channel's history). */
  addChannelMessage(channel: string, text: string, options: { user?: string; metadata?: SlackMetadata } = {}): SlackMessage {
    const message: SlackMessage = { path: '/api/chat.postMessage', text, at: new Date(), channel, ts: this.nextTs(), metadata: options.metadata, user: options.user ?? 'U0SOMEONE' };
    this.messages.push(message);
    return message;
  }

  /** Strictly increasing, as Slack's `ts` within a channel. */
  private nextTs(): string {
    this.lastTs = Math.max(Date.now() * 1000, this.lastTs + 1);
    return formatTs(this.lastTs);
  }

  private receive(req: SimRequest): SimResponse {
    const body = req.body as { text?: unknown; blocks?: unknown } | undefined;
    if (!body || typeof body !== 'object' || typeof body.text !== 'string' || body.text.length === 0) return { status: 400, body: 'no_text' };
    this.messages.push({ path: req.path, text: body.text, blocks: body.blocks, at: new Date() });
    return { status: 200, body: 'ok' };
  }

  /** A Web API call's arguments: the query string, then a JSON object or a form-encoded body. */
  private argumentsOf(req: SimRequest): { args: Record<string, unknown>; form: boolean } | SimResponse {
    const args: Record<string, unknown> = Object.fromEntries(req.query.entries());
    const type = String(req.headers['content-type'] ?? '');
    if (req.rawBody.length === 0) return { args, form: false };
    if (/json/i.test(type)) {
      if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) return failure('json_not_object');
      return { args: { ...args, ...(req.body as Record<string, unknown>) }, form: false };
    }
    if (/application\/x-www-form-urlencoded/i.test(type)) {
      return { args: { ...args, ...Object.fromEntries(new URLSearchParams(req.rawBody).entries()) }, form: true };
    }
    return failure('invalid_form_data');
  }

  /** The bot token check, as Slack: a JSON body's token is ignored (JSON needs the header), a form's is read. */
  private authorised(req: SimRequest, args: Record<string, unknown>, form: boolean): SimResponse | undefined {
    const token = bearerToken(req.headers) ?? (form && typeof args.token === 'string' ? args.token : undefined);
    if (!token) return failure('not_authed');
    if (!sameSecret(token, this.botToken)) return failure('invalid_auth');
    return undefined;
  }

  /** The channel check shared by both methods. */
  private channelProblem(channel: unknown): SimResponse | undefined {
    if (typeof channel !== 'string' || !this.channels.has(channel)) return failure('channel_not_found');
    if (!this.channels.get(channel)) return failure('not_in_channel');
    return undefined;
  }

  private postMessage(req: SimRequest): SimResponse {
    const parsed = this.argumentsOf(req);
    if ('status' in parsed) return parsed;
    const { args, form } = parsed;
    const refused = this.authorised(req, args, form) ?? this.channelProblem(args.channel);
    if (refused) return refused;
    const channel = args.channel as string;
    const text = typeof args.text === 'string' ? args.text : '';
    if (!text && args.blocks === undefined) return failure('no_text');
    if (text.length > 40_000) return failure('msg_too_long');
    let metadata: SlackMetadata | undefined;
    if (args.metadata !== undefined) {
      let raw: unknown = args.metadata;
      if (typeof raw === 'string') {
        try {
          raw = JSON.parse(raw) as unknown;
        } catch {
          return failure('invalid_metadata_format');
        }
      }
      const candidate = raw as { event_type?: unknown; event_payload?: unknown } | null;
      if (!candidate || typeof candidate.event_type !== 'string' || !candidate.event_payload || typeof candidate.event_payload !== 'object') {
        return failure('invalid_metadata_format');
      }
      metadata = { event_type: candidate.event_type, event_payload: candidate.event_payload as Record<string, unknown> };
    }
    const ts = this.nextTs();
    this.messages.push({ path: req.path, text, blocks: args.blocks, at: new Date(), channel, ts, metadata, user: BOT_USER });
    const warnings = !form && !/charset=utf-8/i.test(String(req.headers['content-type'] ?? '')) ? { warning: 'missing_charset', response_metadata: { warnings: ['missing_charset'] } } : {};
    return answer({ ok: true, channel, ts, message: this.wire({ text, ts, metadata, user: BOT_USER }, true), ...warnings });
  }

  private history(req: SimRequest): SimResponse {
    const parsed = this.argumentsOf(req);
    if ('status' in parsed) return parsed;
    const { args, form } = parsed;
    const refused = this.authorised(req, args, form) ?? this.channelProblem(args.channel);
    if (refused) return refused;
    const flag = (value: unknown) => value === true || value === 'true' || value === '1' || value === 1;
    const orDefault = (value: unknown, fallback: string) => (value === undefined || value === '' ? fallback : String(value));
    const oldest = parseTs(orDefault(args.oldest, '0'));
    if (oldest === undefined) return failure('invalid_ts_oldest');
    const latest = args.latest === undefined || args.latest === '' ? Number.MAX_SAFE_INTEGER : parseTs(String(args.latest));
    if (latest === undefined) return failure('invalid_ts_latest');
    const limitText = orDefault(args.limit, '100');
    if (!/^\d+$/.test(limitText)) return failure('invalid_limit');
    const limit = Math.min(Math.max(Number(limitText), 1), MAX_HISTORY_LIMIT);
    const inclusive = flag(args.inclusive);
    let before = Number.MAX_SAFE_INTEGER;
    if (typeof args.cursor === 'string' && args.cursor !== '') {
      const match = /^next_ts:(\d+\.\d{6})$/.exec(Buffer.from(args.cursor, 'base64').toString('utf8'));
      if (!match) return failure('invalid_cursor');
      before = parseTs(match[1]!)!;
    }
    const inRange = this.channelMessages(args.channel as string)
      .filter((m) => {
        const ts = parseTs(m.ts!)!;
        return (inclusive ? ts >= oldest && ts <= latest : ts > oldest && ts < latest) && ts <= before;
      })
      .reverse();
    const page = inRange.slice(0, limit);
    const rest = inRange.slice(limit);
    const withMetadata = flag(args.include_all_metadata);
    return answer({
      ok: true,
      messages: page.map((m) => this.wire(m, withMetadata)),
      has_more: rest.length > 0,
      pin_count: 0,
      channel_actions_ts: null,
      channel_actions_count: 0,
      ...(rest.length > 0 ? { response_metadata: { next_cursor: Buffer.from(`next_ts:${rest[0]!.ts}`).toString('base64') } } : {}),
    });
  }

  /** A message as the Web API shows it. */
  private wire(m: Pick<SlackMessage, 'text' | 'ts' | 'metadata' | 'user'>, withMetadata: boolean): Record<string, unknown> {
    const bot = m.user === BOT_USER ? { bot_id: BOT_ID, app_id: APP_ID } : {};
    return { type: 'message', user: m.user, text: m.text, ts: m.ts, ...bot, ...(withMetadata && m.metadata ? { metadata: m.metadata } : {}) };
  }
}
