/**
 * docker-compose.yml, the Dockerfile and docs/production.md against the code: the same task queue, search
 * attributes, environment variables and metrics port. No container engine runs here, so the images are never
 * built or started; what can run does: `docker-compose config`, and the admin-tools registration script against
 * the jest run's Temporal dev server.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import path from 'node:path';
import { SearchAttributeType } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_SLACK_API_URL, loadWorkerSettings, SettingsError } from '../common/settings';
import { findTemporalCli } from '../harness/temporal-cli';
import { DEFAULT_BUNDLE_PATH } from '../worker/bundle-workflows';
import { WORKER_NODE_FLAGS, WORKER_PROCESS_ENV } from '../worker/process-env';
import { DEFAULT_METRICS_PORT } from '../worker/telemetry';
import { DEFAULT_TASK_QUEUE, SEARCH_ATTRIBUTES } from '../workflows/definitions';
import { connectClient, testAddress } from './support/temporal';

const ROOT = path.resolve(__dirname, '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile?: string };
  environment?: Record<string, string | null> | string[];
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  volumes?: string[];
  command?: string[];
  healthcheck?: { test: string[] };
}

const compose = parseYaml(read('docker-compose.yml')) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
const service = (name: string): ComposeService => {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
};

/** A service's environment as written: name → value, `undefined` for a bare name (passed through from the host). */
function environmentOf(name: string): Map<string, string | undefined> {
  const env = service(name).environment ?? {};
  if (Array.isArray(env)) {
    return new Map(env.map((entry) => {
      const at = entry.indexOf('=');
      return at < 0 ? [entry, undefined] : [entry.slice(0, at), entry.slice(at + 1)];
    }));
  }
  return new Map(Object.entries(env).map(([key, value]) => [key, value === null ? undefined : String(value)]));
}

/** The value compose gives `${NAME:-default}` when the host leaves NAME unset. */
function composeDefault(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1');
}

/**
 * The script a one-shot job runs: its entrypoint names a file the job mounts from this repository, so the
 * container and the tests (and anyone running Temporal without containers) run the same file.
 */
function scriptOf(name: string): string {
  const svc = service(name) as ComposeService & { entrypoint?: string[] };
  const inContainer = svc.entrypoint?.[1];
  const mount = (svc.volumes ?? []).map((volume) => volume.split(':')).find(([, target]) => target === inContainer);
  if (!inContainer || !mount) throw new Error(`service "${name}" does not run a script mounted from this repository`);
  return path.join(ROOT, mount[0]!);
}

