import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { parse as parseYaml } from 'yaml';
import { githubCommitDates, readDeliveryMetrics } from '../client/delivery-records';
import { listPipelines, startPipeline } from '../client/pipelines';
import type { DeployAttempt } from '../common/delivery-metrics';
import { ciWorkflowId, shortSha } from '../common/names';
import { imageTagPath } from '../simulators/charts-repo';
import { pushSyntheticImage } from '../simulators/ecr-images';
import type { PendingApproval } from '../simulators/release-app';
import { DEFAULT_BUNDLE_PATH } from '../worker/bundle-workflows';
import { createDeployWorker } from '../worker/create-worker';
import { DEFAULT_TASK_QUEUE } from '../workflows/definitions';
import { startDevServer, type DevServer } from '../harness/dev-server';
import { ensurePortFree } from '../harness/free-ports';
import { useLocalEcr } from '../harness/moto';
import { findTemporalCli } from '../harness/temporal-cli';
import { startSandboxControl } from './control';
import { startEcr, type SandboxEcr } from './ecr';
import { PORT_SETTINGS, type SandboxOptions } from './options';
import { claimDataDir, leftoverProcesses, SANDBOX_CHILD, SANDBOX_CHILD_GRACE_MS } from './processes';
import { loadState, newCommit, newState, saveState, type SandboxState } from './state';
import { startStack, type Stack } from './stack';

/**
 * Brings the whole platform up on loopback, in an order that lets a second start resume the first:
 * the state of the simulated world is loaded (or created) before anything runs, and everything that
 * does not keep its own state (GitHub, ECR) is rebuilt from it.
 */

export const HOST = '127.0.0.1';
/** How the deploy CLI runs from the project's folder. */
export const DEPLOY_COMMAND = 'npm run deploy --';
export const DEPLOY_ENV_FILE = 'deploy.env';

const execFileAsync = promisify(execFile);
/** The children's logs, and their pid files while they run. */
const TEMPORAL = { log: 'temporal.log', pid: 'temporal.pid' };
const MOTO = { log: 'moto.log', pid: 'moto.pid' };

export interface StartSandboxOptions extends SandboxOptions {
  print: (line: string) => void;
  /** Prebundled workflow code; default: the one `npm run build` writes. */
  workflowBundlePath?: string;
  /** Aborting stops the start-up at the next step and undoes what it started. */
  signal?: AbortSignal;
}

export interface SamplePipeline {
  app: string;
  workflowId: string;
  sha: string;
  /** False when an earlier run of the sandbox started it. */
  startedNow: boolean;
}

export interface Sandbox {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  webUiUrl: string;
  releaseUrl: string;
  /** KEY=VALUE settings for the deploy CLI. */
  deployEnvFile: string;
  deployEnv: Record<string, string>;
  ecr: SandboxEcr;
  stack: Stack;
  client: Client;
  samples: SamplePipeline[];
  pipelineUrl(workflowId: string): string;
  stop(): Promise<void>;
}

export class SandboxAbortedError extends Error {
  constructor() {
    super('the sandbox was stopped while it was starting');
    this.name = 'SandboxAbortedError';
  }
}

/** Things started so far, stopped in reverse order. */
class Resources {
  private readonly stops: Array<{ name: string; stop: () => Promise<void> }> = [];

  add(name: string, stop: () => Promise<void>): void {
    this.stops.push({ name, stop });
  }

  async stopAll(print: (line: string) => void): Promise<void> {
    for (const { name, stop } of this.stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        print(`  could not stop ${name} cleanly: ${(err as Error).message}`);
      }
    }
  }
}

export async function checkPorts(options: SandboxOptions): Promise<void> {
  const leftovers = leftoverProcesses([
    { name: 'the Temporal dev server', pidFile: join(options.dataDir, TEMPORAL.pid), program: 'temporal' },
    { name: "moto's server", pidFile: join(options.dataDir, MOTO.pid), program: 'moto' },
  ]);
  const hint =
    leftovers.length > 0
      ? ` An earlier sandbox on ${displayPath(options.dataDir)} ended without stopping ${leftovers.map((p) => `${p.name} (pid ${p.pid})`).join(' and ')}: stop ${leftovers.length > 1 ? 'them' : 'it'} with "kill ${leftovers.map((p) => p.pid).join(' ')}".`
      : '';
  for (const p of PORT_SETTINGS) {
    const port = options.ports[p.key];
    await ensurePortFree(
      HOST,
      port,
      `port ${port} on ${HOST}, wanted for the ${p.what}, is already in use (another sandbox or Temporal server?). ` +
        `Stop what uses it, or choose another port with --${p.flag} N or ${p.env}=N.${hint}`,
    );
  }
}

