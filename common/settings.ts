import { readFileSync } from 'node:fs';
import { loadClientConnectConfig, type ClientConnectConfig } from '@temporalio/envconfig';
import { parseDuration } from './duration';
import { parsePrincipalLogins } from './temporal-principals';

/** Connection settings from the environment, validated once at start-up. Secrets stay here, never in workflow inputs. */

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

export type Env = Record<string, string | undefined>;

export interface WorkerSettings {
  taskQueue: string;
  cataloguePath: string;
  github: { token: string; apiUrl: string };
  argoCd: { url: string; token: string };
  releaseApp: { url: string; token: string };
  charts: { remoteUrl: string; branch: string; workdir: string; author: { name: string; email: string } };
  polling: { initialIntervalMs: number; maxIntervalMs: number };
  /** Workflows kept in the worker's memory between their tasks; the rest are replayed from history when needed. */
  maxCachedWorkflows: number;
  /** Activities run at once; a pipeline waiting out a freeze holds one for as long as the freeze lasts. */
  maxConcurrentActivities: number;
  workflowBundlePath?: string;
  /** Optional: where Slack hears about approvals needed, failures, rollbacks and supersedes. */
  slack?: SlackSettings;
  /** Optional: Temporal Web UI base URL, for links from GitHub deployments. */
  webUiUrl?: string;
  identity: IdentitySettings;
}

/** How the worker checks who sent a decision (docs/production.md, "Who can do what"). */
export interface IdentitySettings {
  oidcIssuer: string;
  oidcAudience: string;
  /** `owner/name`s, and owners, whose GitHub Actions runs may send decisions; none: no token is accepted. */
  oidcRepositories: string[];
  oidcOwners: string[];
  signatureMaxAgeMs: number;
  /** `type:name` of Temporal principals → GitHub login; unset, the temporal-principal channel is off. */
  temporalPrincipals?: Map<string, string>;
}

export const DEFAULT_OIDC_ISSUER = 'https://token.actions.githubusercontent.com';
export const DEFAULT_OIDC_AUDIENCE = 'deploy-pipelines';
export const DEFAULT_SIGNATURE_MAX_AGE_MS = 15 * 60_000;

function identitySettings(env: Env, c: ReturnType<typeof problemsCollector>): IdentitySettings {
  const list = (name: string, pattern: RegExp, what: string): string[] => {
    const entries = (env[name] ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
    for (const entry of entries) if (!pattern.test(entry)) c.problems.push(`${name}: "${entry}" is not ${what}`);
    return entries;
  };
  let signatureMaxAgeMs = DEFAULT_SIGNATURE_MAX_AGE_MS;
  const maxAge = env.DEPLOY_SIGNATURE_MAX_AGE?.trim();
  if (maxAge) {
    try {
      signatureMaxAgeMs = parseDuration(maxAge);
      if (signatureMaxAgeMs < 60_000 || signatureMaxAgeMs > 24 * 3_600_000) throw new Error('out of range');
    } catch {
      c.problems.push(`DEPLOY_SIGNATURE_MAX_AGE must be a duration from 1m to 24h, such as 15m, not "${maxAge}"`);
    }
  }
  let temporalPrincipals: Map<string, string> | undefined;
  if (env.DEPLOY_TEMPORAL_PRINCIPALS?.trim()) {
    const { logins, problems } = parsePrincipalLogins(env.DEPLOY_TEMPORAL_PRINCIPALS);
    c.problems.push(...problems);
    temporalPrincipals = logins;
  }
  return {
    oidcIssuer: c.url(env, 'DEPLOY_OIDC_ISSUER', 'the OIDC issuer of GitHub Actions tokens', DEFAULT_OIDC_ISSUER),
    oidcAudience: env.DEPLOY_OIDC_AUDIENCE?.trim() || DEFAULT_OIDC_AUDIENCE,
    oidcRepositories: list('DEPLOY_OIDC_REPOSITORIES', /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9_.-]{1,100}$/, 'an owner/name repository'),
    oidcOwners: list('DEPLOY_OIDC_OWNERS', /^[A-Za-z0-9][A-Za-z0-9-]{0,38}$/, 'a GitHub organisation or user'),
    signatureMaxAgeMs,
    temporalPrincipals,
  };
}

/**
 * Slack, one of two ways: the Web API with a bot token posts each message exactly once; an incoming webhook takes
 * no idempotency key, so a worker that dies between Slack's answer and the step's completion repeats a message.
 */
export type SlackSettings =
  | { mode: 'bot'; botToken: string; channel: string; apiUrl: string }
  | { mode: 'webhook'; webhookUrl: string };

export const DEFAULT_SLACK_API_URL = 'https://slack.com/api';

/** A conversation ID: C… (public channel), G… (private channel of old), D… (direct message). */
const SLACK_CHANNEL_ID = /^[CGD][A-Z0-9]{6,20}$/;

export const DEFAULT_CATALOGUE_PATH = 'config/apps.yaml';

