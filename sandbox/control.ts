import { randomBytes } from 'node:crypto';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startPipeline } from '../client/pipelines';
import { imageTagPath } from '../simulators/charts-repo';
import { hasToken, json, SimServer, type SimRequest, type SimResponse } from '../simulators/http';
import { DEFAULT_TASK_QUEUE } from '../workflows/definitions';
import { newCommit, saveState, type SandboxState } from './state';
import type { Stack } from './stack';

/**
 * What `npm run sandbox -- <command>` asks the running sandbox to do to its simulated world: the GitHub,
 * Argo CD and app-endpoint simulators live in the sandbox's process, so a second process changes them
 * through this loopback endpoint. Where it listens, and its token, are in `control.json` while the
 * sandbox runs; decisions (approve, reject, clear a hold) do not come here: they go to Temporal, the
 * CLI's way.
 */

export const CONTROL_FILE = 'control.json';

export interface ControlFile {
  url: string;
  token: string;
  pid: number;
}

export interface SandboxControl {
  url: string;
  close(): Promise<void>;
}

export interface SandboxControlOptions {
  dataDir: string;
  host: string;
  state: SandboxState;
  stack: Stack;
  client: Client;
  pipelineUrl: (workflowId: string) => string;
}

/** A request the world cannot act on: an unknown app or environment, say. */
class ControlRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const BROKEN_ON_PURPOSE = 'broken on purpose with `npm run sandbox -- break`';

export async function startSandboxControl(options: SandboxControlOptions): Promise<SandboxControl> {
  const { dataDir, state, stack, client } = options;
  const token = randomBytes(16).toString('hex');
  const server = new SimServer({ host: options.host });
  // One change at a time: merges append to the state file and freezes commit to the charts repo.
  let queue: Promise<unknown> = Promise.resolve();
  const serialized = <T>(action: () => Promise<T>): Promise<T> => {
    const next = queue.then(action);
    queue = next.catch(() => undefined);
    return next;
  };
  const handle = (action: (body: Record<string, unknown>) => Promise<unknown>) => async (req: SimRequest): Promise<SimResponse> => {
    if (!hasToken(req.headers, token)) return json(401, { message: 'the sandbox control token is missing or wrong' });
    try {
      return json(200, await serialized(() => action((req.body ?? {}) as Record<string, unknown>)));
    } catch (err) {
      if (err instanceof ControlRefusal) return json(err.status, { message: err.message });
      throw err;
    }
  };

  const environmentsOf = (app: string): string[] => {
    const config = stack.catalogue.apps.get(app);
    if (!config) throw new ControlRefusal(404, `unknown app "${app}" (the sandbox has: ${[...stack.catalogue.apps.keys()].join(', ')})`);
    return config.environments.map((e) => e.name);
  };
  const checkEnvironment = (app: string, environment: string): void => {
    const environments = environmentsOf(app);
    if (!environments.includes(environment)) throw new ControlRefusal(404, `app "${app}" has no environment "${environment}" (it has: ${environments.join(', ')})`);
  };
  const text = (body: Record<string, unknown>, key: string): string => {
    const value = body[key];
    if (typeof value !== 'string' || value === '') throw new ControlRefusal(400, `"${key}" is required`);
    return value;
  };

  server.route('GET', /^\/apps$/, handle(async () => Object.fromEntries([...stack.catalogue.apps.keys()].map((app) => [app, environmentsOf(app)]))));

  // What a merge and CI do: a new commit on main, and its pipeline started, as for the samples.
  server.route(
    'POST',
    /^\/merge$/,
    handle(async (body) => {
      const app = text(body, 'app');
      environmentsOf(app);
      const appState = state.apps[app]!;
      const tip = appState.history[appState.history.length - 1]!;
      const number = appState.history.length;
      const commit = newCommit([tip.sha], `Merge pull request #${number} from developer/change-${number}\n\nA change to ${app}`, 'developer');
      stack.github.addCommit(stack.repoOf(app), { ...commit, date: new Date(commit.date), branch: 'main' });
      appState.history.push(commit);
      await saveState(dataDir, state);
      const started = await startPipeline(
        { app, ref: commit.sha, requestedBy: 'sandbox' },
        { client, taskQueue: DEFAULT_TASK_QUEUE, catalogue: stack.catalogue, sourceHost: stack.dependencies.sourceHost },
      );
      return { sha: commit.sha, workflowId: started.workflowId, pipelineUrl: options.pipelineUrl(started.workflowId) };
    }),
  );

  server.route(
    'POST',
    /^\/break$/,
    handle(async (body) => {
      const app = text(body, 'app');
      const environment = text(body, 'environment');
      checkEnvironment(app, environment);
      const argo = stack.argoOf(environment);
      if (body.kind === 'smoke') {
        failSmokeTestsOfNextRollout(stack, app, environment);
        return { app, environment, kind: 'smoke' };
      }
      argo.degrade(stack.argoApplicationOf(app, environment), `Deployment "${app}" exceeded its progress deadline (${BROKEN_ON_PURPOSE})`);
      return { app, environment, kind: 'rollout' };
    }),
  );

  const setAutomaticDeploys = (enabled: boolean) =>
    handle(async (body) => {
      const environment = text(body, 'environment');
      const only = typeof body.app === 'string' && body.app !== '' ? body.app : undefined;
      if (only) checkEnvironment(only, environment);
      const apps = only ? [only] : [...stack.catalogue.apps.keys()].filter((app) => environmentsOf(app).includes(environment));
      if (apps.length === 0) throw new ControlRefusal(404, `no app of the sandbox has an environment "${environment}" (they have: ${stack.catalogueEnvironments().join(', ')})`);
      const files: Record<string, string> = {};
      for (const app of apps) {
        const path = imageTagPath(stack.catalogue.chartsPath, app, environment);
        const current = (parseYaml((await stack.charts.readFile(path)) ?? '') as Record<string, unknown> | null) ?? {};
        files[path] = `# Managed by the deploy pipeline\n${stringifyYaml({ ...current, automatic_deploys_enabled: enabled })}`;
      }
      const what = `${enabled ? 'Unfreeze' : 'Freeze'} automatic deploys of ${apps.join(', ')} to ${environment}`;
      const chartsCommit = await stack.charts.commitFiles(files, what);
      return { environment, apps, chartsCommit, files: Object.keys(files) };
    });
  server.route('POST', /^\/freeze$/, setAutomaticDeploys(false));
  server.route('POST', /^\/unfreeze$/, setAutomaticDeploys(true));

  await server.start();
  const controlFile = join(dataDir, CONTROL_FILE);
  const content: ControlFile = { url: server.url, token, pid: process.pid };
  await writeFile(controlFile, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  await chmod(controlFile, 0o600);
  return {
    url: server.url,
    async close() {
      await rm(controlFile, { force: true });
      await server.close();
    },
  };
}

/**
 * The app's smoke checks in that environment fail while a version other than today's runs there: the next
 * rollout fails its checks, and once the rollback brings today's version back they pass again.
 */
function failSmokeTestsOfNextRollout(stack: Stack, app: string, environment: string): void {
  const argo = stack.argoOf(environment);
  const before = argo.currentTag(app, environment);
  let failing = false;
  const unsubscribe = argo.onChange(() => {
    const now = argo.currentTag(app, environment);
    if (!failing && now !== before) {
      failing = true;
      stack.endpoints.failChecks(app, environment, { status: 503, body: { status: 'error', app, environment, message: BROKEN_ON_PURPOSE } });
    } else if (failing && now === before) {
      stack.endpoints.restore(app, environment);
      unsubscribe();
    }
  });
}