export async function startSandbox(options: StartSandboxOptions): Promise<Sandbox> {
  const { print, signal } = options;
  const resources = new Resources();
  const step = () => {
    if (signal?.aborted) throw new SandboxAbortedError();
  };
  try {
    await mkdir(options.dataDir, { recursive: true });
    const releaseDataDir = claimDataDir(options.dataDir);
    resources.add('the data folder', async () => releaseDataDir());
    await checkPorts(options);
    const state = await prepareState(options);
    step();

    const temporal = (async (): Promise<DevServer> => {
      const cliPath = await findTemporalCli({ onSlow: () => print('  (building the temporal CLI with Go; the first build takes a few minutes)') });
      step();
      const server = await startDevServer({
        cliPath,
        dbFile: join(options.dataDir, 'temporal.db'),
        logFile: join(options.dataDir, TEMPORAL.log),
        host: HOST,
        port: options.ports.temporal,
        uiPort: options.ports.ui,
        child: { ...SANDBOX_CHILD, pidFile: join(options.dataDir, TEMPORAL.pid) },
      });
      resources.add('the Temporal dev server', () => server.stop(SANDBOX_CHILD_GRACE_MS));
      print(`  ✓ Temporal dev server   ${server.address}, state in ${displayPath(join(options.dataDir, 'temporal.db'))}`);
      return server;
    })();
    // The release app's page asks Temporal, which may come up after the simulators.
    const clientHolder: { client?: Client } = {};
    const world = (async () => {
      const ecr = await startEcr(options.ecr, HOST, options.ports.ecr, { logFile: join(options.dataDir, MOTO.log), pidFile: join(options.dataDir, MOTO.pid) });
      resources.add('ECR', () => ecr.stop());
      print(`  ✓ ECR                   ${ecr.description}`);
      step();
      const stack = await startWorld(options, state, ecr, () => clientHolder.client);
      resources.add('the simulators', () => stack.close());
      print(`  ✓ simulators            GitHub ${stack.github.url}, Argo CD per environment ${stack.catalogueEnvironments().map((env) => `${env} ${stack.argoOf(env).url}`).join(', ')}, app endpoints ${stack.endpoints.url}`);
      print(`  ✓ charts repo           ${displayPath(stack.charts.bareDir)}`);
      return { ecr, stack };
    })();
    const [temporalResult, worldResult] = await Promise.allSettled([temporal, world]);
    if (temporalResult.status === 'rejected') throw temporalResult.reason;
    if (worldResult.status === 'rejected') throw worldResult.reason;
    const server = temporalResult.value;
    const { ecr, stack } = worldResult.value;
    step();

    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection, namespace: server.namespace });
    clientHolder.client = client;
    resources.add('the Temporal client', () => connection.close());
    await startWorker(options, server, stack, resources);
    print(`  ✓ worker                task queue "${DEFAULT_TASK_QUEUE}", ${stack.catalogue.apps.size} apps`);
    step();

    const deployEnv: Record<string, string> = {
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: server.namespace,
      DEPLOY_TASK_QUEUE: DEFAULT_TASK_QUEUE,
      DEPLOY_CATALOGUE: stack.cataloguePath,
      GITHUB_API_URL: stack.env.GITHUB_API_URL!,
      GITHUB_TOKEN: stack.env.GITHUB_TOKEN!,
      // The sandbox's person: decisions are signed with their key, which the sandbox's GitHub knows.
      DEPLOY_USER: SANDBOX_USER,
      DEPLOY_SIGNING_KEY: await sandboxSigningKey(options.dataDir, stack),
    };
    const deployEnvFile = join(options.dataDir, DEPLOY_ENV_FILE);
    await writeFile(
      deployEnvFile,
      `# The deploy CLI's settings for this sandbox, rewritten on every start (the token is the GitHub simulator's).\n${Object.entries(deployEnv)
        .map(([key, value]) => `${key}=${value}`)
        .join('\n')}\n`,
    );
    await chmod(deployEnvFile, 0o600);

    const webUiUrl = `http://${HOST}:${options.ports.ui}`;
    const pipelineUrl = (workflowId: string) => webUiPipelineUrl(webUiUrl, server.namespace, workflowId);
    const samples = options.samples ? await startSamples(options.dataDir, state, stack, client) : [];
    const control = await startSandboxControl({ dataDir: options.dataDir, host: HOST, state, stack, client, pipelineUrl });
    resources.add('the sandbox control endpoint', () => control.close());
    return {
      temporalAddress: server.address,
      namespace: server.namespace,
      taskQueue: DEFAULT_TASK_QUEUE,
      webUiUrl,
      releaseUrl: `${stack.release.url}/`,
      deployEnvFile,
      deployEnv,
      ecr,
      stack,
      client,
      samples,
      pipelineUrl,
      stop: () => resources.stopAll(print),
    };
  } catch (err) {
    await resources.stopAll(print);
    throw err;
  }
}