/** Environment variable names that the worker's own code reads (`env.NAME` or `…(env, 'NAME', …)`). */
function envNamesReadBy(file: string): string[] {
  return [...new Set([...read(file).matchAll(/\benv\.([A-Z][A-Z0-9_]+)|\(env, '([A-Z][A-Z0-9_]+)'/g)].map((m) => (m[1] ?? m[2])!))];
}

/** The settings a worker cannot start without, in the words of its own start-up check. */
function requiredSettings(): string[] {
  try {
    loadWorkerSettings({});
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    return [...err.message.matchAll(/^\s*- ([A-Z][A-Z0-9_]+) is not set/gm)].map((m) => m[1]!);
  }
  throw new Error('loadWorkerSettings({}) accepted an empty environment');
}

const WORKER_ENV_FILES = ['common/settings.ts', 'worker/telemetry.ts'];
/** Read by libraries through their own conventions: the SDK's environment configuration and the AWS SDK's chain. */
const LIBRARY_ENV = /^(TEMPORAL_|AWS_)/;
const SECRETS = ['GITHUB_TOKEN', 'ARGOCD_TOKEN', 'RELEASE_TOKEN', 'SLACK_BOT_TOKEN', 'SLACK_WEBHOOK_URL', 'TEMPORAL_API_KEY', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'];

function onPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    try {
      accessSync(path.join(dir, binary), constants.X_OK);
      return path.join(dir, binary);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

const dockerCompose = onPath('docker-compose');
if (!dockerCompose && !process.env.CI) {
  console.warn('docker-compose is not installed here: the `docker-compose config` checks are skipped (CI installs it: .ci/run)');
}
const withCompose = dockerCompose || process.env.CI ? it : it.skip;

describe('docker-compose.yml', () => {
  withCompose('is valid for docker-compose, and takes every secret from the host environment', () => {
    if (!dockerCompose) throw new Error('docker-compose is not installed: .ci/run installs it before the tests');
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT };
    execFileSync(dockerCompose, ['config', '-q'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });

    const fromHost = Object.fromEntries(SECRETS.map((name) => [name, `host-${name.toLowerCase()}-${randomBytes(4).toString('hex')}`]));
    const resolved = parseYaml(execFileSync(dockerCompose, ['config'], { cwd: ROOT, env: { ...env, ...fromHost }, encoding: 'utf8' })) as {
      services: Record<string, { environment: Record<string, string | null> }>;
    };
    const workerEnv = resolved.services['deploy-worker']!.environment;
    for (const name of SECRETS) expect({ name, value: workerEnv[name] }).toEqual({ name, value: fromHost[name] });
  });

  it('writes no secret: the worker passes each one through by name alone', () => {
    const env = environmentOf('deploy-worker');
    for (const name of SECRETS) expect({ name, passedThrough: env.has(name) && env.get(name) === undefined }).toEqual({ name, passedThrough: true });
    const text = read('docker-compose.yml');
    expect(text).not.toMatch(/gh[pousr]_[A-Za-z0-9]{10,}|AKIA[0-9A-Z]{16}/);
  });

  it('runs Temporal on PostgreSQL, with its Web UI and admin tools', () => {
    expect(service('postgresql').image).toMatch(/^postgres:/);
    expect(service('temporal').image).toMatch(/^temporalio\/server:/);
    expect(composeDefault(environmentOf('temporal').get('DB'))).toBe('postgres12');
    expect(environmentOf('temporal').get('POSTGRES_SEEDS')).toBe('postgresql');
    expect(service('temporal').depends_on).toEqual({ 'temporal-schema': { condition: 'service_completed_successfully' } });
    expect(service('temporal-schema').image).toMatch(/^temporalio\/admin-tools:/);
    expect(service('temporal-admin-tools').image).toMatch(/^temporalio\/admin-tools:/);
    expect(service('temporal-ui').image).toMatch(/^temporalio\/ui:/);
    // The worker starts once the search attributes it writes exist.
    expect(service('deploy-worker').depends_on).toEqual({ 'temporal-admin-tools': { condition: 'service_completed_successfully' } });
  });

  it('registers exactly the search attributes of workflows/definitions.ts, as Keyword', () => {
    expect(SEARCH_ATTRIBUTES.every((key) => key.type === SearchAttributeType.KEYWORD)).toBe(true);
    const registered = environmentOf('temporal-admin-tools').get('DEPLOY_SEARCH_ATTRIBUTES')?.split(/\s+/);
    expect(registered).toEqual(SEARCH_ATTRIBUTES.map((key) => key.name));
    expect(readFileSync(scriptOf('temporal-admin-tools'), 'utf8')).toContain('--type Keyword');
  });

  it('runs the schema and registration jobs from scripts/, the files the tests and docs/production.md run too', () => {
    expect(path.relative(ROOT, scriptOf('temporal-schema'))).toBe('scripts/temporal-schema.sh');
    expect(path.relative(ROOT, scriptOf('temporal-admin-tools'))).toBe('scripts/register-search-attributes.sh');
    expect(readFileSync(scriptOf('temporal-schema'), 'utf8')).toContain('update-schema -d "$schema/visibility/versioned"');
  });

  it('runs the worker built from the Dockerfile with the code defaults: task queue, Slack API, metrics port', () => {
    const worker = service('deploy-worker');
    expect(worker.build?.context).toBe('.');
    expect(worker.build?.dockerfile ?? 'Dockerfile').toBe('Dockerfile');
    const env = environmentOf('deploy-worker');

    expect(composeDefault(env.get('DEPLOY_TASK_QUEUE'))).toBe(DEFAULT_TASK_QUEUE);
    expect(loadWorkerSettings({ GITHUB_TOKEN: 't', ARGOCD_URL: 'http://a', ARGOCD_TOKEN: 't', RELEASE_URL: 'http://r', RELEASE_TOKEN: 't', CHARTS_REPO_URL: 'x' }).taskQueue).toBe(DEFAULT_TASK_QUEUE);

    expect(composeDefault(env.get('SLACK_API_URL'))).toBe(DEFAULT_SLACK_API_URL);
    expect(env.get('DEPLOY_METRICS_ADDRESS')).toBe(`0.0.0.0:${DEFAULT_METRICS_PORT}`);
    expect(worker.ports?.some((port) => port.endsWith(`:${DEFAULT_METRICS_PORT}`))).toBe(true);
  });

  it("gives the worker every setting it requires, and only settings something reads", () => {
    const env = environmentOf('deploy-worker');
    const required = requiredSettings();
    expect(required).toEqual(expect.arrayContaining(['GITHUB_TOKEN', 'ARGOCD_URL', 'ARGOCD_TOKEN', 'RELEASE_URL', 'RELEASE_TOKEN', 'CHARTS_REPO_URL']));
    for (const name of [...required, 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_API_KEY', 'DEPLOY_TASK_QUEUE', 'DEPLOY_CATALOGUE', 'DEPLOY_METRICS_ADDRESS']) {
      expect({ name, given: env.has(name) }).toEqual({ name, given: true });
    }
    const readByCode = new Set(WORKER_ENV_FILES.flatMap(envNamesReadBy));
    for (const name of env.keys()) expect({ name, read: readByCode.has(name) || LIBRARY_ENV.test(name) }).toEqual({ name, read: true });
  });

  it("mounts the catalogue where the worker's settings point, and gives each replica its own charts clone", () => {
    const env = environmentOf('deploy-worker');
    const targets = (service('deploy-worker').volumes ?? []).map((volume) => composeDefault(volume)!.split(':')[1]!);
    const mountedAt = (file: string | undefined) => targets.some((target) => file !== undefined && file.startsWith(`${target}/`));
    expect(mountedAt(composeDefault(env.get('DEPLOY_CATALOGUE')))).toBe(true);
    // The charts adapter assumes one process per clone: a shared volume would break `--scale deploy-worker=N`.
    expect(mountedAt(env.get('CHARTS_WORKDIR'))).toBe(false);
    expect(env.get('CHARTS_WORKDIR')).toMatch(/^\/app\/\.data\//);
    expect(Object.keys(compose.volumes)).toEqual(['temporal-db']);
  });

  it('publishes host ports on the loopback interface only', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const port of svc.ports ?? []) expect({ name, port }).toEqual({ name, port: expect.stringMatching(/^127\.0\.0\.1:/) });
    }
  });
});

describe("the admin-tools job's registration script", () => {
  const script = scriptOf('temporal-admin-tools');
  const namespace = `shape-${randomBytes(4).toString('hex')}`;
  let cliDir: string;

  beforeAll(async () => {
    cliDir = path.dirname(await findTemporalCli());
  });

  function runScript(attributes: string) {
    const admin = environmentOf('temporal-admin-tools');
    return spawnSync('sh', [script], {
      encoding: 'utf8',
      timeout: 120_000,
      env: {
        PATH: `${cliDir}${path.delimiter}${process.env.PATH ?? ''}`,
        HOME: process.env.HOME ?? ROOT,
        TEMPORAL_ADDRESS: testAddress(),
        TEMPORAL_NAMESPACE: namespace,
        TEMPORAL_NAMESPACE_RETENTION: composeDefault(admin.get('TEMPORAL_NAMESPACE_RETENTION')),
        DEPLOY_SEARCH_ATTRIBUTES: attributes,
      },
    });
  }

  async function keywordAttributes(): Promise<string[]> {
    const client = await connectClient();
    try {
      const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace });
      // IndexedValueType 2 is KEYWORD.
      return Object.entries(customAttributes ?? {}).filter(([, type]) => Number(type) === 2).map(([name]) => name).sort();
    } finally {
      await client.connection.close();
    }
  }

  it('creates the namespace and the search attributes, and succeeds again when they exist', async () => {
    const attributes = environmentOf('temporal-admin-tools').get('DEPLOY_SEARCH_ATTRIBUTES')!;
    const first = runScript(attributes);
    expect({ status: first.status, stderr: first.stderr }).toEqual({ status: 0, stderr: '' });
    expect(await keywordAttributes()).toEqual(expect.arrayContaining(SEARCH_ATTRIBUTES.map((key) => key.name)));

    const again = runScript(attributes);
    expect({ status: again.status, stderr: again.stderr }).toEqual({ status: 0, stderr: '' });
    for (const key of SEARCH_ATTRIBUTES) expect(again.stdout).toContain(`search attribute ${key.name} (Keyword) is registered in namespace ${namespace}`);
  });

  it('fails at once on an attribute that exists with another type', () => {
    const created = spawnSync(path.join(cliDir, 'temporal'), ['operator', 'search-attribute', 'create', '--name', 'ShapeConflict', '--type', 'Text', '--namespace', namespace, '--address', testAddress()], { encoding: 'utf8' });
    expect(created.status).toBe(0);
    const started = Date.now();
    const conflict = runScript('ShapeConflict');
    expect(conflict.status).toBe(1);
    expect(conflict.stderr).toContain('different type');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('Dockerfile', () => {
  /** Instructions with their continuation lines joined, comments dropped. */
  const instructions = read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const [keyword = '', ...rest] = line.split(/\s+/);
      return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    });
  const stageStarts = instructions.flatMap((instruction, index) => (instruction.keyword === 'FROM' ? [index] : []));
  const stage = (name: string) => {
    const start = stageStarts.find((index) => new RegExp(`\\bAS ${name}$`, 'i').test(instructions[index]!.args));
    if (start === undefined) throw new Error(`the Dockerfile has no stage "${name}"`);
    const end = stageStarts.find((index) => index > start) ?? instructions.length;
    return instructions.slice(start, end);
  };
  const args = (list: typeof instructions, keyword: string) => list.filter((i) => i.keyword === keyword).map((i) => i.args);
  const packageJson = JSON.parse(read('package.json')) as { scripts: Record<string, string>; bin: Record<string, string> };

  it('builds on a small Node 20 base', () => {
    expect(read('Dockerfile')).toMatch(/^ARG NODE_IMAGE=node:20(\.\d+)*-bookworm-slim$/m);
    expect(args(instructions, 'FROM').every((from) => from.startsWith('${NODE_IMAGE} AS '))).toBe(true);
  });

  it('compiles and prebundles the workflows in the build stage, as `npm run build` does', () => {
    const run = args(stage('build'), 'RUN').join('\n');
    expect(run).toMatch(/\bnpm ci\b/);
    expect(run).toMatch(/\bnpm run build\b/);
    expect(packageJson.scripts.build).toContain('bundle-workflows');
    // The worker's default bundle path: beside its compiled folders, so dist/workflow-bundle.js in the image.
    expect(path.relative(ROOT, DEFAULT_BUNDLE_PATH)).toBe('workflow-bundle.js');
    expect(run).toContain('dist/workflow-bundle.js');
  });

  it('ships production dependencies, the compiled code and git, and runs the worker as a non-root user', () => {
    const runtime = stage('runtime');
    const run = args(runtime, 'RUN').join('\n');
    expect(run).toMatch(/\bnpm ci --omit=dev\b/);
    expect(run).toMatch(/apt-get install[^\n]*\bgit\b/);
    expect(args(runtime, 'COPY')).toContain('--from=build /app/dist ./dist');
    const users = args(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    expect(JSON.parse(args(runtime, 'CMD').at(-1)!).join(' ')).toBe(packageJson.scripts.worker);
    expect(args(runtime, 'HEALTHCHECK')).toHaveLength(1);
    expect(args(runtime, 'EXPOSE')).toEqual([String(DEFAULT_METRICS_PORT)]);
    expect(args(runtime, 'ENV').join(' ')).toContain(`DEPLOY_METRICS_ADDRESS=0.0.0.0:${DEFAULT_METRICS_PORT}`);
    // The process environment the benchmark measured the worker with.
    for (const [name, value] of Object.entries(WORKER_PROCESS_ENV)) expect(args(runtime, 'ENV').join(' ').split(/\s+/)).toContain(`${name}=${value}`);
    const command = JSON.parse(args(runtime, 'CMD').at(-1)!) as string[];
    expect(command.slice(1, 1 + WORKER_NODE_FLAGS.length)).toEqual(WORKER_NODE_FLAGS);
    expect(run).toContain(`chmod +x ${packageJson.bin.deploy}`);
    // Writable by the worker: its charts clone (CHARTS_WORKDIR in docker-compose.yml) lives there.
    expect(run).toMatch(/mkdir -p \/app\/\.data && chown 1000:1000 \/app\/\.data/);
  });

  it('keeps dependencies, build output and secrets out of the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((line) => line.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git', '.cache', '.env', '.env.*']));
  });
});

describe('docs/production.md', () => {
  it('documents every environment variable the worker reads', () => {
    const doc = read('docs/production.md');
    const names = new Set([...WORKER_ENV_FILES.flatMap(envNamesReadBy), 'TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_API_KEY']);
    for (const name of names) expect({ name, documented: doc.includes(`\`${name}\``) }).toEqual({ name, documented: true });
  });
});
