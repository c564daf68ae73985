/**
 * Slack, exactly once: the Web API adapter over real HTTP against the Slack simulator (posting with the step's key
 * in the metadata, a retry finding what an earlier attempt posted across history pages, permanent and retryable
 * errors, no token in any message), the simulator's wire format, the notifyPeople step's key, and the start-up
 * checks of the Slack settings. test/slack-crash.test.ts kills a worker right after a real post.
 */
import { PermanentHttpError, TransientHttpError } from '../common/errors';
import { MockActivityEnvironment } from '@temporalio/testing';

import { createSlackWebApiNotifier, createSlackWebhookNotifier, SLACK_CLOCK_SKEW_MS, SLACK_EVENT_TYPE } from '../adapters/slack';
import { createActivities, type ActivityDependencies } from '../activities';
import { type Notice } from '../common/ports';
import { loadWorkerSettings, SettingsError, type Env } from '../common/settings';
import { SlackSimulator } from '../simulators/slack';
import { closedPort, errorFrom } from './support/env';

const TOKEN = 'xoxb-1234567890-123456789012-slackTestTokenValue0123';
const WRONG_TOKEN = 'xoxb-1234567890-123456789012-wrongSlackToken98765';
const CHANNEL = 'C0123ABCD';

function notice(key: string, overrides: Partial<Notice> = {}): Notice {
  return { text: `whitehall 1a2b3c4 waits for approval (${key})`, key, firstAttempt: true, firstScheduledAtMs: Date.now(), ...overrides };
}