/** The state of the simulated world: an earlier run's, or a new one with an initial commit per app. */
async function prepareState(options: SandboxOptions): Promise<SandboxState> {
  let state = await loadState(options.dataDir);
  if (!state) {
    if (existsSync(join(options.dataDir, 'temporal.db'))) {
      throw new Error(
        `${options.dataDir} holds a Temporal database but no sandbox.json, so its pipelines cannot be resumed; delete the folder to start afresh`,
      );
    }
    state = newState();
  }
  for (const app of Object.keys(options.apps)) {
    state.apps[app] ??= { history: [newCommit([], 'Initial commit', 'octocat')] };
  }
  await saveState(options.dataDir, state);
  return state;
}

/** Who approves in the sandbox: a GitHub user of its own, with an SSH signing key made on first start. */
export const SANDBOX_USER = 'sandbox-approver';

/** The sample user's signing key, made once in the data folder and registered with the GitHub simulator at every start. */
async function sandboxSigningKey(dataDir: string, stack: Stack): Promise<string> {
  const keyFile = join(dataDir, 'signing-key');
  if (!existsSync(keyFile)) {
    await execFileAsync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${SANDBOX_USER}@sandbox`, '-f', keyFile]);
  }
  stack.github.addSshSigningKey(SANDBOX_USER, await readFile(`${keyFile}.pub`, 'utf8'), 'sandbox signing key');
  return keyFile;
}

async function startWorld(options: SandboxOptions, state: SandboxState, ecr: SandboxEcr, client: () => Client | undefined): Promise<Stack> {
  // The stack's and the worker's AWS SDK clients find ECR through the SDK's own environment settings.
  useLocalEcr(ecr.endpoint, 'sandbox');

  const apps = Object.fromEntries(Object.entries(options.apps).map(([app, spec]) => [app, { ...spec, history: state.apps[app]!.history }]));
  const stack = await startStack({
    apps,
    dataDir: options.dataDir,
    id: state.id,
    resume: true,
    webUiUrl: `http://${HOST}:${options.ports.ui}`,
    // GOV.UK's topology: a cluster's Argo CD per environment, its app-config polling at Argo CD's default (3 minutes),
    // which the pipeline's refresh saves waiting for.
    argo: { syncDelayMs: options.delays.syncMs, healthyDelayMs: options.delays.rolloutMs, perEnvironment: true, appOfApps: 'app-config' },
    buildDelayMs: options.delays.buildMs,
    // A pipeline a freeze stopped looks again this often (production's default is a minute): `npm run sandbox -- unfreeze` shows soon.
    freezeRecheckInterval: '10s',
    ports: { github: options.ports.github, argo: options.ports.argo, release: options.ports.release, endpoints: options.ports.endpoints },
    release: {
      storeFile: join(options.dataDir, 'release-app.jsonl'),
      deployCommand: DEPLOY_COMMAND,
      pipelineUrl: (workflowId) => webUiPipelineUrl(`http://${HOST}:${options.ports.ui}`, 'default', workflowId),
      awaitingApproval: async () => {
        const temporal = client();
        if (!temporal) throw new Error('Temporal is still starting');
        const waiting = await listPipelines(temporal, { status: 'AWAITING_APPROVAL', limit: 100 });
        return waiting.map(
          (p): PendingApproval => ({ workflowId: p.workflowId, app: p.app, commit: p.commit, environment: p.environment, startedAt: new Date(p.startTime) }),
        );
      },
      deliveryMetrics: async () => {
        const temporal = client();
        if (!temporal) throw new Error('Temporal is still starting');
        return readDeliveryMetrics(temporal, { taskQueue: DEFAULT_TASK_QUEUE, catalogue: stack.catalogue, commitDates, seen: pipelinesSeen });
      },
    },
  });
  const commitDates = githubCommitDates({ apiUrl: stack.env.GITHUB_API_URL!, token: stack.env.GITHUB_TOKEN! });
  const pipelinesSeen = new Map<string, { state: string; attempts: DeployAttempt[] }>();
  try {
    if (options.delays.smokeMs > 0) {
      stack.endpoints.injectFault({ pathPattern: /\/healthcheck$/, delayMs: options.delays.smokeMs, times: Infinity });
    }
    await restoreImages(stack, state);
  } catch (err) {
    await stack.close();
    throw err;
  }
  return stack;
}

