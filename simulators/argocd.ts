import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { hasToken, json, Simulator, type SimRequest, type SimResponse } from './http';

/**
 * One cluster's Argo CD: the application API over a local bare Helm-charts repo. Like Argo CD with auto-sync, it
 * only notices a new charts commit on a refresh (or a poll tick), then syncs, rolls out and turns Healthy after
 * configurable delays. With an app of apps (GOV.UK's `app-config`), only the parent reads the image-tag files: a
 * refresh or poll of the parent syncs it, and its sync renders each app's Application with the tag of its file;
 * an app whose rendered tag changed syncs. A refresh of an app alone moves its revision, not its image. Test hooks
 * make a rollout degrade, a sync fail or the API answer stale data.
 */

const run = promisify(execFile);

export interface ArgoApplicationSpec {
  /** Argo CD application name. */
  name: string;
  app: string;
  environment: string;
  namespace?: string;
}

export interface ArgoCdSimulatorOptions {
  /** The bare Helm-charts repository the "cluster" follows. */
  chartsRepoPath: string;
  branch?: string;
  /** Where an app's image-tag file lives; `{app}` and `{environment}` are replaced. */
  chartsPath?: string;
  token: string;
  /** The environment whose cluster this Argo CD runs, for its messages. */
  cluster?: string;
  /** The app-of-apps Application that renders the others from the image-tag files, e.g. `app-config`. */
  appOfApps?: string;
  applications?: ArgoApplicationSpec[];
  /** From noticing a new tag until the sync operation succeeds. */
  syncDelayMs?: number;
  /** From a successful sync until the rollout is Healthy (or Degraded). */
  healthyDelayMs?: number;
  /** 0 = look at git only on refresh; Argo CD's own default is 180000, the default here with an app of apps. */
  pollIntervalMs?: number;
  host?: string;
  port?: number;
  repoURL?: string;
  sourcePath?: string;
  image?: (app: string, tag: string) => string;
}

export type OperationPhase = 'Running' | 'Succeeded' | 'Failed' | 'Terminating' | 'Error';

export interface SyncRecord {
  name: string;
  revision: string;
  tag?: string;
  startedAt: Date;
  /** When the sync operation ended (Succeeded, Failed or superseded). */
  finishedAt?: Date;
  phase: OperationPhase;
  message?: string;
  /** Health the rollout settled at (Healthy or Degraded) and when. */
  health?: string;
  settledAt?: Date;
}

export interface ApplicationJson {
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string; creationTimestamp: string };
  spec: Record<string, unknown>;
  status: {
    sync: { status: string; revision?: string; comparedTo: Record<string, unknown> };
    health: { status: string; message?: string };
    operationState?: {
      operation: Record<string, unknown>;
      phase: OperationPhase;
      message: string;
      startedAt: string;
      finishedAt?: string;
      syncResult: { revision: string; source: Record<string, unknown>; resources: unknown[] };
    };
    summary: { images: string[] };
    [key: string]: unknown;
  };
}

export type ArgoChangeListener = (name: string, application: ApplicationJson) => void;

interface Operation {
  phase: OperationPhase;
  message: string;
  revision: string;
  tag?: string;
  startedAt: Date;
  finishedAt?: Date;
  automated: boolean;
}

interface AppState {
  spec: ArgoApplicationSpec;
  uid: string;
  createdAt: Date;
  resourceVersion: number;
  /** The newest charts commit this app has looked at, and its tag there. */
  observed?: { revision: string; tag?: string };
  /** What runs in the cluster. */
  live: { revision?: string; tag?: string };
  health: { status: string; message?: string };
  operation?: Operation;
  record?: SyncRecord;
  reconciledAt: Date;
  history: Array<{ id: number; revision: string; deployStartedAt: Date; deployedAt: Date }>;
  nextDegrade?: string;
  nextSyncFailure?: string;
  stale?: { until: number; snapshot: ApplicationJson };
  /** Bumped by every new sync so that timers of a superseded one do nothing. */
  generation: number;
  /** The app of apps's rendering of this Application: the annotations of its image-tag file. */
  annotations?: Record<string, string>;
}

const DEFAULT_CHARTS_PATH = 'charts/app-config/image-tags/{environment}/{app}';

