import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './duration';
import { validateAppName, validateEnvironmentName, validateGitRef, validateRepo, validateApprover } from './names';
import type { SmokeCheck } from './ports';
import { ANYONE } from './people';
import { DEFAULT_ARGO_WORKFLOWS_TOKEN_VARIABLE, smokeSuitesOf, suiteSchemas, type ArgoWorkflowsOfEnvironment, type SmokeSuite } from './smoke-suites';
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
  /** End-to-end suites run after the HTTP checks, each retried as they are (common/smoke-suites.ts). */
  smokeSuites: SmokeSuite[];
  /** This environment's cluster's Argo Workflows, where an `argoWorkflow` suite runs. */
  argoWorkflows?: ArgoWorkflowsOfEnvironment;
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
  /** This environment's cluster's Argo CD; without a URL, the worker's ARGOCD_URL and ARGOCD_TOKEN. */
  argocd: ArgoCdOfEnvironment;
}

export interface ArgoCdOfEnvironment {
  url?: string;
  /** The worker's environment variable that holds this Argo CD's API token. */
  tokenVariable?: string;
  /** The app-of-apps Application that renders the apps' Applications from the image-tag files (GOV.UK: `app-config`). */
  appOfApps?: string;
}

/**
 * `catalogue`: the catalogue's continuousDeployment says which environments a release reaches on its own.
 * `chartsFlags`, GOV.UK's rule: a release goes on to the next environment only when the file of the environment it
 * was deployed to said `promote_deployment: true` and `automatic_deploys_enabled: true` at the synced commit.
 */
export type PromotionRule = 'catalogue' | 'chartsFlags';

/** The catalogue's word for "no list": it must be written out, so that an empty list never means anyone. */
export { ANYONE };

/**
 * A registry images live in: ECR (the AWS SDK's region, credentials and endpoint; `registryId` another account's),
 * or any registry speaking the OCI distribution API at `url`. Credentials are named, never written: the worker
 * reads them from the environment variables given here.
 */
export interface RegistryConfig {
  name: string;
  type: 'ecr' | 'oci';
  url?: string;
  registryId?: string;
  usernameEnv?: string;
  passwordEnv?: string;
}

/** The registry every app uses unless it names another: ECR, as the worker's AWS identity sees it. */
export const DEFAULT_REGISTRY = 'ecr';

export interface ImageLocation {
  registry: string;
  repository: string;
}

/** Where an app's images are built (and looked for), where clusters pull them, and what the pipeline writes. */
export interface ImageConfig {
  /** The registry the app's builds push to: the pipeline looks for images (and their digests) here. */
  built: ImageLocation;
  /** A pull-through cache of `built` that clusters pull from; it holds an image only once something pulled it. */
  cache?: ImageLocation;
  /** Where the `deployed-to-<env>` tags go: where the team looks for them. */
  deployedToTags: ImageLocation;
  /** Write the image's digest beside its tag in the image-tag file (`image_digest`), for charts that pull by digest. */
  writeDigest: boolean;
}

export interface AppConfig {
  name: string;
  repo: string;
  /** The repository in the registry images are built to (`image.built.repository`). */
  imageRepository: string;
  image: ImageConfig;
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
  promotion: PromotionRule;
  /** Where a release is not promoted: wait for approval there, or end, the next environment deployed by hand. */
  unpromoted: 'approval' | 'deployByHand';
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
  /** Every registry an app may name; `ecr` is always there. */
  registries: Map<string, RegistryConfig>;
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

const { suite: smokeSuiteSchema, argoWorkflows: argoWorkflowsSchema } = suiteSchemas(duration);

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

const argocdSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  tokenVariable: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,99}$/, 'must be an environment variable name such as ARGOCD_TOKEN_STAGING').optional(),
  appOfApps: z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'must be a Kubernetes resource name').optional(),
});

const environmentSchema = z.strictObject({
  argocd: argocdSchema.optional(),
  continuousDeployment: z.boolean().optional(),
  allowSelfApproval: z.boolean().optional(),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  deployWindows: z.array(deployWindowSchema).default([]),
  argocdApplication: z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, 'must be a Kubernetes resource name').optional(),
  smokeChecks: z.array(smokeCheckSchema).default([]),
  smokeSuites: z.array(smokeSuiteSchema).default([]),
  argoWorkflows: argoWorkflowsSchema.optional(),
  smokeAttempts: z.number().int().min(1).max(20).default(3),
  smokeRetryInterval: duration.default(2000),
  syncTimeout: positiveDuration.default(15 * 60_000),
  approvers: peopleList.optional(),
  deployers: peopleList.optional(),
  approval: approvalSchema.omit({ approvers: true, deployers: true }).optional(),
});

