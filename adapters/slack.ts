import { PermanentHttpError, TransientHttpError } from '../common/errors';
import { type Notice, type Notifier } from '../common/ports';
import { DEFAULT_SLACK_API_URL } from '../common/settings';
import { joinUrl, redact, retryAfterMs, sendRequest, type SendRequestOptions } from './http-client';

/**
 * Slack, two ways.
 *
 * - An incoming webhook takes no idempotency key: a worker that dies after Slack accepted a message and before the
 *   step completed makes the retry post it again (at least once).
 * - The Web API with a bot token posts each notice exactly once: every message carries the step's key in its
 *   metadata, and a retry first looks for a message with that key in the channel's recent history.
 */

/** The `event_type` of our messages' metadata. */
export const SLACK_EVENT_TYPE = 'deploy_pipeline_notice';
/** Clocks differ: the history lookup starts this long before the step was first scheduled. */
export const SLACK_CLOCK_SKEW_MS = 60_000;

/**
 * Slack reads `<…>` in a message as a mention, a channel or a link, and `&` as an entity: our texts intend none of
 * them, so each is escaped as Slack's formatting rules ask, whatever an outside system put in them.
 */
export function slackText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Slack incoming webhook. The webhook URL is the secret: it never appears in an error. */
export function createSlackWebhookNotifier(options: { webhookUrl: string; timeoutMs?: number; fetch?: typeof fetch }): Notifier {
  return {
    async notify(notice) {
      await sendRequest({
        service: 'Slack',
        method: 'POST',
        url: options.webhookUrl,
        body: { text: slackText(notice.text) },
        secrets: [options.webhookUrl, new URL(options.webhookUrl).pathname],
        timeoutMs: options.timeoutMs ?? 10_000,
        fetch: options.fetch,
      });
    },
  };
}

export interface SlackWebApiOptions {
  /** Bot token (`xoxb-…`) with `chat:write` and `channels:history` (or `groups:history` for a private channel). */
  token: string;
  /** Channel ID, e.g. C0123ABCD; the bot must be a member. */
  channel: string;
  /** Default https://slack.com/api. */
  apiUrl?: string;
  timeoutMs?: number;
  /** Messages per conversations.history page (Slack allows up to 999 and recommends 200 at most). */
  pageSize?: number;
  fetch?: typeof fetch;
}

/** Slack's answer to a Web API call: HTTP 200 either way, `ok` says which. */
interface SlackAnswer {
  ok?: unknown;
  error?: unknown;
  needed?: unknown;
  provided?: unknown;
  messages?: unknown;
  has_more?: unknown;
  response_metadata?: { next_cursor?: unknown };
}

interface HistoryMessage {
  ts?: unknown;
  metadata?: { event_type?: unknown; event_payload?: { key?: unknown } };
}