/**
 * How waits for Argo CD and ECR poll: the first look again soon (a refreshed application is often synced within
 * a second or two, and a quick look is a cheap read of Argo CD's cache), then half as long again each time, up to
 * the maximum: about 20 looks in a 3-minute rollout. BENCHMARKS.md measures what the first interval costs.
 */
export const DEFAULT_POLLING = { initialIntervalMs: 100, maxIntervalMs: 30_000 };

/**
 * A cached workflow costs the worker about 1 MB, counting the SDK's core as well as the workflow thread
 * (BENCHMARKS.md); without a bound the SDK sizes the cache from the heap limit (over 2,000 workflows with a 4 GB
 * heap), so thousands of pipelines waiting for approval would stay in memory. Those wait for days and replay in
 * milliseconds when an approval comes; the cache is for pipelines at work and their lanes, and should hold more
 * than those under way at once, or they replay at every step. A worker expecting more raises it.
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 150;

/**
 * The SDK runs 100 activities at once by default. A pipeline waiting out a freeze holds one (asleep between looks,
 * costing next to nothing) for as long as the freeze lasts, and a weekend freeze of production holds back one
 * pipeline per app: with 100, a few dozen frozen apps would leave the other pipelines' steps queued behind them.
 */
export const DEFAULT_MAX_CONCURRENT_ACTIVITIES = 1000;

function problemsCollector() {
  const problems: string[] = [];
  return {
    problems,
    required(env: Env, name: string, hint: string): string {
      const value = env[name]?.trim();
      if (!value) {
        problems.push(`${name} is not set (${hint})`);
        return '';
      }
      return value;
    },
    url(env: Env, name: string, hint: string, fallback?: string): string {
      const value = env[name]?.trim() || fallback;
      if (!value) {
        problems.push(`${name} is not set (${hint})`);
        return '';
      }
      try {
        const parsed = new URL(value);
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
      } catch {
        problems.push(`${name} must be an http(s) URL (${hint})`);
      }
      return value.replace(/\/+$/, '');
    },
    number(env: Env, name: string, fallback: number, unit = ' of milliseconds'): number {
      const raw = env[name]?.trim();
      if (!raw) return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value <= 0) problems.push(`${name} must be a positive whole number${unit}, not "${raw}"`);
      return value;
    },
  };
}

function slackSettings(env: Env, c: ReturnType<typeof problemsCollector>): SlackSettings | undefined {
  const webhook = env.SLACK_WEBHOOK_URL?.trim();
  const botToken = env.SLACK_BOT_TOKEN?.trim();
  const channel = env.SLACK_CHANNEL?.trim();
  if (webhook && botToken) {
    c.problems.push(
      'SLACK_WEBHOOK_URL and SLACK_BOT_TOKEN are both set: pick one (SLACK_BOT_TOKEN with SLACK_CHANNEL posts each message exactly once; the webhook may repeat a message after a worker crash)',
    );
    return undefined;
  }
  if (webhook) {
    if (channel) c.problems.push('SLACK_CHANNEL is set with SLACK_WEBHOOK_URL: a webhook posts to its own channel; set SLACK_BOT_TOKEN instead of the webhook to choose one');
    return { mode: 'webhook', webhookUrl: c.url(env, 'SLACK_WEBHOOK_URL', 'a Slack incoming webhook') };
  }
  if (!botToken && !channel) return undefined;
  if (!botToken) {
    c.problems.push('SLACK_BOT_TOKEN is not set, but SLACK_CHANNEL is (the Slack app\'s bot token, xoxb-…, that posts to that channel)');
  } else if (!botToken.startsWith('xoxb-')) {
    // Name the kind of token, never the token.
    const kind = /^(xox[a-z]|xapp)-/.exec(botToken)?.[1];
    c.problems.push(`SLACK_BOT_TOKEN must be a bot token, starting xoxb-${kind ? ` (this is a ${kind}- token)` : ''}: the Slack app's "Bot User OAuth Token"`);
  }
  if (!channel) {
    c.problems.push('SLACK_CHANNEL is not set, but SLACK_BOT_TOKEN is (the ID of the channel the bot posts to, e.g. C0123ABCD)');
  } else if (!SLACK_CHANNEL_ID.test(channel)) {
    c.problems.push(`SLACK_CHANNEL must be a channel ID such as C0123ABCD (Slack shows it at the bottom of the channel's details), not "${channel}"`);
  }
  const apiUrl = c.url(env, 'SLACK_API_URL', 'the Slack Web API base URL', DEFAULT_SLACK_API_URL);
  return { mode: 'bot', botToken: botToken ?? '', channel: channel ?? '', apiUrl };
}