const repositoryName = z.string().regex(/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/, 'must be an image repository name');
const environmentVariable = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be the name of an environment variable, such as GHCR_TOKEN');
/** The names the worker's log redaction treats as secret (worker/logging.ts): a password's value never reaches a log. */
const secretVariable = environmentVariable.regex(/TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|CREDENTIAL/i, 'must name a variable the worker treats as secret: its name holds TOKEN, SECRET or PASSWORD');

const registrySchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ecr'), registryId: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account ID').optional() }),
  z
    .strictObject({
      type: z.literal('oci'),
      url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
      usernameEnv: environmentVariable.optional(),
      passwordEnv: secretVariable.optional(),
    })
    .refine((r) => (r.usernameEnv === undefined) === (r.passwordEnv === undefined), 'name both usernameEnv and passwordEnv, or neither'),
]);

const imageLocationSchema = z.strictObject({ registry: z.string().min(1), repository: repositoryName });

const imageSchema = z.strictObject({
  registry: z.string().min(1).default(DEFAULT_REGISTRY),
  cache: imageLocationSchema.optional(),
  deployedToTags: z.enum(['registry', 'cache']).default('registry'),
  writeDigest: z.boolean().default(false),
});

const appSchema = z.strictObject({
  repo: named(validateRepo),
  imageRepository: repositoryName.optional(),
  image: imageSchema.optional(),
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
  promotion: z.enum(['catalogue', 'chartsFlags']).optional(),
  unpromoted: z.enum(['approval', 'deployByHand']).optional(),
  environments: z.record(named(validateEnvironmentName), environmentSchema.nullable()).optional(),
});

/** What an app's own entry may leave out when the defaults say it: its repository, as a pattern such as `alphagov/{app}`. */
const appWithDefaultRepoSchema = appSchema.extend({ repo: named(validateRepo).optional() });

