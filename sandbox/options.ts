import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { named } from '../common/catalogue';
import { parseDuration } from '../common/duration';
import { validateAppName, validateApprover, validateEnvironmentName } from '../common/names';
import type { StackAppSpec } from './stack';

/** The sandbox's settings: command-line flags first, then SANDBOX_* environment variables, then defaults. */

export class SandboxOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxOptionsError';
  }
}

export type EcrMode = 'auto' | 'moto' | 'simulator';

export interface SandboxPorts {
  temporal: number;
  ui: number;
  release: number;
  github: number;
  argo: number;
  endpoints: number;
  ecr: number;
}

export interface SandboxDelays {
  /** From a new charts commit until Argo CD's sync succeeds. */
  syncMs: number;
  /** From a successful sync until the rollout is Healthy. */
  rolloutMs: number;
  /** How long each smoke check's endpoint takes to answer. */
  smokeMs: number;
  /** How long a dispatched image build takes. */
  buildMs: number;
}

export interface SandboxOptions {
  dataDir: string;
  ports: SandboxPorts;
  delays: SandboxDelays;
  ecr: EcrMode;
  appsFile: string;
  apps: Record<string, StackAppSpec>;
  /** On the first start, merge a commit to each app and start its pipeline. */
  samples: boolean;
}

interface PortSetting {
  key: keyof SandboxPorts;
  flag: string;
  env: string;
  default: number;
  what: string;
}

export const PORT_SETTINGS: PortSetting[] = [
  { key: 'temporal', flag: 'temporal-port', env: 'SANDBOX_TEMPORAL_PORT', default: 7233, what: 'Temporal frontend (gRPC)' },
  { key: 'ui', flag: 'ui-port', env: 'SANDBOX_UI_PORT', default: 8233, what: 'Temporal Web UI' },
  { key: 'release', flag: 'release-port', env: 'SANDBOX_RELEASE_PORT', default: 8240, what: 'release app simulator' },
  { key: 'github', flag: 'github-port', env: 'SANDBOX_GITHUB_PORT', default: 8241, what: 'GitHub simulator' },
  { key: 'argo', flag: 'argocd-port', env: 'SANDBOX_ARGOCD_PORT', default: 8242, what: 'Argo CD simulator' },
  { key: 'endpoints', flag: 'endpoints-port', env: 'SANDBOX_ENDPOINTS_PORT', default: 8243, what: 'app endpoints simulator' },
  { key: 'ecr', flag: 'ecr-port', env: 'SANDBOX_ECR_PORT', default: 8244, what: 'ECR (moto or its simulator)' },
];

interface DelaySetting {
  key: keyof SandboxDelays;
  flag: string;
  env: string;
  default: string;
  what: string;
}

const DELAY_SETTINGS: DelaySetting[] = [
  { key: 'syncMs', flag: 'sync-delay', env: 'SANDBOX_SYNC_DELAY', default: '2s', what: 'Argo CD sync' },
  { key: 'rolloutMs', flag: 'rollout-delay', env: 'SANDBOX_ROLLOUT_DELAY', default: '2s', what: 'rollout until Healthy' },
  { key: 'smokeMs', flag: 'smoke-delay', env: 'SANDBOX_SMOKE_DELAY', default: '500ms', what: 'smoke check answer' },
  { key: 'buildMs', flag: 'build-delay', env: 'SANDBOX_BUILD_DELAY', default: '3s', what: 'image build' },
];

/** The sandbox writes smoke checks with this timeout; a slower simulated answer would fail every check. */
export const SMOKE_CHECK_TIMEOUT_MS = 2000;

export const DEFAULT_DATA_DIR = '.data/sandbox';
export const DEFAULT_APPS_FILE = 'config/sandbox-apps.yaml';

