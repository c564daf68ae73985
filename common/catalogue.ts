import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './duration';
import { validateAppName, validateEnvironmentName, validateGitRef, validateRepo, validateApprover } from './names';
import type { SmokeCheck } from './ports';
import type { IdentityPolicy, LaneQueueOrder } from './types';

/** The app catalogue: which apps deploy where, and how. Loaded and validated once at start-up. */

export type TagScheme = 'sha' | 'short-sha' | 'release-tag';

export interface DeployWindow {
  /** Lower-case three-letter day names the window is open on. */
  days: string[];
  /** Wall-clock "HH:MM" or "HH:MM:SS" in the time zone. */
  from: string;
  to: string;
  timezone: string;
}

export interface EnvironmentConfig {
  name: string;
  continuousDeployment: boolean;
  /** May the commit's author approve its own deploy here? */
  allowSelfApproval: boolean;
  /** Automatic deploys wait for one of these to open; empty means any time. */
  deployWindows: DeployWindow[];
  argocdApplication: string;
  /** Where the app answers in this environment, shown on GitHub's deployments. */
  url?: string;
  smokeChecks: SmokeCheck[];
  smokeAttempts: number;
  smokeRetryIntervalMs: number;
  syncTimeoutMs: number;
  /** A deploy here waits for a person's approval (every environment but the first, unless continuous). */
  needsApproval: boolean;
  /** Logins and `@org/team`s, or `anyone` alone. */
  approvers: string[];
  identity: IdentityPolicy;
  /** Who may start a manual deploy here: logins and `@org/team`s, or `anyone` alone. */
  deployers: string[];
}

/** The catalogue's word for "no list": it must be written out, so that an empty list never means anyone. */
export const ANYONE = 'anyone';

export interface AppConfig {
  name: string;
  repo: string;
  imageRepository: string;
  tagScheme: TagScheme;
  releaseTagPattern: string;
  build: { workflow: string; ref: string; timeoutMs: number };
  approvalTimeoutMs: number;
  /**
   * Where an environment runs a commit the release lacks (diverged): `wait` for a person's approval there, or
   * `deploy` over it, dropping those commits, for teams whose environments follow main and nothing else.
   */
  onDivergence: 'wait' | 'deploy';
  /**
   * CI pipelines of the app queued for one environment: the newest commit deploys first and the older ones end
   * SUPERSEDED (`newest-first`), or each deploys in turn (`in-order`). Manual deploys keep their order.
   */
  queue: LaneQueueOrder;
  /** The branch whose commits count as merged. */
  mainBranch: string;
  environments: EnvironmentConfig[];
}

export interface StepRetry {
  maximumAttempts: number;
  maximumIntervalMs: number;
  /** One attempt of a quick step is given up (and retried) after this: also how soon a step whose worker died runs again. */
  attemptTimeoutMs: number;
  /** A long wait (build, Argo CD sync, smoke tests) whose worker died resumes elsewhere after this. */
  heartbeatTimeoutMs: number;
}

export interface Catalogue {
  file: string;
  chartsPath: string;
  /** How often a pipeline held by a freeze looks again. */
  freezeRecheckIntervalMs: number;
  /** How often a pipeline queued for a lane asks again, so that a lane terminated by hand is started anew. */
  laneRecheckIntervalMs: number;
  /** A pipeline waiting in a freeze continues as new once its run's history passes this many events. */
  historyLimit: number;
  /** Retry limits of the steps that call GitHub, ECR, git and the release app. */
  stepRetry: StepRetry;
  apps: Map<string, AppConfig>;
}

export class CatalogueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CatalogueError';
  }
}

export const DEFAULT_ENVIRONMENTS = ['integration', 'staging', 'production'];
export const DEFAULT_CHARTS_PATH = 'charts/app-config/image-tags/{environment}/{app}';