export function loadWorkerSettings(env: Env = process.env): WorkerSettings {
  const c = problemsCollector();
  const settings: WorkerSettings = {
    taskQueue: env.DEPLOY_TASK_QUEUE?.trim() || 'deployments',
    cataloguePath: env.DEPLOY_CATALOGUE?.trim() || DEFAULT_CATALOGUE_PATH,
    github: {
      token: c.required(env, 'GITHUB_TOKEN', 'a token that can read the app repos and dispatch their build workflow'),
      apiUrl: c.url(env, 'GITHUB_API_URL', 'GitHub REST API base URL', 'https://api.github.com'),
    },
    argoCd: {
      url: c.url(env, 'ARGOCD_URL', 'the Argo CD server, e.g. https://argo.example.org'),
      token: c.required(env, 'ARGOCD_TOKEN', 'an Argo CD API token that can read applications'),
    },
    releaseApp: {
      url: c.url(env, 'RELEASE_URL', 'the Release app, e.g. https://release.example.org'),
      token: c.required(env, 'RELEASE_TOKEN', 'the Release app API token'),
    },
    charts: {
      remoteUrl: c.required(env, 'CHARTS_REPO_URL', 'the Helm charts git repository to push image tags to'),
      branch: env.CHARTS_BRANCH?.trim() || 'main',
      workdir: env.CHARTS_WORKDIR?.trim() || '.data/charts-workdir',
      author: {
        name: env.CHARTS_COMMIT_AUTHOR_NAME?.trim() || 'Deploy Pipeline',
        email: env.CHARTS_COMMIT_AUTHOR_EMAIL?.trim() || 'deploy-pipeline@users.noreply.github.com',
      },
    },
    polling: {
      initialIntervalMs: c.number(env, 'DEPLOY_POLL_INTERVAL_MS', DEFAULT_POLLING.initialIntervalMs),
      maxIntervalMs: c.number(env, 'DEPLOY_POLL_MAX_INTERVAL_MS', DEFAULT_POLLING.maxIntervalMs),
    },
    maxCachedWorkflows: c.number(env, 'DEPLOY_MAX_CACHED_WORKFLOWS', DEFAULT_MAX_CACHED_WORKFLOWS, ''),
    maxConcurrentActivities: c.number(env, 'DEPLOY_MAX_CONCURRENT_ACTIVITIES', DEFAULT_MAX_CONCURRENT_ACTIVITIES, ''),
    workflowBundlePath: env.DEPLOY_WORKFLOW_BUNDLE?.trim() || undefined,
    slack: slackSettings(env, c),
    webUiUrl: env.DEPLOY_WEB_UI_URL?.trim() ? c.url(env, 'DEPLOY_WEB_UI_URL', 'Temporal Web UI, e.g. https://cloud.temporal.io') : undefined,
    identity: identitySettings(env, c),
  };
  if (!/^[A-Za-z0-9_.-]{1,200}$/.test(settings.taskQueue)) c.problems.push(`DEPLOY_TASK_QUEUE "${settings.taskQueue}" must be letters, digits, ".", "_" or "-"`);
  if (!/^[A-Za-z0-9._/-]{1,200}$/.test(settings.charts.branch) || settings.charts.branch.startsWith('-')) {
    c.problems.push(`CHARTS_BRANCH "${settings.charts.branch}" is not a valid branch name`);
  }
  if (settings.polling.maxIntervalMs < settings.polling.initialIntervalMs) {
    c.problems.push('DEPLOY_POLL_MAX_INTERVAL_MS must not be smaller than DEPLOY_POLL_INTERVAL_MS');
  }
  if (c.problems.length > 0) {
    throw new SettingsError(`the worker's settings are incomplete:\n  - ${c.problems.join('\n  - ')}`);
  }
  return settings;
}

/** Temporal connection: the SDK's standard environment configuration (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key, profiles). */
export function temporalConnectConfig(env: Env = process.env): ClientConnectConfig {
  const overrideEnvVars = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const config = loadClientConnectConfig({ overrideEnvVars });
  if (!config.connectionOptions.address) config.connectionOptions.address = 'localhost:7233';
  return config;
}

/**
 * DEPLOY_TEMPORAL_TOKEN_FILE: the worker's Temporal token (an API key, or a JWT where the server has an authorizer)
 * in a file something else renews, such as a projected volume or a sidecar; the worker reads it again while it
 * runs (worker/temporal-connection.ts). Instead of TEMPORAL_API_KEY, whose token lives as long as the process.
 */
export function temporalTokenFile(env: Env = process.env): string | undefined {
  return env.DEPLOY_TEMPORAL_TOKEN_FILE?.trim() || undefined;
}

/** The token the file holds now; SettingsError naming the file when there is none. */
export function readTemporalToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new SettingsError(`DEPLOY_TEMPORAL_TOKEN_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!token) throw new SettingsError(`DEPLOY_TEMPORAL_TOKEN_FILE: ${file} is empty`);
  if (/\s/.test(token)) throw new SettingsError(`DEPLOY_TEMPORAL_TOKEN_FILE: ${file} holds more than a token (it has spaces or several lines)`);
  return token;
}

export function taskQueueFrom(env: Env = process.env): string {
  return env.DEPLOY_TASK_QUEUE?.trim() || 'deployments';
}