describe('Slack Web API adapter against the Slack simulator', () => {
  let slack: SlackSimulator;
  let apiUrl: string;
  const notifier = (options: { token?: string; channel?: string; pageSize?: number; timeoutMs?: number } = {}) =>
    createSlackWebApiNotifier({ token: options.token ?? TOKEN, channel: options.channel ?? CHANNEL, apiUrl, pageSize: options.pageSize, timeoutMs: options.timeoutMs });
  const history = () => slack.requests.filter((r) => r.path === '/api/conversations.history');
  const posts = () => slack.requests.filter((r) => r.path === '/api/chat.postMessage');

  beforeEach(async () => {
    slack = new SlackSimulator({ botToken: TOKEN, channels: [CHANNEL] });
    await slack.start();
    apiUrl = slack.apiUrl;
  });
  afterEach(() => slack.close());

  it("posts a first attempt at once, as JSON with the bot token, carrying the step's key in the metadata", async () => {
    await notifier().notify(notice('deploy-whitehall-abc/run-1/7'));
    expect(slack.channelMessages(CHANNEL)).toEqual([
      expect.objectContaining({
        channel: CHANNEL,
        text: 'whitehall 1a2b3c4 waits for approval (deploy-whitehall-abc/run-1/7)',
        metadata: { event_type: SLACK_EVENT_TYPE, event_payload: { key: 'deploy-whitehall-abc/run-1/7' } },
        ts: expect.stringMatching(/^\d{10}\.\d{6}$/),
      }),
    ]);
    // No lookup: nothing can have been posted before a first attempt.
    expect(slack.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['POST /api/chat.postMessage 200']);
    expect(posts()[0]!.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(posts()[0]!.body).toEqual({
      channel: CHANNEL,
      text: 'whitehall 1a2b3c4 waits for approval (deploy-whitehall-abc/run-1/7)',
      metadata: { event_type: 'deploy_pipeline_notice', event_payload: { key: 'deploy-whitehall-abc/run-1/7' } },
    });
  });

  it('a retry finds the message an earlier attempt posted and does not post it again; an unposted one it posts', async () => {
    const scheduledAt = Date.now();
    await notifier().notify(notice('wf/run/1', { firstScheduledAtMs: scheduledAt }));
    await notifier().notify(notice('wf/run/1', { firstAttempt: false, firstScheduledAtMs: scheduledAt }));
    await notifier().notify(notice('wf/run/1', { firstAttempt: false, firstScheduledAtMs: scheduledAt }));
    expect(slack.channelMessages(CHANNEL).map((m) => m.metadata?.event_payload.key)).toEqual(['wf/run/1']);

    // The lookup: since the step was first scheduled, less a minute for clocks, with the metadata Slack leaves out by default.
    const query = new URL(history()[0]!.url, 'http://slack').searchParams;
    expect(Object.fromEntries(query)).toEqual({
      channel: CHANNEL,
      oldest: ((scheduledAt - SLACK_CLOCK_SKEW_MS) / 1000).toFixed(6),
      include_all_metadata: 'true',
      limit: '200',
    });
    expect(history()[0]!.method).toBe('GET');

    // A retry of another step (another key) whose first attempt never reached Slack posts.
    await notifier().notify(notice('wf/run/2', { firstAttempt: false }));
    expect(slack.channelMessages(CHANNEL).map((m) => m.metadata?.event_payload.key)).toEqual(['wf/run/1', 'wf/run/2']);
  });

  it('looks through every page of a busy channel, following next_cursor', async () => {
    const scheduledAt = Date.now();
    await notifier().notify(notice('wf/run/busy', { firstScheduledAtMs: scheduledAt }));
    // Others write after our message, with metadata of their own, one that even looks like ours but with another key.
    for (let i = 0; i < 6; i++) slack.addChannelMessage(CHANNEL, `chatter ${i}`);
    slack.addChannelMessage(CHANNEL, 'another notice', { metadata: { event_type: SLACK_EVENT_TYPE, event_payload: { key: 'wf/run/other' } } });
    slack.clearRequests();

    await notifier({ pageSize: 3 }).notify(notice('wf/run/busy', { firstAttempt: false, firstScheduledAtMs: scheduledAt }));
    expect(posts()).toHaveLength(0);
    // 8 messages, newest first, 3 a page: ours is on the third.
    const cursors = history().map((r) => new URL(r.url, 'http://slack').searchParams.get('cursor'));
    expect(cursors).toHaveLength(3);
    expect(cursors[0]).toBeNull();
    expect(cursors[1]).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(new Set(cursors).size).toBe(3);

    // A key no message carries: every page is read, then the notice is posted.
    slack.clearRequests();
    await notifier({ pageSize: 3 }).notify(notice('wf/run/missing', { firstAttempt: false, firstScheduledAtMs: scheduledAt }));
    expect(history()).toHaveLength(3);
    expect(posts()).toHaveLength(1);
    expect(slack.channelMessages(CHANNEL).filter((m) => m.metadata?.event_payload.key === 'wf/run/missing')).toHaveLength(1);
  });

  it('maps Slack’s refusals to permanent errors that say what to fix, without the token', async () => {
    const refused = async (options: Parameters<typeof notifier>[0], firstAttempt = true) => {
      const err = await errorFrom(() => notifier(options).notify(notice('wf/run/x', { firstAttempt })));
      expect(err).toBeInstanceOf(PermanentHttpError);
      expect(err.message).not.toContain(TOKEN);
      expect(err.message).not.toContain(WRONG_TOKEN);
      expect(err.message).not.toContain(WRONG_TOKEN.split('-').at(-1));
      return err.message;
    };
    expect(await refused({ token: WRONG_TOKEN })).toBe('Slack chat.postMessage failed: invalid_auth: Slack does not accept the bot token; check SLACK_BOT_TOKEN');
    expect(await refused({ token: WRONG_TOKEN }, false)).toMatch(/^Slack conversations\.history failed: invalid_auth: /);
    expect(await refused({ channel: 'C0NOWHERE' })).toMatch(/channel_not_found: there is no channel C0NOWHERE, or the bot cannot see it .*check SLACK_CHANNEL/);
    slack.addChannel('C0OUTSIDE', { member: false });
    expect(await refused({ channel: 'C0OUTSIDE' }, false)).toMatch(/not_in_channel: the bot is not a member of channel C0OUTSIDE; invite it/);

    slack.injectFault({ pathPattern: '^/api/conversations\\.history', status: 200, body: { ok: false, error: 'missing_scope', needed: 'channels:history', provided: 'chat:write' } });
    expect(await refused({}, false)).toBe('Slack conversations.history failed: missing_scope: the Slack app lacks channels:history (it has chat:write); add the scope and reinstall the app');
    for (const error of ['not_authed', 'account_inactive', 'token_revoked']) {
      slack.injectFault({ status: 200, body: { ok: false, error } });
      expect(await refused({})).toMatch(new RegExp(`^Slack chat\\.postMessage failed: ${error}: .*SLACK_BOT_TOKEN`));
    }
    expect(slack.channelMessages(CHANNEL)).toHaveLength(0);
  });

  it('maps rate limits, Slack’s own errors, 5xx, timeouts and refused connections to retryable errors', async () => {
    slack.injectFault({ pathPattern: '^/api/chat\\.postMessage', status: 429, headers: { 'retry-after': '7' }, body: { ok: false, error: 'ratelimited' } });
    const limited = await errorFrom(() => notifier().notify(notice('k')));
    expect(limited).toBeInstanceOf(TransientHttpError);
    expect((limited as TransientHttpError).retryAfterMs).toBe(7000);
    expect(limited.message).toMatch(/returned 429: ratelimited \(rate limited; retry in 7 s\)/);

    slack.injectFault({ pathPattern: '^/api/conversations\\.history', status: 429, headers: { 'retry-after': '30' }, body: { ok: false, error: 'ratelimited' } });
    const historyLimited = await errorFrom(() => notifier().notify(notice('k', { firstAttempt: false })));
    expect((historyLimited as TransientHttpError).retryAfterMs).toBe(30_000);

    for (const error of ['ratelimited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'something_new']) {
      slack.injectFault({ status: 200, body: { ok: false, error } });
      const err = await errorFrom(() => notifier().notify(notice('k')));
      expect({ error, transient: err instanceof TransientHttpError }).toEqual({ error, transient: true });
      expect(err.message).toBe(`Slack chat.postMessage failed: ${error}`);
    }
    for (const status of [500, 502, 503]) {
      slack.injectFault({ status, body: `upstream ${status} while using ${TOKEN}` });
      const err = await errorFrom(() => notifier().notify(notice('k')));
      expect(err).toBeInstanceOf(TransientHttpError);
      expect(err.message).toContain(`returned ${status}`);
      expect(err.message).not.toContain(TOKEN);
    }
    slack.injectFault({ delayMs: 1000 });
    expect((await errorFrom(() => notifier({ timeoutMs: 200 }).notify(notice('k')))).message).toMatch(/timed out after 200 ms/);
    const nowhere = createSlackWebApiNotifier({ token: TOKEN, channel: CHANNEL, apiUrl: `http://127.0.0.1:${await closedPort()}/api` });
    const refusedConnection = await errorFrom(() => nowhere.notify(notice('k')));
    expect(refusedConnection).toBeInstanceOf(TransientHttpError);
    expect(refusedConnection.message).toMatch(/connection refused/);
    expect(slack.channelMessages(CHANNEL)).toHaveLength(0);
  });

  it("escapes Slack's control characters, so no text can mention a channel or forge a link", async () => {
    const text = 'whitehall failed: GET /healthcheck returned 500; body: <!channel> <https://evil.example|login> & more';
    await notifier().notify({ ...notice('wf/run/9'), text });
    const escaped = 'whitehall failed: GET /healthcheck returned 500; body: &lt;!channel&gt; &lt;https://evil.example|login&gt; &amp; more';
    expect(posts()[0]!.body).toMatchObject({ text: escaped });
    await createSlackWebhookNotifier({ webhookUrl: slack.webhookUrl }).notify({ ...notice('wf/run/9'), text });
    expect(slack.requests.at(-1)!.body).toEqual({ text: escaped });
  });

  it('the webhook posts whatever it is given, again on a retry: at least once', async () => {
    const webhook = createSlackWebhookNotifier({ webhookUrl: slack.webhookUrl });
    await webhook.notify(notice('wf/run/3'));
    await webhook.notify(notice('wf/run/3', { firstAttempt: false }));
    expect(slack.messages.map((m) => [m.path, m.text])).toEqual([
      ['/services/T0SANDBOX/B0DEPLOYS/sandboxwebhooksecret', 'whitehall 1a2b3c4 waits for approval (wf/run/3)'],
      ['/services/T0SANDBOX/B0DEPLOYS/sandboxwebhooksecret', 'whitehall 1a2b3c4 waits for approval (wf/run/3)'],
    ]);
    expect(slack.requests.map((r) => r.body)).toEqual([{ text: 'whitehall 1a2b3c4 waits for approval (wf/run/3)' }, { text: 'whitehall 1a2b3c4 waits for approval (wf/run/3)' }]);
  });
});

describe("the Slack simulator's Web API wire format", () => {
  let slack: SlackSimulator;
  beforeEach(async () => {
    slack = new SlackSimulator({ botToken: TOKEN, channels: [CHANNEL] });
    await slack.start();
  });
  afterEach(() => slack.close());

  const call = async (method: string, init: RequestInit & { query?: Record<string, string> } = {}) => {
    const url = new URL(`${slack.apiUrl}/${method}`);
    for (const [name, value] of Object.entries(init.query ?? {})) url.searchParams.set(name, value);
    const response = await fetch(url, init);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const bearer = { authorization: `Bearer ${TOKEN}` };

  it('takes form-encoded posts with the token in the form and the metadata as JSON text', async () => {
    const form = new URLSearchParams({ token: TOKEN, channel: CHANNEL, text: 'hello', metadata: JSON.stringify({ event_type: 'x', event_payload: { a: 1 } }) });
    const posted = await call('chat.postMessage', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    expect(posted).toEqual({ status: 200, body: expect.objectContaining({ ok: true, channel: CHANNEL, ts: expect.stringMatching(/^\d{10}\.\d{6}$/) }) });
    expect(slack.channelMessages(CHANNEL)[0]!.metadata).toEqual({ event_type: 'x', event_payload: { a: 1 } });
    // JSON without a charset works, with Slack's warning.
    const json = await call('chat.postMessage', { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: JSON.stringify({ channel: CHANNEL, text: 'again' }) });
    expect(json.body).toEqual(expect.objectContaining({ ok: true, warning: 'missing_charset' }));
  });

  it('refuses as Slack does: HTTP 200 with ok false', async () => {
    const json = { 'content-type': 'application/json; charset=utf-8' };
    const post = (headers: Record<string, string>, body: unknown) => call('chat.postMessage', { method: 'POST', headers: { ...json, ...headers }, body: JSON.stringify(body) });
    expect(await post({}, { channel: CHANNEL, text: 'x' })).toEqual({ status: 200, body: { ok: false, error: 'not_authed' } });
    // A JSON body's token does not count: JSON needs the header.
    expect((await post({}, { token: TOKEN, channel: CHANNEL, text: 'x' })).body.error).toBe('not_authed');
    expect((await post({ authorization: `Bearer ${WRONG_TOKEN}` }, { channel: CHANNEL, text: 'x' })).body.error).toBe('invalid_auth');
    expect((await post(bearer, { channel: 'C0NOWHERE', text: 'x' })).body.error).toBe('channel_not_found');
    expect((await post(bearer, { channel: CHANNEL })).body.error).toBe('no_text');
    expect((await post(bearer, { channel: CHANNEL, text: 'x', metadata: { event_type: 'x' } })).body.error).toBe('invalid_metadata_format');
    expect(await call('chat.nonsense', { method: 'POST', headers: bearer })).toEqual({ status: 404, body: { ok: false, error: 'unknown_method' } });
    expect(slack.messages).toHaveLength(0);
  });

  it('pages conversations.history newest first, hides metadata unless asked, and honours oldest', async () => {
    const sent = Array.from({ length: 5 }, (_, i) => slack.addChannelMessage(CHANNEL, `m${i}`, { metadata: { event_type: 't', event_payload: { i } } }));
    const first = await call('conversations.history', { headers: bearer, query: { channel: CHANNEL, limit: '2' } });
    expect(first.body).toEqual(expect.objectContaining({ ok: true, has_more: true, response_metadata: { next_cursor: expect.any(String) } }));
    expect((first.body.messages as Array<{ text: string; metadata?: unknown }>).map((m) => [m.text, m.metadata])).toEqual([
      ['m4', undefined],
      ['m3', undefined],
    ]);
    const cursor = (first.body.response_metadata as { next_cursor: string }).next_cursor;
    // POST form-encoded works too.
    const second = await call('conversations.history', {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ channel: CHANNEL, limit: '2', cursor, include_all_metadata: 'true' }),
    });
    expect((second.body.messages as Array<{ text: string; metadata?: unknown }>).map((m) => [m.text, m.metadata])).toEqual([
      ['m2', { event_type: 't', event_payload: { i: 2 } }],
      ['m1', { event_type: 't', event_payload: { i: 1 } }],
    ]);
    const since = await call('conversations.history', { headers: bearer, query: { channel: CHANNEL, oldest: sent[2]!.ts! } });
    expect(since.body).toEqual(expect.objectContaining({ has_more: false }));
    expect((since.body.messages as Array<{ text: string }>).map((m) => m.text)).toEqual(['m4', 'm3']);
    expect((await call('conversations.history', { headers: bearer, query: { channel: CHANNEL, cursor: 'bm9wZQ==' } })).body.error).toBe('invalid_cursor');
    expect((await call('conversations.history', { headers: { authorization: `Bearer ${WRONG_TOKEN}` }, query: { channel: CHANNEL } })).body.error).toBe('invalid_auth');
  });
});

describe('notifyPeople', () => {
  it("keys the notice by the step's own identity, which its retries share, and tells a first attempt from a retry", async () => {
    const notices: Notice[] = [];
    const activities = createActivities({ notifier: { notify: async (n: Notice) => void notices.push(n) } } as unknown as ActivityDependencies);
    const execution = { workflowId: 'deploy-whitehall-1a2b', runId: '0190-run' };
    await new MockActivityEnvironment({ workflowExecution: execution, activityId: '12', attempt: 1, scheduledTimestampMs: 1_700_000_000_000 }).run(activities.notifyPeople, { text: 'hello' });
    await new MockActivityEnvironment({ workflowExecution: execution, activityId: '12', attempt: 3, scheduledTimestampMs: 1_700_000_000_000 }).run(activities.notifyPeople, { text: 'hello' });
    expect(notices).toEqual([
      { text: 'hello', key: 'deploy-whitehall-1a2b/0190-run/12', firstAttempt: true, firstScheduledAtMs: 1_700_000_000_000 },
      { text: 'hello', key: 'deploy-whitehall-1a2b/0190-run/12', firstAttempt: false, firstScheduledAtMs: 1_700_000_000_000 },
    ]);
  });
});

describe('Slack settings', () => {
  const base: Env = { GITHUB_TOKEN: 't', ARGOCD_URL: 'http://a', ARGOCD_TOKEN: 't', RELEASE_URL: 'http://r', RELEASE_TOKEN: 't', CHARTS_REPO_URL: 'x' };
  const problems = (env: Env): string[] => {
    try {
      loadWorkerSettings({ ...base, ...env });
    } catch (err) {
      if (!(err instanceof SettingsError)) throw err;
      return err.message.split('\n').slice(1).map((line) => line.replace(/^\s*- /, ''));
    }
    return [];
  };

  it('takes a bot token and a channel (the exactly-once mode), a webhook, or nothing', () => {
    expect(loadWorkerSettings(base).slack).toBeUndefined();
    expect(loadWorkerSettings({ ...base, SLACK_BOT_TOKEN: ` ${TOKEN} `, SLACK_CHANNEL: CHANNEL }).slack).toEqual({ mode: 'bot', botToken: TOKEN, channel: CHANNEL, apiUrl: 'https://slack.com/api' });
    expect(loadWorkerSettings({ ...base, SLACK_BOT_TOKEN: TOKEN, SLACK_CHANNEL: 'G01PRIVATE', SLACK_API_URL: 'http://127.0.0.1:9/api/' }).slack).toEqual({
      mode: 'bot',
      botToken: TOKEN,
      channel: 'G01PRIVATE',
      apiUrl: 'http://127.0.0.1:9/api',
    });
    expect(loadWorkerSettings({ ...base, SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T1/B2/c3' }).slack).toEqual({ mode: 'webhook', webhookUrl: 'https://hooks.slack.com/services/T1/B2/c3' });
    // Empty means unset (how a test or a compose file turns a mode off).
    expect(loadWorkerSettings({ ...base, SLACK_BOT_TOKEN: '', SLACK_CHANNEL: ' ', SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T1/B2/c3' }).slack?.mode).toBe('webhook');
  });

  it('refuses incomplete or contradictory Slack settings with precise messages, never quoting the token', () => {
    expect(problems({ SLACK_BOT_TOKEN: TOKEN })).toEqual(['SLACK_CHANNEL is not set, but SLACK_BOT_TOKEN is (the ID of the channel the bot posts to, e.g. C0123ABCD)']);
    expect(problems({ SLACK_CHANNEL: CHANNEL })).toEqual(["SLACK_BOT_TOKEN is not set, but SLACK_CHANNEL is (the Slack app's bot token, xoxb-…, that posts to that channel)"]);
    expect(problems({ SLACK_BOT_TOKEN: TOKEN, SLACK_CHANNEL: '#deploys' })).toEqual([
      'SLACK_CHANNEL must be a channel ID such as C0123ABCD (Slack shows it at the bottom of the channel\'s details), not "#deploys"',
    ]);
    const userToken = 'xoxp-1234567890-0987654321-userTokenSecret';
    const wrongKind = problems({ SLACK_BOT_TOKEN: userToken, SLACK_CHANNEL: CHANNEL });
    expect(wrongKind).toEqual(['SLACK_BOT_TOKEN must be a bot token, starting xoxb- (this is a xoxp- token): the Slack app\'s "Bot User OAuth Token"']);
    expect(problems({ SLACK_BOT_TOKEN: 'not-a-slack-token-at-all', SLACK_CHANNEL: CHANNEL })[0]).not.toContain('not-a-slack-token');
    expect(problems({ SLACK_BOT_TOKEN: TOKEN, SLACK_CHANNEL: CHANNEL, SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T1/B2/c3' })).toEqual([
      'SLACK_WEBHOOK_URL and SLACK_BOT_TOKEN are both set: pick one (SLACK_BOT_TOKEN with SLACK_CHANNEL posts each message exactly once; the webhook may repeat a message after a worker crash)',
    ]);
    expect(problems({ SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T1/B2/c3', SLACK_CHANNEL: CHANNEL })).toEqual([
      'SLACK_CHANNEL is set with SLACK_WEBHOOK_URL: a webhook posts to its own channel; set SLACK_BOT_TOKEN instead of the webhook to choose one',
    ]);
    expect(problems({ SLACK_BOT_TOKEN: TOKEN, SLACK_CHANNEL: CHANNEL, SLACK_API_URL: 'slack.com/api' })).toEqual(['SLACK_API_URL must be an http(s) URL (the Slack Web API base URL)']);
    expect(problems({ SLACK_WEBHOOK_URL: 'hooks.slack.com' })).toEqual(['SLACK_WEBHOOK_URL must be an http(s) URL (a Slack incoming webhook)']);
    // Every problem at once, with the others'.
    const all = problems({ GITHUB_TOKEN: '', SLACK_BOT_TOKEN: TOKEN, SLACK_CHANNEL: 'deploys' });
    expect(all).toHaveLength(2);
    expect(all.join('\n')).not.toContain(TOKEN);
  });
});