/**
 * ECR (moto's or the simulator's) keeps nothing across restarts: push every commit's image again, and
 * the `deployed-to-<environment>` tags where the charts repo says that image runs.
 */
async function restoreImages(stack: Stack, state: SandboxState): Promise<void> {
  for (const [app, config] of stack.catalogue.apps) {
    const built = new Set<string>();
    for (const commit of state.apps[app]?.history.slice(1) ?? []) {
      const tag = config.tagScheme === 'short-sha' ? shortSha(commit.sha) : commit.sha;
      await stack.pushImage(app, tag);
      built.add(tag);
    }
    for (const environment of config.environments) {
      const text = await stack.charts.readFile(imageTagPath(stack.catalogue.chartsPath, app, environment.name));
      const tag = text === undefined ? undefined : (parseYaml(text) as { image_tag?: unknown } | null)?.image_tag;
      if (typeof tag === 'string' && built.has(tag)) {
        await pushSyntheticImage(stack.ecr, stack.imageRepositoryOf(app), `deployed-to-${environment.name}`, tag);
      }
    }
  }
}

async function startWorker(options: StartSandboxOptions, server: DevServer, stack: Stack, resources: Resources): Promise<void> {
  const connection = await NativeConnection.connect({ address: server.address });
  resources.add('the worker connection', () => connection.close());
  const worker = await createDeployWorker({
    connection,
    namespace: server.namespace,
    taskQueue: DEFAULT_TASK_QUEUE,
    dependencies: stack.dependencies,
    workflowBundlePath: options.workflowBundlePath ?? DEFAULT_BUNDLE_PATH,
  });
  const running = worker.run();
  resources.add('the worker', async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
  });
}

/** What CI does after a merge, once per app on the sandbox's first start. */
async function startSamples(dataDir: string, state: SandboxState, stack: Stack, client: Client): Promise<SamplePipeline[]> {
  const samples: SamplePipeline[] = [];
  for (const app of stack.catalogue.apps.keys()) {
    const appState = state.apps[app]!;
    if (!appState.sample) {
      const tip = appState.history[appState.history.length - 1]!;
      const commit = newCommit([tip.sha], `Merge pull request: a change to ${app}`, 'developer');
      stack.github.addCommit(stack.repoOf(app), { ...commit, date: new Date(commit.date), branch: 'main' });
      appState.history.push(commit);
      appState.sample = { sha: commit.sha, started: false };
      await saveState(dataDir, state);
    }
    const { sha } = appState.sample;
    if (appState.sample.started) {
      samples.push({ app, sha, workflowId: ciWorkflowId(app, sha), startedNow: false });
      continue;
    }
    const started = await startPipeline(
      { app, ref: sha, requestedBy: 'sandbox' },
      { client, taskQueue: DEFAULT_TASK_QUEUE, catalogue: stack.catalogue, sourceHost: stack.dependencies.sourceHost },
    );
    appState.sample.started = true;
    await saveState(dataDir, state);
    samples.push({ app, sha, workflowId: started.workflowId, startedNow: started.started });
  }
  return samples;
}

function webUiPipelineUrl(webUiUrl: string, namespace: string, workflowId: string): string {
  return `${webUiUrl}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}`;
}

export function displayPath(path: string): string {
  const relativePath = relative(process.cwd(), path);
  return relativePath && !relativePath.startsWith('..') ? relativePath : path;
}