export class ArgoCdSimulator extends Simulator {
  readonly syncHistory: SyncRecord[] = [];
  private readonly apps = new Map<string, AppState>();
  private readonly listeners = new Set<ArgoChangeListener>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private poller?: NodeJS.Timeout;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly parent?: AppState;
  private readonly options: Required<Pick<ArgoCdSimulatorOptions, 'branch' | 'chartsPath' | 'syncDelayMs' | 'healthyDelayMs' | 'pollIntervalMs' | 'sourcePath'>> &
    ArgoCdSimulatorOptions;

  constructor(options: ArgoCdSimulatorOptions) {
    super({
      host: options.host,
      port: options.port,
      notFound: (request) => this.unauthorized(request) ?? argoError(404, 5, `Not Found`),
      invalidJson: () => argoError(400, 3, 'invalid JSON body'),
    });
    this.options = {
      branch: 'main',
      chartsPath: DEFAULT_CHARTS_PATH,
      syncDelayMs: 0,
      healthyDelayMs: 0,
      pollIntervalMs: options.appOfApps ? 180_000 : 0,
      sourcePath: 'charts/app-config',
      ...withoutUndefined(options),
    };
    if (options.appOfApps) this.parent = this.register({ name: options.appOfApps, app: options.appOfApps, environment: options.cluster ?? 'cluster' });
    for (const spec of options.applications ?? []) this.register(spec);

    this.server.route('GET', /^\/api\/v1\/applications\/([^/]+)$/, (req) => this.getApplication(req));
    this.server.route('GET', /^\/api\/v1\/applications$/, (req) => this.listApplications(req));
  }

  /** Adds an application; once started, it looks at the current charts commit at once. */
  async addApplication(spec: ArgoApplicationSpec): Promise<void> {
    const state = this.register(spec);
    if (this.server.started) await this.serialized(() => this.initialise(state));
  }

  /** The next rollout of `name` (or the one in progress) ends Degraded; `immediately` degrades it now. */
  degrade(name: string, message: string, options: { immediately?: boolean } = {}): void {
    const state = this.appOrThrow(name);
    if (options.immediately) {
      state.health = { status: 'Degraded', message };
      this.changed(state);
    } else {
      state.nextDegrade = message;
    }
  }

  /** The next sync operation of `name` ends Failed with this message. */
  failNextSync(name: string, message: string): void {
    this.appOrThrow(name).nextSyncFailure = message;
  }

  /** For `ms`, the API keeps answering what it would have answered now, whatever happens meanwhile. */
  reportStaleFor(name: string, ms: number): void {
    const state = this.appOrThrow(name);
    state.stale = { until: Date.now() + ms, snapshot: this.applicationJson(state) };
  }

  /** The tag running in the cluster for (app, environment): the last one synced successfully. */
  currentTag(app: string, environment: string): string | undefined {
    for (const state of this.apps.values()) {
      if (state !== this.parent && state.spec.app === app && state.spec.environment === environment) return state.live.tag;
    }
    return undefined;
  }

  /** The Application as the API would return it now (ignores reportStaleFor). */
  application(name: string): ApplicationJson {
    return this.applicationJson(this.appOrThrow(name));
  }

  /** Looks at the charts repo now, as a refresh or poll tick would. */
  async refresh(): Promise<void> {
    await this.serialized(() => this.observeTip());
  }