export const USAGE = `usage: npm start -- [options]     (or: node dist/sandbox/main.js [options])

The whole GitOps platform on loopback: Temporal dev server and Web UI, the worker, and simulators
of GitHub, Argo CD, the release app, the apps' endpoints and ECR, with a real Helm-charts git repo.

options (each also as an environment variable, shown in brackets):
  --data-dir DIR         where everything is kept between runs [SANDBOX_DATA_DIR] (default ${DEFAULT_DATA_DIR})
  --apps FILE            the sample apps [SANDBOX_APPS] (default ${DEFAULT_APPS_FILE})
  --no-samples           do not merge a commit and start a pipeline per app on the first start
  --ecr MODE             auto | moto | simulator [SANDBOX_ECR] (default auto: moto's server where installed)
${PORT_SETTINGS.map((p) => `  --${`${p.flag} N`.padEnd(21)}${p.what} [${p.env}] (default ${p.default})`).join('\n')}
${DELAY_SETTINGS.map((d) => `  --${`${d.flag} TIME`.padEnd(21)}${d.what} [${d.env}] (default ${d.default})`).join('\n')}
  --delays TIME          every simulated delay at once, e.g. 0 for the benchmark [SANDBOX_DELAYS]
  -h, --help             this text

TIME is 250ms, 2s, 1m or plain milliseconds.`;

const FLAGS = {
  'data-dir': { type: 'string' },
  apps: { type: 'string' },
  'no-samples': { type: 'boolean' },
  ecr: { type: 'string' },
  delays: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  ...Object.fromEntries(PORT_SETTINGS.map((p) => [p.flag, { type: 'string' }])),
  ...Object.fromEntries(DELAY_SETTINGS.map((d) => [d.flag, { type: 'string' }])),
} as const;

export type ParsedCommandLine = { help: true } | { help: false; options: SandboxOptions };

export function parseSandboxOptions(argv: string[], env: Record<string, string | undefined>, cwd = process.cwd()): ParsedCommandLine {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: FLAGS as ParseArgsConfig['options'], strict: true, allowPositionals: false }) as {
      values: Record<string, string | boolean | undefined>;
    });
  } catch (err) {
    throw new SandboxOptionsError(`${(err as Error).message} (--help lists the options)`);
  }
  if (values.help) return { help: true };
  const setting = (flag: string, name: string): string | undefined => {
    const value = values[flag];
    if (typeof value === 'string') return value;
    const fromEnv = env[name]?.trim();
    return fromEnv ? fromEnv : undefined;
  };

  const problems: string[] = [];
  const ports = {} as SandboxPorts;
  for (const p of PORT_SETTINGS) {
    const raw = setting(p.flag, p.env);
    const port = raw === undefined ? p.default : Number(raw);
    if (!Number.isInteger(port) || port < 1 || port > 65535) problems.push(`--${p.flag} (${p.env}) must be a port number from 1 to 65535, not "${raw}"`);
    ports[p.key] = port;
  }
  const taken = new Map<number, string>();
  for (const p of PORT_SETTINGS) {
    const other = taken.get(ports[p.key]);
    if (other) problems.push(`the ${p.what} and the ${other} cannot both use port ${ports[p.key]}`);
    taken.set(ports[p.key], p.what);
  }

  const allDelays = setting('delays', 'SANDBOX_DELAYS');
  const delays = {} as SandboxDelays;
  for (const d of DELAY_SETTINGS) {
    const raw = setting(d.flag, d.env) ?? allDelays ?? d.default;
    try {
      delays[d.key] = parseDuration(/^\d+$/.test(raw) ? Number(raw) : raw);
    } catch (err) {
      problems.push(`--${d.flag} (${d.env}): ${(err as Error).message}`);
    }
  }
  if (delays.smokeMs >= SMOKE_CHECK_TIMEOUT_MS) {
    problems.push(`--smoke-delay must stay under the smoke checks' ${SMOKE_CHECK_TIMEOUT_MS}ms timeout, or every check fails`);
  }

  const ecr = (setting('ecr', 'SANDBOX_ECR') ?? 'auto') as EcrMode;
  if (!['auto', 'moto', 'simulator'].includes(ecr)) problems.push(`--ecr (SANDBOX_ECR) is auto, moto or simulator, not "${ecr}"`);

  if (problems.length > 0) throw new SandboxOptionsError(`the sandbox's settings are wrong:\n  - ${problems.join('\n  - ')}`);

  const appsFile = resolve(cwd, setting('apps', 'SANDBOX_APPS') ?? DEFAULT_APPS_FILE);
  return {
    help: false,
    options: {
      dataDir: resolve(cwd, setting('data-dir', 'SANDBOX_DATA_DIR') ?? DEFAULT_DATA_DIR),
      ports,
      delays,
      ecr,
      appsFile,
      apps: loadSandboxApps(appsFile),
      samples: values['no-samples'] !== true,
    },
  };
}