const duration = z.union([z.string(), z.number().int().nonnegative()]).transform((value, ctx) => {
  try {
    return parseDuration(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/** A timeout or interval of zero would fail every attempt at once, or poll without pause: refused. */
const positiveDuration = duration.refine((ms) => ms > 0, 'must be longer than zero');

/** A string that `validate` accepts, its refusal becoming the field's message; the sandbox's options use it too. */
export function named(validate: (value: unknown) => string) {
  return z.string().superRefine((value, ctx) => {
    try {
      validate(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
}

const smokeCheckSchema = z.strictObject({
  name: z.string().min(1).max(100).optional(),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  expectStatus: z.number().int().min(100).max(599).default(200),
  expectBodyContains: z.string().min(1).optional(),
  timeout: positiveDuration.default(5000),
});

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/, 'must be a time of day such as 09:30');

const deployWindowSchema = z
  .strictObject({
    days: z.array(z.enum(DAYS)).min(1).default([...DAYS]),
    from: clock,
    to: clock,
    timezone: z.string().default('UTC'),
  })
  .superRefine((window, ctx) => {
    try {
      new Intl.DateTimeFormat('en-GB', { timeZone: window.timezone });
    } catch {
      ctx.addIssue({ code: 'custom', path: ['timezone'], message: `unknown time zone "${window.timezone}"` });
    }
    if (window.from >= window.to) ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be later than "from" on the same day' });
  });

function validateApproverEntry(value: unknown): string {
  if (typeof value === 'string' && /^@[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/.test(value)) return value;
  return validateApprover(value);
}

/** A list of people, or `[anyone]`: never empty, and `anyone` stands alone. */
const peopleList = z
  .array(named(validateApproverEntry))
  .min(1, 'list logins or @org/teams, or write [anyone]: an empty list would let nobody, or everybody, decide')
  .refine((people) => !people.includes(ANYONE) || people.length === 1, `"${ANYONE}" stands alone: it lets everyone`);

const approvalSchema = z.strictObject({
  identity: z.enum(['verified', 'claimed']).optional(),
  approvers: peopleList.optional(),
  deployers: peopleList.optional(),
});

const environmentSchema = z.strictObject({
  continuousDeployment: z.boolean().optional(),
  allowSelfApproval: z.boolean().optional(),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  deployWindows: z.array(deployWindowSchema).default([]),
  argocdApplication: z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'must be a Kubernetes resource name').optional(),
  smokeChecks: z.array(smokeCheckSchema).default([]),
  smokeAttempts: z.number().int().min(1).max(20).default(3),
  smokeRetryInterval: duration.default(2000),
  syncTimeout: positiveDuration.default(15 * 60_000),
  approvers: peopleList.optional(),
  deployers: peopleList.optional(),
  approval: approvalSchema.omit({ approvers: true, deployers: true }).optional(),
});

const appSchema = z.strictObject({
  repo: named(validateRepo),
  imageRepository: z
    .string()
    .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/, 'must be an ECR repository name')
    .optional(),
  tagScheme: z.enum(['sha', 'short-sha', 'release-tag']).default('sha'),
  mainBranch: named(validateGitRef).default('main'),
  onDivergence: z.enum(['wait', 'deploy']).default('wait'),
  queue: z.enum(['newest-first', 'in-order']).default('newest-first'),
  releaseTagPattern: z
    .string()
    .default('^v[0-9]+$')
    .superRefine((value, ctx) => {
      try {
        new RegExp(value);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a regular expression' });
      }
    }),
  build: z
    .strictObject({
      workflow: z.string().regex(/^[A-Za-z0-9_.-]+\.ya?ml$/, 'must be a workflow file name such as build-image.yml').default('build-image.yml'),
      ref: named(validateGitRef).default('main'),
      timeout: positiveDuration.default(30 * 60_000),
    })
    .default({ workflow: 'build-image.yml', ref: 'main', timeout: 30 * 60_000 }),
  approvalTimeout: positiveDuration.optional(),
  environments: z.record(named(validateEnvironmentName), environmentSchema.nullable()).optional(),
});

const catalogueSchema = z.strictObject({
  defaults: z
    .strictObject({
      environments: z.array(named(validateEnvironmentName)).min(1).optional(),
      approvalTimeout: positiveDuration.optional(),
      approval: approvalSchema.optional(),
      freezeRecheckInterval: positiveDuration.optional(),
      laneRecheckInterval: positiveDuration.optional(),
      historyLimit: z.number().int().min(200).max(40_000).optional(),
      stepRetry: z
        .strictObject({
          maximumAttempts: z.number().int().min(1).max(100).optional(),
          maximumInterval: duration.refine((ms) => ms >= 1000, 'must be at least 1s').optional(),
          attemptTimeout: duration.refine((ms) => ms >= 1000, 'must be at least 1s').optional(),
          heartbeatTimeout: duration.refine((ms) => ms >= 1000, 'must be at least 1s').optional(),
        })
        .optional(),
      chartsPath: z
        .string()
        .refine((p) => p.includes('{app}') && p.includes('{environment}') && !p.startsWith('/') && !p.split('/').includes('..'), {
          message: 'must be a relative path containing {app} and {environment}',
        })
        .optional(),
    })
    .optional(),
  apps: z.record(named(validateAppName), z.unknown()),
});

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => {
    if (typeof key === 'number') return `${out}[${key}]`;
    return out ? `${out}.${String(key)}` : String(key);
  }, '');
}

function firstIssue(error: z.ZodError): { path: string; message: string } {
  const issue = error.issues[0]!;
  // A bad record key (app or environment name) carries the key check's own message one level down.
  const nested = issue.code === 'invalid_key' ? issue.issues[0]?.message : undefined;
  return { path: formatPath(issue.path), message: nested ?? issue.message };
}

/** Parses catalogue text; `file` names it in every message. */
export function parseCatalogue(text: string, file: string): Catalogue {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    throw new CatalogueError(`${file}: not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`);
  }
  const top = catalogueSchema.safeParse(raw);
  if (!top.success) {
    const { path, message } = firstIssue(top.error);
    throw new CatalogueError(`${file}: ${path ? `field "${path}"` : 'top level'}: ${message}`);
  }
  const defaults = top.data.defaults ?? {};
  const defaultEnvironments = defaults.environments ?? DEFAULT_ENVIRONMENTS;
  const apps = new Map<string, AppConfig>();
  for (const [name, body] of Object.entries(top.data.apps)) {
    const parsed = appSchema.safeParse(body ?? {});
    if (!parsed.success) {
      const { path, message } = firstIssue(parsed.error);
      throw new CatalogueError(`${file}: app "${name}": ${path ? `field "${path}"` : 'entry'}: ${message}`);
    }
    const app = parsed.data;
    const environmentEntries: [string, z.infer<typeof environmentSchema> | null][] = app.environments
      ? Object.entries(app.environments)
      : defaultEnvironments.map((env) => [env, null]);
    if (environmentEntries.length === 0) {
      throw new CatalogueError(`${file}: app "${name}": field "environments": list at least one environment`);
    }
    const environments = environmentEntries.map(([envName, envBody], index): EnvironmentConfig => {
      const env = envBody ?? environmentSchema.parse({});
      // The first environment is where every merge lands; the rest need approval unless told otherwise.
      const continuousDeployment = env.continuousDeployment ?? index === 0;
      const approvers = env.approvers ?? defaults.approval?.approvers;
      if (!continuousDeployment && !approvers) {
        throw new CatalogueError(
          `${file}: app "${name}": environment "${envName}" needs approval and names no approvers: list logins or @org/teams, or write approvers: [${ANYONE}]`,
        );
      }
      return {
        name: envName,
        continuousDeployment,
        needsApproval: !continuousDeployment,
        // Refused by default in every gated environment: the author of a change is not the second pair of eyes.
        allowSelfApproval: env.allowSelfApproval ?? false,
        identity: env.approval?.identity ?? defaults.approval?.identity ?? 'verified',
        deployers: env.deployers ?? defaults.approval?.deployers ?? [ANYONE],
        deployWindows: env.deployWindows,
        argocdApplication: env.argocdApplication ?? `${name}-${envName}`,
        url: env.url,
        smokeChecks: env.smokeChecks.map((check) => ({
          name: check.name,
          url: check.url,
          expectStatus: check.expectStatus,
          expectBodyContains: check.expectBodyContains,
          timeoutMs: check.timeout,
        })),
        smokeAttempts: env.smokeAttempts,
        smokeRetryIntervalMs: env.smokeRetryInterval,
        syncTimeoutMs: env.syncTimeout,
        approvers: approvers ?? [ANYONE],
      };
    });
    apps.set(name, {
      name,
      repo: app.repo,
      imageRepository: app.imageRepository ?? name,
      tagScheme: app.tagScheme,
      releaseTagPattern: app.releaseTagPattern,
      build: { workflow: app.build.workflow, ref: app.build.ref, timeoutMs: app.build.timeout },
      approvalTimeoutMs: app.approvalTimeout ?? defaults.approvalTimeout ?? 7 * 24 * 3_600_000,
      onDivergence: app.onDivergence,
      queue: app.queue,
      mainBranch: app.mainBranch,
      environments,
    });
  }
  return {
    file,
    chartsPath: defaults.chartsPath ?? DEFAULT_CHARTS_PATH,
    freezeRecheckIntervalMs: defaults.freezeRecheckInterval ?? 60_000,
    laneRecheckIntervalMs: defaults.laneRecheckInterval ?? 10 * 60_000,
    historyLimit: defaults.historyLimit ?? 5_000,
    stepRetry: {
      maximumAttempts: defaults.stepRetry?.maximumAttempts ?? 10,
      maximumIntervalMs: defaults.stepRetry?.maximumInterval ?? 30_000,
      attemptTimeoutMs: defaults.stepRetry?.attemptTimeout ?? 2 * 60_000,
      heartbeatTimeoutMs: defaults.stepRetry?.heartbeatTimeout ?? 60_000,
    },
    apps,
  };
}

export function loadCatalogue(file: string): Catalogue {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CatalogueError(`${file}: cannot read the app catalogue: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseCatalogue(text, file);
}

export function findApp(catalogue: Catalogue, name: string): AppConfig | undefined {
  return catalogue.apps.get(name);
}

export function imageTagPath(catalogue: Pick<Catalogue, 'chartsPath'>, app: string, environment: string): string {
  return catalogue.chartsPath.replace('{app}', validateAppName(app)).replace('{environment}', validateEnvironmentName(environment));
}