const catalogueSchema = z.strictObject({
  defaults: z
    .strictObject({
      /** Names in order, or names with the settings every app has there (`{app}` in a string stands for the app's name). */
      environments: z
        .union([z.array(named(validateEnvironmentName)).min(1), z.record(named(validateEnvironmentName), z.record(z.string(), z.unknown()).nullable())])
        .optional(),
      repo: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9_.{}-]{1,100}$/, 'must be owner/name, such as alphagov/{app}').optional(),
      promotion: z.enum(['catalogue', 'chartsFlags']).optional(),
      unpromoted: z.enum(['approval', 'deployByHand']).optional(),
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
  registries: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a registry name such as ghcr'), registrySchema).optional(),
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
  const environmentDefaults: Record<string, Record<string, unknown>> = Array.isArray(defaults.environments)
    ? Object.fromEntries(defaults.environments.map((env) => [env, {}]))
    : Object.fromEntries(Object.entries(defaults.environments ?? Object.fromEntries(DEFAULT_ENVIRONMENTS.map((env) => [env, {}]))).map(([env, body]) => [env, body ?? {}]));
  const registries = new Map<string, RegistryConfig>([[DEFAULT_REGISTRY, { name: DEFAULT_REGISTRY, type: 'ecr' }]]);
  for (const [name, registry] of Object.entries(top.data.registries ?? {})) registries.set(name, { name, ...registry });
  const apps = new Map<string, AppConfig>();
  for (const [name, body] of Object.entries(top.data.apps)) {
    const entry = withAppDefaults(name, body ?? {}, defaults.repo, environmentDefaults);
    const parsed = (defaults.repo ? appWithDefaultRepoSchema : appSchema).safeParse(entry);
    if (!parsed.success) {
      const { path, message } = firstIssue(parsed.error);
      throw new CatalogueError(`${file}: app "${name}": ${path ? `field "${path}"` : 'entry'}: ${message}`);
    }
    const app = { ...parsed.data, repo: parsed.data.repo ?? '' };
    const imageRepository = app.imageRepository ?? name;
    const image = imageConfig(app.image ?? imageSchema.parse({}), imageRepository, registries, (problem) => new CatalogueError(`${file}: app "${name}": ${problem}`));
    const environmentEntries: [string, z.infer<typeof environmentSchema> | null][] = Object.entries(app.environments ?? {});
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
      if (env.smokeSuites.some((suite) => suite.kind === 'argoWorkflow') && !env.argoWorkflows) {
        const first = env.smokeSuites.findIndex((suite) => suite.kind === 'argoWorkflow');
        throw new CatalogueError(
          `${file}: app "${name}": field "environments.${envName}.smokeSuites[${first}]": an argoWorkflow suite needs the cluster's Argo Workflows: set environments.${envName}.argoWorkflows.url`,
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
        argocd: withoutUndefined({ url: env.argocd?.url?.replace(/\/+$/, ''), tokenVariable: env.argocd?.tokenVariable, appOfApps: env.argocd?.appOfApps }),
        argocdApplication: env.argocdApplication ?? `${name}-${envName}`,
        url: env.url,
        smokeChecks: env.smokeChecks.map((check) => ({
          name: check.name,
          url: check.url,
          expectStatus: check.expectStatus,
          expectBodyContains: check.expectBodyContains,
          timeoutMs: check.timeout,
        })),
        smokeSuites: smokeSuitesOf(env.smokeSuites, app.repo),
        ...(env.argoWorkflows
          ? {
              argoWorkflows: {
                url: env.argoWorkflows.url.replace(/\/+$/, ''),
                tokenVariable: env.argoWorkflows.tokenVariable ?? DEFAULT_ARGO_WORKFLOWS_TOKEN_VARIABLE,
                namespace: env.argoWorkflows.namespace,
              },
            }
          : {}),
        smokeAttempts: env.smokeAttempts,
        smokeRetryIntervalMs: env.smokeRetryInterval,
        syncTimeoutMs: env.syncTimeout,
        approvers: approvers ?? [ANYONE],
      };
    });
    apps.set(name, {
      name,
      repo: app.repo,
      imageRepository,
      image,
      tagScheme: app.tagScheme,
      releaseTagPattern: app.releaseTagPattern,
      build: { workflow: app.build.workflow, ref: app.build.ref, timeoutMs: app.build.timeout },
      approvalTimeoutMs: app.approvalTimeout ?? defaults.approvalTimeout ?? 7 * 24 * 3_600_000,
      onDivergence: app.onDivergence,
      queue: app.queue,
      mainBranch: app.mainBranch,
      promotion: app.promotion ?? defaults.promotion ?? 'catalogue',
      unpromoted: app.unpromoted ?? defaults.unpromoted ?? 'approval',
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
    registries,
    apps,
  };
}

/**
 * An app's entry with the defaults filled in: the repository pattern, and per environment the defaults' settings
 * under the app's own (key by key); `{app}` in any string of the defaults becomes the app's name.
 */
function withAppDefaults(app: string, body: unknown, repo: string | undefined, environmentDefaults: Record<string, Record<string, unknown>>): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const entry = { ...(body as Record<string, unknown>) };
  if (entry.repo === undefined && repo) entry.repo = repo.replace(/\{app\}/g, app);
  const own = entry.environments;
  if (own !== undefined && (typeof own !== 'object' || own === null || Array.isArray(own))) return entry;
  const names = own ? Object.keys(own) : Object.keys(environmentDefaults);
  entry.environments = Object.fromEntries(
    names.map((env) => {
      const mine = (own as Record<string, unknown> | undefined)?.[env];
      const base = forApp(environmentDefaults[env] ?? {}, app) as Record<string, unknown>;
      if (mine !== null && mine !== undefined && (typeof mine !== 'object' || Array.isArray(mine))) return [env, mine];
      return [env, { ...base, ...(mine as Record<string, unknown> | null | undefined) }];
    }),
  );
  return entry;
}

function forApp(value: unknown, app: string): unknown {
  if (typeof value === 'string') return value.replace(/\{app\}/g, app);
  if (Array.isArray(value)) return value.map((item) => forApp(item, app));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, forApp(item, app)]));
  return value;
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}

function imageConfig(
  image: z.infer<typeof imageSchema>,
  repository: string,
  registries: Map<string, RegistryConfig>,
  refuse: (problem: string) => CatalogueError,
): ImageConfig {
  for (const [field, registry] of [['image.registry', image.registry], ['image.cache.registry', image.cache?.registry]] as const) {
    if (registry !== undefined && !registries.has(registry)) {
      throw refuse(`field "${field}": no registry "${registry}" in the catalogue's registries (${[...registries.keys()].join(', ')})`);
    }
  }
  const built = { registry: image.registry, repository };
  if (image.deployedToTags === 'cache' && !image.cache) throw refuse('field "image.deployedToTags": "cache" needs an image.cache');
  return {
    built,
    cache: image.cache,
    deployedToTags: image.deployedToTags === 'cache' ? image.cache! : built,
    writeDigest: image.writeDigest,
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