const duration = z
  .union([z.string(), z.number().int().nonnegative()])
  .superRefine((value, ctx) => {
    try {
      parseDuration(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  })
  .transform((value) => (typeof value === 'number' ? `${value}ms` : value));

const appsSchema = z.strictObject({
  apps: z
    .record(
      z.string(),
      z.strictObject({
        environments: z
          .record(
            z.string(),
            z
              .strictObject({
                continuousDeployment: z.boolean().optional(),
                approvers: z.array(named(validateApprover)).optional(),
                identity: z.enum(['verified', 'claimed']).optional(),
                syncTimeout: duration.optional(),
                smokeAttempts: z.number().int().min(1).max(20).optional(),
                smokeSuite: z.enum(['argoWorkflow', 'githubWorkflow']).optional(),
              })
              .nullable()
              .transform((value) => value ?? {}),
          )
          .optional(),
        approvalTimeout: duration.optional(),
        buildTimeout: duration.optional(),
        tagScheme: z.enum(['sha', 'short-sha']).optional(),
        promotion: z.enum(['catalogue', 'chartsFlags']).optional(),
      }),
    )
    .refine((apps) => Object.keys(apps).length > 0, 'name at least one app'),
});

function problemOf(validate: (value: unknown) => string, value: string): string | undefined {
  try {
    validate(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The sample apps, validated with messages that name the file, the app and the field. */
export function loadSandboxApps(file: string): Record<string, StackAppSpec> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SandboxOptionsError(`cannot read the sandbox's apps file ${file}: ${(err as Error).message}`);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    throw new SandboxOptionsError(`${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = appsSchema.safeParse(document);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(top level)'}: ${issue.message}`);
    throw new SandboxOptionsError(`${file} is not a valid sandbox apps file:\n  - ${problems.join('\n  - ')}`);
  }
  // Checked here rather than in the schema, whose message for a bad record key does not say what is wrong.
  const problems: string[] = [];
  for (const [name, app] of Object.entries(parsed.data.apps)) {
    const nameProblem = problemOf(validateAppName, name);
    if (nameProblem) problems.push(`apps.${name}: ${nameProblem}`);
    for (const environment of Object.keys(app.environments ?? {})) {
      const environmentProblem = problemOf(validateEnvironmentName, environment);
      if (environmentProblem) problems.push(`apps.${name}.environments.${environment}: ${environmentProblem}`);
    }
  }
  if (problems.length > 0) throw new SandboxOptionsError(`${file} is not a valid sandbox apps file:\n  - ${problems.join('\n  - ')}`);
  const apps: Record<string, StackAppSpec> = {};
  for (const [name, app] of Object.entries(parsed.data.apps)) {
    apps[name] = {
      ...(app.environments ? { environments: app.environments } : {}),
      ...(app.approvalTimeout !== undefined ? { approvalTimeout: app.approvalTimeout } : {}),
      ...(app.buildTimeout !== undefined ? { buildTimeout: app.buildTimeout } : {}),
      ...(app.tagScheme ? { tagScheme: app.tagScheme } : {}),
    };
  }
  return apps;
}