  onChange(listener: ArgoChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected override async beforeStart(): Promise<void> {
    await this.serialized(async () => {
      for (const state of this.apps.values()) await this.initialise(state);
    });
    if (this.options.pollIntervalMs > 0) {
      this.poller = setInterval(() => {
        void this.serialized(() => this.observeTip()).catch(() => undefined);
      }, this.options.pollIntervalMs);
    }
  }

  protected override async afterClose(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await this.queue.catch(() => undefined);
  }

  private unauthorized(req: SimRequest): SimResponse | undefined {
    if (hasToken(req.headers, this.options.token)) return undefined;
    const message = req.headers.authorization ? 'invalid session: token signature is invalid' : 'no session information';
    return argoError(401, 16, message);
  }

  private async getApplication(req: SimRequest): Promise<SimResponse> {
    const denied = this.unauthorized(req);
    if (denied) return denied;
    const name = req.params[0];
    const state = this.apps.get(name);
    if (!state) return argoError(404, 5, `applications.argoproj.io "${name}" not found`);
    const refresh = req.query.get('refresh');
    if (refresh !== null && refresh !== '') {
      if (refresh !== 'normal' && refresh !== 'hard') return argoError(400, 3, `unknown refresh type "${refresh}"`);
      try {
        await this.serialized(() => (this.parent && state !== this.parent ? this.refreshRendered(state) : this.observeTip()));
      } catch (err) {
        return argoError(500, 2, `failed to refresh from ${this.options.branch}: ${(err as Error).message}`);
      }
    }
    if (state.stale && Date.now() < state.stale.until) return json(200, state.stale.snapshot);
    state.stale = undefined;
    return json(200, this.applicationJson(state));
  }

  private listApplications(req: SimRequest): SimResponse {
    const denied = this.unauthorized(req);
    if (denied) return denied;
    return json(200, { metadata: { resourceVersion: String(Date.now()) }, items: [...this.apps.values()].map((state) => this.applicationJson(state)) });
  }

  private register(spec: ArgoApplicationSpec): AppState {
    if (this.apps.has(spec.name)) throw new Error(`application ${spec.name} already exists`);
    const state: AppState = {
      spec,
      uid: randomUUID(),
      createdAt: new Date(),
      resourceVersion: 1,
      live: {},
      health: { status: 'Missing' },
      reconciledAt: new Date(),
      history: [],
      generation: 0,
    };
    this.apps.set(spec.name, state);
    return state;
  }

  private appOrThrow(name: string): AppState {
    const state = this.apps.get(name);
    if (!state) throw new Error(`unknown Argo CD application ${name}`);
    return state;
  }

  /** Before the first request the cluster runs what the charts repo holds, as after an earlier sync. */
  private async initialise(state: AppState): Promise<void> {
    const tip = await this.tip();
    if (!tip) return;
    const file = state === this.parent ? { tag: tip, annotations: undefined } : await this.fileAt(tip, state.spec);
    const tag = file.tag;
    if (this.parent && state !== this.parent) state.annotations = file.annotations;
    const now = new Date();
    state.observed = { revision: tip, tag };
    state.live = { revision: tip, tag };
    state.health = { status: 'Healthy' };
    state.operation = { phase: 'Succeeded', message: 'successfully synced (all tasks run)', revision: tip, tag, startedAt: now, finishedAt: now, automated: true };
    state.history.push({ id: 0, revision: tip, deployStartedAt: now, deployedAt: now });
    state.reconciledAt = now;
  }

  private async observeTip(): Promise<void> {
    const tip = await this.tip();
    if (!tip) return;
    if (this.parent) return this.observeTipAsParent(this.parent, tip);
    // One `git diff` per earlier revision instead of reading every application's file at every new commit.
    const changedSince = new Map<string, Promise<Set<string> | undefined>>();
    for (const state of this.apps.values()) {
      state.reconciledAt = new Date();
      if (state.observed?.revision === tip) continue;
      const before = state.observed;
      let changed: Set<string> | undefined;
      if (before) {
        if (!changedSince.has(before.revision)) changedSince.set(before.revision, this.changedFiles(before.revision, tip));
        changed = await changedSince.get(before.revision);
      }
      const tag = before && changed && !changed.has(this.tagFile(state.spec)) ? before.tag : await this.tagAt(tip, state.spec);
      state.observed = { revision: tip, tag };
      const syncing = state.operation?.phase === 'Running';
      const target = syncing ? state.operation?.tag : state.live.tag;
      if (tag !== target) this.startSync(state, tip, tag);
      else this.changed(state);
    }
  }

  /** The app of apps's own revision is the charts commit: every new commit is a change to sync. */
  private observeTipAsParent(parent: AppState, tip: string): void {
    parent.reconciledAt = new Date();
    if (parent.observed?.revision === tip) return this.changed(parent);
    parent.observed = { revision: tip, tag: tip };
    this.startSync(parent, tip, tip);
  }

  /** The parent's sync: each app's Application rendered from its file at the parent's commit. */
  private async render(revision: string): Promise<void> {
    for (const state of this.apps.values()) {
      if (state === this.parent) continue;
      const { tag, annotations } = await this.fileAt(revision, state.spec);
      state.annotations = annotations;
      state.reconciledAt = new Date();
      state.observed = { revision, tag };
      const target = state.operation?.phase === 'Running' ? state.operation.tag : state.live.tag;
      if (tag !== target) this.startSync(state, revision, tag);
      else this.changed(state);
    }
  }

  /** An app's own refresh sees the charts' newest commit, but its image tag is what the parent rendered last. */
  private async refreshRendered(state: AppState): Promise<void> {
    const tip = await this.tip();
    state.reconciledAt = new Date();
    if (!tip || !state.observed || state.operation?.phase === 'Running') return;
    state.observed = { ...state.observed, revision: tip };
    this.changed(state);
  }

  private startSync(state: AppState, revision: string, tag: string | undefined): void {
    state.generation += 1;
    const generation = state.generation;
    const now = new Date();
    if (state.operation?.phase === 'Running' && state.record) {
      state.record.phase = 'Failed';
      state.record.message = 'superseded by a newer revision';
      state.record.finishedAt = now;
    }
    const failure = state.nextSyncFailure;
    state.nextSyncFailure = undefined;
    state.operation = { phase: 'Running', message: 'one or more tasks are running', revision, tag, startedAt: now, automated: true };
    const record: SyncRecord = { name: state.spec.name, revision, tag, startedAt: now, phase: 'Running' };
    state.record = record;
    this.syncHistory.push(record);
    this.changed(state);

    this.after(this.options.syncDelayMs, () => {
      if (generation !== state.generation || !state.operation) return;
      const finishedAt = new Date();
      state.operation.finishedAt = finishedAt;
      record.finishedAt = finishedAt;
      if (failure !== undefined) {
        state.operation.phase = 'Failed';
        state.operation.message = failure;
        record.phase = 'Failed';
        record.message = failure;
        this.changed(state);
        return;
      }
      state.operation.phase = 'Succeeded';
      state.operation.message = 'successfully synced (all tasks run)';
      record.phase = 'Succeeded';
      state.live = { revision, tag };
      if (state === this.parent) void this.serialized(() => this.render(revision)).catch(() => undefined);
      state.history.push({ id: state.history.length, revision, deployStartedAt: now, deployedAt: finishedAt });
      state.health = { status: 'Progressing', message: `Waiting for rollout to finish: 1 old replicas are pending termination...` };
      this.changed(state);

      this.after(this.options.healthyDelayMs, () => {
        if (generation !== state.generation) return;
        const degraded = state.nextDegrade;
        state.nextDegrade = undefined;
        state.health = degraded !== undefined ? { status: 'Degraded', message: degraded } : { status: 'Healthy' };
        record.health = state.health.status;
        record.settledAt = new Date();
        this.changed(state);
      });
    });
  }

  private after(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, ms);
    this.timers.add(timer);
  }