/** Errors a retry cures: Slack's own trouble and rate limits. */
const RETRYABLE_ERRORS = new Set(['ratelimited', 'rate_limited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

/** What a permanent error means for the person who configured the worker. */
function explain(error: string, channel: string, answer: SlackAnswer): string | undefined {
  switch (error) {
    case 'invalid_auth':
      return 'Slack does not accept the bot token; check SLACK_BOT_TOKEN';
    case 'not_authed':
      return 'no bot token reached Slack; check SLACK_BOT_TOKEN';
    case 'account_inactive':
      return "the bot token's app or workspace has been deleted or deactivated; install the app again and set SLACK_BOT_TOKEN";
    case 'token_revoked':
      return 'the bot token has been revoked (the app was uninstalled?); install the app again and set SLACK_BOT_TOKEN';
    case 'token_expired':
      return 'the bot token has expired (token rotation is on); use a token that does not expire';
    case 'channel_not_found':
      return `there is no channel ${channel}, or the bot cannot see it (a private channel it was not invited to); check SLACK_CHANNEL`;
    case 'not_in_channel':
      return `the bot is not a member of channel ${channel}; invite it (/invite @the-app in the channel)`;
    case 'is_archived':
      return `channel ${channel} is archived; set SLACK_CHANNEL to a live channel`;
    case 'missing_scope': {
      const needed = typeof answer.needed === 'string' ? answer.needed : 'a scope';
      const provided = typeof answer.provided === 'string' ? ` (it has ${answer.provided})` : '';
      return `the Slack app lacks ${needed}${provided}; add the scope and reinstall the app`;
    }
    case 'ekm_access_denied':
    case 'access_denied':
    case 'no_permission':
    case 'restricted_action':
    case 'team_access_not_granted':
      return `the workspace's settings do not let the bot do this in channel ${channel}`;
    case 'no_text':
    case 'msg_too_long':
    case 'too_many_attachments':
    case 'invalid_metadata_format':
    case 'invalid_metadata_schema':
    case 'metadata_too_large':
    case 'metadata_must_be_sent_from_app':
    case 'invalid_arguments':
    case 'invalid_arg_name':
    case 'invalid_array_arg':
    case 'invalid_charset':
    case 'invalid_form_data':
    case 'invalid_json':
    case 'json_not_object':
    case 'invalid_post_type':
    case 'missing_post_type':
    case 'invalid_cursor':
    case 'invalid_ts_oldest':
    case 'invalid_ts_latest':
    case 'invalid_limit':
    case 'unknown_method':
      return 'the request was refused as malformed';
    default:
      return undefined;
  }
}

/**
 * Slack's Web API with a bot token: exactly once. A first attempt posts at once (nothing can have been posted
 * before it); a retry first looks through the channel's history since the step was first scheduled for a message
 * carrying the step's key, and posts only when there is none.
 */
export function createSlackWebApiNotifier(options: SlackWebApiOptions): Notifier {
  const { token, channel } = options;
  const apiUrl = options.apiUrl ?? DEFAULT_SLACK_API_URL;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pageSize = options.pageSize ?? 200;
  const secrets = [token];

  async function call(method: string, httpMethod: 'GET' | 'POST', params: Record<string, unknown>): Promise<SlackAnswer> {
    const url = joinUrl(apiUrl, method);
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (httpMethod === 'GET') {
      for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, String(value));
    } else {
      // Without the charset Slack answers with a `missing_charset` warning.
      headers['content-type'] = 'application/json; charset=utf-8';
    }
    const request: SendRequestOptions = {
      service: 'Slack',
      method: httpMethod,
      url,
      headers,
      body: httpMethod === 'POST' ? params : undefined,
      timeoutMs,
      secrets,
      fetch: options.fetch,
    };
    // HTTP errors (429 with Retry-After, 5xx, network) are classified by sendRequest.
    const answered = await sendRequest(request);
    const { body } = answered;
    const answer = (body && typeof body === 'object' ? body : {}) as SlackAnswer;
    if (answer.ok === true) return answer;
    const error = typeof answer.error === 'string' && answer.error ? answer.error : undefined;
    const what = `Slack ${method} failed: ${error ?? 'an answer without "ok": true'}`;
    const explanation = error && !RETRYABLE_ERRORS.has(error) ? explain(error, channel, answer) : undefined;
    if (explanation) throw new PermanentHttpError(redact(`${what}: ${explanation}`, secrets), 200);
    // Slack's own trouble, a rate limit told in the body, or an error this adapter does not know: a retry may
    // cure it, and the step's retry limit bounds the cost.
    const wait = retryAfterMs(answered.headers);
    throw new TransientHttpError(redact(`${what}${wait !== undefined ? ` (retry in ${Math.ceil(wait / 1000)} s)` : ''}`, secrets), 200, wait);
  }

  /** Whether a message carrying the key was posted to the channel since `sinceMs` (ms since the epoch), less the skew. */
  async function findPosted(key: string, sinceMs: number): Promise<boolean> {
    const oldest = (Math.max(0, sinceMs - SLACK_CLOCK_SKEW_MS) / 1000).toFixed(6);
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (;;) {
      const answer = await call('conversations.history', 'GET', { channel, oldest, include_all_metadata: 'true', limit: pageSize, cursor });
      const messages = (Array.isArray(answer.messages) ? answer.messages : []) as HistoryMessage[];
      if (messages.some((m) => m?.metadata?.event_type === SLACK_EVENT_TYPE && m.metadata.event_payload?.key === key)) return true;
      const next = answer.response_metadata?.next_cursor;
      if (typeof next !== 'string' || next === '') return false;
      if (seen.has(next)) throw new TransientHttpError('Slack conversations.history returned the same cursor twice');
      seen.add(next);
      cursor = next;
    }
  }

  return {
    async notify(notice: Notice) {
      // Only a retry can follow a post that already happened; conversations.history is rate-limited, so a first
      // attempt never asks it.
      if (!notice.firstAttempt && (await findPosted(notice.key, notice.firstScheduledAtMs))) return;
      await call('chat.postMessage', 'POST', {
        channel,
        text: slackText(notice.text),
        metadata: { event_type: SLACK_EVENT_TYPE, event_payload: { key: notice.key } },
      });
    },
  };
}