  private changed(state: AppState): void {
    state.resourceVersion += 1;
    if (this.listeners.size === 0) return;
    const snapshot = this.applicationJson(state);
    for (const listener of this.listeners) {
      try {
        listener(state.spec.name, snapshot);
      } catch {
        // A listener's failure must not stop the simulated cluster.
      }
    }
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async tip(): Promise<string | undefined> {
    try {
      const { stdout } = await this.git('rev-parse', '--verify', '--quiet', `refs/heads/${this.options.branch}^{commit}`);
      return stdout.trim() || undefined;
    } catch (err) {
      if ((err as { code?: unknown }).code === 1) return undefined;
      throw err;
    }
  }

  private tagFile(spec: ArgoApplicationSpec): string {
    return this.options.chartsPath.replace(/\{app\}/g, spec.app).replace(/\{environment\}/g, spec.environment);
  }

  /** Paths that differ between two commits; undefined when git cannot tell (then every file is read). */
  private async changedFiles(from: string, to: string): Promise<Set<string> | undefined> {
    try {
      const { stdout } = await this.git('diff', '--name-only', '--no-renames', from, to);
      return new Set(stdout.split('\n').filter(Boolean));
    } catch {
      return undefined;
    }
  }

  private async tagAt(revision: string, spec: ArgoApplicationSpec): Promise<string | undefined> {
    return (await this.fileAt(revision, spec)).tag;
  }

  /** The image tag, and the annotations app-config's chart renders: a missing flag reads "false", as there. */
  private async fileAt(revision: string, spec: ArgoApplicationSpec): Promise<{ tag?: string; annotations: Record<string, string> }> {
    const file = this.tagFile(spec);
    let text: string;
    try {
      ({ stdout: text } = await this.git('cat-file', 'blob', `${revision}:${file}`));
    } catch (err) {
      if (/does not exist|not a valid object name/i.test(String((err as { stderr?: unknown }).stderr ?? ''))) return { annotations: flags(undefined) };
      throw err;
    }
    let document: unknown;
    try {
      document = parseYaml(text);
    } catch {
      return { annotations: flags(undefined) };
    }
    const values = typeof document === 'object' && document !== null ? (document as Record<string, unknown>) : undefined;
    const tag = values?.image_tag;
    const annotations = flags(values);
    return typeof tag === 'string' || typeof tag === 'number' ? { tag: String(tag), annotations: { imageTag: String(tag), ...annotations } } : { annotations };
  }

  private git(...args: string[]): Promise<{ stdout: string; stderr: string }> {
    return run('git', ['--git-dir', this.options.chartsRepoPath, ...args], { encoding: 'utf8', maxBuffer: 10 * 1024 * 1024 });
  }

  private applicationJson(state: AppState): ApplicationJson {
    const { spec } = state;
    const source = { repoURL: this.options.repoURL ?? `file://${this.options.chartsRepoPath}`, path: this.options.sourcePath, targetRevision: this.options.branch };
    const destination = { server: 'https://kubernetes.default.svc', namespace: 'apps' };
    const synced = state.observed !== undefined && state.observed.tag === state.live.tag;
    const syncStatus = state.observed === undefined ? 'Unknown' : synced ? 'Synced' : 'OutOfSync';
    const image = this.options.image ?? ((app: string, tag: string) => `${app}:${tag}`);
    const operation = state.operation;
    const isParent = state === this.parent;
    const rendered = this.parent && !isParent ? { annotations: { repoName: spec.app, ...state.annotations } } : {};
    return {
      metadata: {
        name: spec.name,
        ...rendered,
        namespace: spec.namespace ?? 'argocd',
        uid: state.uid,
        resourceVersion: String(state.resourceVersion),
        creationTimestamp: argoTime(state.createdAt),
      },
      spec: {
        project: 'default',
        source,
        destination,
        syncPolicy: { automated: { prune: true, selfHeal: true } },
      },
      status: {
        sync: { status: syncStatus, revision: state.observed?.revision, comparedTo: { source, destination } },
        health: state.health.message !== undefined ? { ...state.health } : { status: state.health.status },
        operationState: operation && {
          operation: { sync: { revision: operation.revision }, initiatedBy: operation.automated ? { automated: true } : { username: 'admin' }, retry: {} },
          phase: operation.phase,
          message: operation.message,
          startedAt: argoTime(operation.startedAt),
          ...(operation.finishedAt ? { finishedAt: argoTime(operation.finishedAt) } : {}),
          syncResult: { revision: operation.revision, source, resources: [] },
        },
        summary: { images: !isParent && state.live.tag !== undefined ? [image(spec.app, state.live.tag)] : [] },
        resources: isParent
          ? [...this.apps.values()]
              .filter((child) => child !== state)
              .map((child) => ({ group: 'argoproj.io', version: 'v1alpha1', kind: 'Application', namespace: 'argocd', name: child.spec.name, status: 'Synced' }))
          : [{ group: 'apps', version: 'v1', kind: 'Deployment', namespace: destination.namespace, name: spec.app, status: syncStatus, health: { status: state.health.status } }],
        history: state.history.map((entry) => ({
          id: entry.id,
          revision: entry.revision,
          deployStartedAt: argoTime(entry.deployStartedAt),
          deployedAt: argoTime(entry.deployedAt),
          source,
        })),
        reconciledAt: argoTime(state.reconciledAt),
        sourceType: 'Helm',
      },
    };
  }
}

/** As app-config's chart: each flag's value as a string, "false" when the file lacks it. */
function flags(values: Record<string, unknown> | undefined): Record<string, string> {
  const flag = (value: unknown) => (value === undefined || value === null || value === '' ? 'false' : String(value));
  return { promoteDeployment: flag(values?.promote_deployment), automaticDeploysEnabled: flag(values?.automatic_deploys_enabled) };
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as T;
}

function argoError(status: number, code: number, message: string): SimResponse {
  return json(status, { error: message, code, message });
}

function argoTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
