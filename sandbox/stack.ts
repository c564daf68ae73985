import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ECRClient } from '@aws-sdk/client-ecr';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { ActivityDependencies } from '../activities';
import { loadCatalogue, type Catalogue } from '../common/catalogue';
import { loadWorkerSettings, type WorkerSettings } from '../common/settings';
import { AppEndpointsSimulator } from '../simulators/app-endpoints';
import { ArgoCdSimulator } from '../simulators/argocd';
import { ArgoWorkflowsSimulator, type SuiteOutcome } from '../simulators/argo-workflows';
import { createLocalChartsRepo, type LocalChartsRepo } from '../simulators/charts-repo';
import { ensureRepository, pushSyntheticImage } from '../simulators/ecr-images';
import { pushOciImage } from '../simulators/oci-images';
import { GitHubSimulator, JobFailedError, RunEndedError, type SimCommit } from '../simulators/github';
import { ReleaseAppSimulator, type ReleaseAppSimulatorOptions } from '../simulators/release-app';
import { GitHubOidcSimulator } from '../simulators/github-oidc';
import { SANDBOX_CHANNEL, SlackSimulator } from '../simulators/slack';
import { createProductionDependencies } from '../worker/adapters';

/**
 * The whole GitOps platform on loopback: GitHub, Argo CD, the release app and the apps' endpoints as
 * simulators speaking their real wire formats, a real bare Helm-charts repo, and ECR from the AWS SDK's
 * endpoint (moto's server). Tests and the sandbox wire the production adapters to it unchanged.
 */

export interface StackEnvironmentSpec {
  continuousDeployment?: boolean;
  approvers?: string[];
  syncTimeout?: string;
  smokeAttempts?: number;
  /** May a commit's author approve its own deploy here (catalogue default: not in production). */
  allowSelfApproval?: boolean;
  /** Catalogue `approval.identity`; the stack's default is `claimed` (a name counts), the catalogue's `verified`. */
  identity?: 'verified' | 'claimed';
  /** Catalogue `deployers`: who may start a manual deploy here. */
  deployers?: string[];
  /** Automatic deploys here wait for one of these (catalogue `deployWindows`, e.g. `{ from: '09:30:00', to: '17:00' }`). */
  deployWindows?: Array<{ days?: string[]; from: string; to: string; timezone?: string }>;
  /**
   * An end-to-end suite after the HTTP check: GOV.UK's `govuk-e2e-tests` WorkflowTemplate in the environment's
   * cluster's Argo Workflows, or the app repository's `smoke-tests.yml` GitHub Actions workflow.
   */
  smokeSuite?: 'argoWorkflow' | 'githubWorkflow';
}

export interface StackAppSpec {
  /** Environments in order, with their settings; default integration → staging → production, all continuous. */
  environments?: Record<string, StackEnvironmentSpec>;
  approvalTimeout?: string;
  buildTimeout?: string;
  tagScheme?: 'sha' | 'short-sha' | 'release-tag';
  /** Catalogue `onDivergence`: wait (the default) or deploy over an environment that runs commits the release lacks. */
  onDivergence?: 'wait' | 'deploy';
  /** Catalogue `promotion`: `chartsFlags` promotes as GOV.UK does, by the deployed environment's image-tag file. */
  promotion?: 'catalogue' | 'chartsFlags';
  /** Catalogue `unpromoted`: where the charts flags do not promote, wait for approval or end (deploy by hand). */
  unpromoted?: 'approval' | 'deployByHand';
  /** Catalogue `queue`: newest-first (the default) or in-order. */
  queue?: 'newest-first' | 'in-order';
  /** The tag every environment runs before the first pipeline. */
  initialTag?: string;
  /** The main branch's commits, oldest first, e.g. from an earlier run of the sandbox; default: one new initial commit. */
  history?: SimCommit[];
  /**
   * Catalogue `image`: builds push to one of `StackOptions.ociRegistries` instead of ECR (the repository is the
   * same, `<stack id>/<app>`); `cache` names a pull-through cache of it.
   */
  image?: { registry: string; cache?: string; deployedToTags?: 'registry' | 'cache'; writeDigest?: boolean };
}

/** A registry speaking the OCI distribution API, run by the caller (the tests run the CNCF Distribution registry). */
export interface StackOciRegistry {
  url: string;
  /** What the worker logs in with; the catalogue names the variables and the stack's `env` holds them. */
  username?: string;
  password?: string;
  /** What CI's build pushes images with, e.g. a bearer token for the repository; none for a cache, which takes no pushes. */
  pushAuthorization?: (repository: string) => Promise<string>;
}

export interface StackOptions {
  apps: Record<string, StackAppSpec>;
  /** Where the charts repos, the catalogue and the worker's charts clone live. */
  dataDir: string;
  /**
   * `perEnvironment`: GOV.UK's topology, each environment a cluster with its own Argo CD (the first on ports.argo)
   * knowing only its own applications, named as the app; `appOfApps` (with it) names the parent that renders them
   * from the image-tag files, polling every `pollIntervalMs` (Argo CD's 180 s by default).
   */
  argo?: { syncDelayMs?: number; healthyDelayMs?: number; pollIntervalMs?: number; perEnvironment?: boolean; appOfApps?: string };
  /** How long a dispatched image build takes before the image appears. */
  buildDelayMs?: number;
  polling?: { initialIntervalMs: number; maxIntervalMs: number };
  smokeRetryInterval?: string;
  /** How often a pipeline stopped by a freeze looks again (catalogue `defaults.freezeRecheckInterval`). */
  freezeRecheckInterval?: string;
  /** How often a pipeline queued for a lane asks again (catalogue `defaults.laneRecheckInterval`). */
  laneRecheckInterval?: string;
  /** Catalogue `defaults.historyLimit`: the history length past which a frozen pipeline continues as new. */
  historyLimit?: number;
  ports?: { github?: number; argo?: number; release?: number; endpoints?: number };
  /** Names the image repositories and the worker's charts clone; a restarted sandbox passes the same one. Default: random. */
  id?: string;
  /** Where the pipeline's links (GitHub deployments, Slack) point to; the sandbox's Web UI port may differ from the default. */
  webUiUrl?: string;
  /** Keep the charts repo an earlier stack left in dataDir, adding only missing image-tag files (the sandbox's restart). */
  resume?: boolean;
  /** Where the release app keeps its records, and where its page finds the pipelines awaiting approval. */
  release?: Pick<ReleaseAppSimulatorOptions, 'storeFile' | 'awaitingApproval' | 'pipelineUrl' | 'deployCommand' | 'deliveryMetrics'>;
  /** The catalogue's `defaults.stepRetry`, e.g. short limits and timeouts for fault and crash tests. */
  stepRetry?: { maximumAttempts?: number; maximumInterval?: string; attemptTimeout?: string; heartbeatTimeout?: string };
  /** The catalogue's OCI `registries`, by name, for apps whose `image.registry` names one. */
  ociRegistries?: Record<string, StackOciRegistry>;
  /** How long an end-to-end suite runs before its outcome, and its timeout in the catalogue (default 2m). */
  suite?: { runMs?: number; timeout?: string };
}

export interface Stack {
  github: GitHubSimulator;
  oidc: GitHubOidcSimulator;
  /** The one Argo CD; with `argo.perEnvironment`, the first environment's. */
  argo: ArgoCdSimulator;
  /** The Argo CD of an environment's cluster (the one Argo CD unless `argo.perEnvironment`). */
  argoOf(environment: string): ArgoCdSimulator;
  /** Every app's environments, in order, once each. */
  catalogueEnvironments(): string[];
  /** The Argo CD application of an app in an environment's cluster. */
  argoApplicationOf(app: string, environment: string): string;
  release: ReleaseAppSimulator;
  slack: SlackSimulator;
  endpoints: AppEndpointsSimulator;
  charts: LocalChartsRepo;
  ecr: ECRClient;
  catalogue: Catalogue;
  cataloguePath: string;
  /** The environment a worker process or the CLI needs to use this stack. */
  env: Record<string, string>;
  settings: WorkerSettings;
  /** Production adapters pointed at this stack. */
  dependencies: ActivityDependencies;
  repoOf(app: string): string;
  imageRepositoryOf(app: string): string;
  /** A new commit on the app's main branch (what a merge does); returns its SHA. */
  merge(app: string, options?: { authorLogin?: string; message?: string; branch?: string; buildImage?: boolean }): Promise<string>;
  pushImage(app: string, tag: string): Promise<void>;
  /** What a failing image build does: dispatched builds of this app end in failure. */
  failBuilds(app: string, failing: boolean): void;
  /** Dispatched builds of this app never produce an image (a stuck build). */
  stallBuilds(app: string, stalled: boolean): void;
  /** The Argo Workflows of an environment's cluster, where `argoWorkflow` suites run. */
  argoWorkflowsOf(environment: string): ArgoWorkflowsSimulator;
  /** How the app's end-to-end suite ends in the environment from now on (`next`: its next run only). Default: pass. */
  setSuiteOutcome(app: string, environment: string, outcome: SuiteOutcome, options?: { next?: boolean }): void;
  close(): Promise<void>;
}

const DEFAULT_ENVIRONMENTS: Record<string, StackEnvironmentSpec> = {
  integration: { continuousDeployment: true },
  staging: { continuousDeployment: true },
  production: { continuousDeployment: true },
};

const ORG = 'alphagov';
/** GOV.UK's end-to-end suite, a WorkflowTemplate in each cluster's `apps` namespace. */
const E2E_TEMPLATE = 'govuk-e2e-tests';
const SUITE_NAMESPACE = 'apps';
/** The app repository's own end-to-end workflow, for `githubWorkflow` suites. */
const SMOKE_WORKFLOW = 'smoke-tests.yml';

function randomDigits(count: number): string {
  return Array.from(randomBytes(count), (byte) => String(byte % 10)).join('');
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const stackId = options.id ?? randomBytes(4).toString('hex');
  const tokens = {
    github: `ghs_${randomBytes(12).toString('hex')}`,
    argo: `argo-${randomBytes(12).toString('hex')}`,
    release: `rel-${randomBytes(12).toString('hex')}`,
    // Shaped as Slack's: xoxb-<team>-<bot>-<secret>.
    slack: `xoxb-${randomDigits(10)}-${randomDigits(12)}-${randomBytes(12).toString('hex')}`,
  };
  await mkdir(options.dataDir, { recursive: true });
  const appNames = Object.keys(options.apps);
  const environmentsOf = (app: string) => Object.entries(options.apps[app]!.environments ?? DEFAULT_ENVIRONMENTS);
  const perEnvironment = options.argo?.perEnvironment ?? false;
  // GOV.UK's clusters name an app's Application after the app; one Argo CD for all needs the environment in the name.
  const argoName = (app: string, environment: string) => (perEnvironment ? app : `${app}-${environment}`);
  const imageRepositoryOf = (app: string) => `${stackId}/${app}`;
  const repoOf = (app: string) => `${ORG}/${app}`;
  // What CI's image build would tag the image with (release tags are added by the tests that use them).
  const buildTagOf = (app: string, sha: string) => (options.apps[app]!.tagScheme === 'short-sha' ? sha.slice(0, 7) : sha);
  const ociRegistryOf = (app: string) => {
    const name = options.apps[app]!.image?.registry;
    const registry = name === undefined ? undefined : options.ociRegistries?.[name];
    if (name !== undefined && !registry) throw new Error(`app "${app}" names registry "${name}", which is not among the stack's ociRegistries`);
    return registry;
  };
  // CI's build pushes where the app's images are built: ECR, or the app's OCI registry.
  const pushBuiltImage = async (app: string, tag: string) => {
    const oci = ociRegistryOf(app);
    if (!oci) {
      await pushSyntheticImage(ecr, imageRepositoryOf(app), tag);
      return;
    }
    const repository = imageRepositoryOf(app);
    await pushOciImage(oci.url, repository, tag, { authorization: await oci.pushAuthorization?.(repository) });
  };
  const registryVariable = (name: string, what: 'USERNAME' | 'PASSWORD') => `REGISTRY_${name.toUpperCase().replace(/-/g, '_')}_${what}`;

  const initialFiles: Record<string, string> = {};
  for (const app of appNames) {
    for (const [environment] of environmentsOf(app)) {
      initialFiles[`charts/app-config/image-tags/${environment}/${app}`] =
        `# Managed by the deploy pipeline\n${stringifyYaml({ image_tag: options.apps[app]!.initialTag ?? 'initial', promote_deployment: true, automatic_deploys_enabled: true })}`;
    }
  }
  const charts = options.resume ? await reopenChartsRepo(join(options.dataDir, 'charts'), initialFiles) : await createLocalChartsRepo({ parentDir: join(options.dataDir, 'charts'), files: initialFiles });

  const ecr = new ECRClient({});
  const failing = new Set<string>();
  const stalled = new Set<string>();
  const github = new GitHubSimulator({
    token: tokens.github,
    port: options.ports?.github,
    // As the workflows' run-names say (examples/github-actions/build-image.yml and smoke-tests.yml).
    runName: (inputs, workflowFile) =>
      workflowFile === SMOKE_WORKFLOW ? `Smoke tests ${String(inputs.environment)} ${String(inputs.smokeRun)}` : `Build image ${typeof inputs.gitRef === 'string' ? inputs.gitRef : ''}`.trimEnd(),
  });
  let closed = false;
  const suiteOutcomes = new Map<string, { next: SuiteOutcome[]; from?: SuiteOutcome }>();
  const suiteOutcomeOf = (key: string) => suiteOutcomes.get(key) ?? suiteOutcomes.set(key, { next: [] }).get(key)!;
  github.onDispatch(async (dispatch, run) => {
    const app = dispatch.repo.split('/')[1]!;
    if (dispatch.workflowFile === SMOKE_WORKFLOW) {
      const outcomes = suiteOutcomeOf(`${app} ${String(dispatch.inputs.environment)}`);
      let outcome: SuiteOutcome = outcomes.next.shift() ?? outcomes.from ?? { result: 'pass' };
      await new Promise((resolve) => setTimeout(resolve, options.suite?.runMs ?? 200));
      // A hanging run goes on until it is cancelled, or until the test sets another outcome for the suite.
      while (outcome.result === 'hang' && run.status !== 'completed' && !closed) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        if (outcomes.from && outcomes.from.result !== 'hang') outcome = outcomes.from;
      }
      if (outcome.result === 'fail') throw new JobFailedError(outcome.node ?? 'e2e', outcome.message ?? 'Process completed with exit code 1.');
      // A run that errs before any job: GitHub's answer to an invalid workflow file.
      if (outcome.result === 'error') throw new RunEndedError('startup_failure', outcome.message ?? 'Invalid workflow file');
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, options.buildDelayMs ?? 200));
    if (failing.has(app)) throw new Error('docker build failed');
    if (stalled.has(app)) return;
    await pushBuiltImage(app, buildTagOf(app, String(dispatch.inputs.gitRef)));
  });
  const clusters = perEnvironment ? [...new Set(appNames.flatMap((app) => environmentsOf(app).map(([environment]) => environment)))] : [undefined];
  const argoTokenVariable = (environment: string) => `ARGOCD_TOKEN_${environment.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
  const clusterTokens = new Map(clusters.map((cluster) => [cluster, cluster ? `argo-${cluster}-${randomBytes(12).toString('hex')}` : tokens.argo]));
  const argos = new Map(
    clusters.map((cluster, index) => [
      cluster,
      new ArgoCdSimulator({
        chartsRepoPath: charts.bareDir,
        token: clusterTokens.get(cluster)!,
        cluster,
        appOfApps: cluster ? options.argo?.appOfApps : undefined,
        applications: appNames.flatMap((app) =>
          environmentsOf(app)
            .filter(([environment]) => cluster === undefined || environment === cluster)
            .map(([environment]) => ({ name: argoName(app, environment), app, environment })),
        ),
        syncDelayMs: options.argo?.syncDelayMs ?? 100,
        healthyDelayMs: options.argo?.healthyDelayMs ?? 100,
        pollIntervalMs: options.argo?.pollIntervalMs ?? (cluster && options.argo?.appOfApps ? undefined : 0),
        // The first cluster's Argo CD takes the port asked for; the others any free one (the stack prints them).
        port: index === 0 ? options.ports?.argo : undefined,
      }),
    ]),
  );
  const argo = argos.values().next().value!;
  const argoOf = (environment: string): ArgoCdSimulator => {
    const found = argos.get(perEnvironment ? environment : undefined);
    if (!found) throw new Error(`no Argo CD for environment ${environment}`);
    return found;
  };
  // One Argo Workflows per cluster whose environment runs an argoWorkflow suite, knowing only its own workflows.
  const suiteClusters = [...new Set(appNames.flatMap((app) => environmentsOf(app).filter(([, spec]) => spec.smokeSuite === 'argoWorkflow').map(([environment]) => environment)))];
  const argoWorkflowsTokenVariable = (environment: string) => `ARGO_WORKFLOWS_TOKEN_${environment.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
  const argoWorkflowsTokens = new Map(suiteClusters.map((cluster) => [cluster, `argo-workflows-${cluster}-${randomBytes(12).toString('hex')}`]));
  const argoWorkflowsSims = new Map(
    suiteClusters.map((cluster) => [
      cluster,
      new ArgoWorkflowsSimulator({ token: argoWorkflowsTokens.get(cluster)!, cluster, namespace: SUITE_NAMESPACE, templates: { [E2E_TEMPLATE]: { parameters: ['testArgs'] } }, runMs: options.suite?.runMs }),
    ]),
  );
  const argoWorkflowsOf = (environment: string): ArgoWorkflowsSimulator => {
    const found = argoWorkflowsSims.get(environment);
    if (!found) throw new Error(`no Argo Workflows in the cluster of ${environment}: no app runs an argoWorkflow suite there`);
    return found;
  };
  const slack = new SlackSimulator({ botToken: tokens.slack, channels: [SANDBOX_CHANNEL] });
  // GitHub Actions' token issuer: the approve and deploy workflows' OIDC tokens.
  const oidc = new GitHubOidcSimulator();
  const release = new ReleaseAppSimulator({
    token: tokens.release,
    port: options.ports?.release,
    // Like GOV.UK's, it asks GitHub for the commits between versions itself.
    github: { apiUrl: () => github.url, token: tokens.github },
    ...options.release,
    promotesOnItsOwn: async (app, environment) => {
      if (options.apps[app]?.promotion !== 'chartsFlags') return undefined;
      const file = parseYaml((await charts.readFile(`charts/app-config/image-tags/${environment}/${app}`)) ?? '') as Record<string, unknown> | null;
      return String(file?.promote_deployment) === 'true' && String(file?.automatic_deploys_enabled) === 'true';
    },
    applications: appNames.map((app) => ({
      name: app,
      repo: repoOf(app),
      environments: environmentsOf(app).map(([name, spec]) => ({ name, continuousDeployment: spec.continuousDeployment ?? true })),
    })),
  });
  const endpoints = new AppEndpointsSimulator({ versionOf: (app, environment) => argoOf(environment).currentTag(app, environment), port: options.ports?.endpoints });
  const started: { close(): Promise<void> }[] = [];
  try {
    for (const sim of [github, ...argos.values(), ...argoWorkflowsSims.values(), release, endpoints, slack, oidc]) {
      await sim.start();
      started.push(sim);
    }
  } catch (err) {
    await Promise.all(started.map((sim) => sim.close()));
    throw err;
  }

  for (const app of appNames) {
    github.addRepo(repoOf(app), { defaultBranch: 'main' });
    const history = options.apps[app]!.history ?? [];
    if (history.length === 0) github.addCommit(repoOf(app), { branch: 'main', message: 'Initial commit' });
    for (const commit of history) {
      github.addCommit(repoOf(app), { ...commit, date: new Date(commit.date), branch: 'main' });
    }
    if (!ociRegistryOf(app)) await ensureRepository(ecr, imageRepositoryOf(app));
  }

  const catalogueDocument = {
    defaults: {
      ...(options.stepRetry ? { stepRetry: options.stepRetry } : {}),
      ...(options.freezeRecheckInterval ? { freezeRecheckInterval: options.freezeRecheckInterval } : {}),
      ...(options.laneRecheckInterval ? { laneRecheckInterval: options.laneRecheckInterval } : {}),
      ...(options.historyLimit ? { historyLimit: options.historyLimit } : {}),
    },
    ...(options.ociRegistries
      ? {
          registries: Object.fromEntries(
            Object.entries(options.ociRegistries).map(([name, registry]) => [
              name,
              { type: 'oci', url: registry.url, ...(registry.username ? { usernameEnv: registryVariable(name, 'USERNAME'), passwordEnv: registryVariable(name, 'PASSWORD') } : {}) },
            ]),
          ),
        }
      : {}),
    apps: Object.fromEntries(
      appNames.map((app) => {
        const spec = options.apps[app]!;
        return [
          app,
          {
            repo: repoOf(app),
            imageRepository: imageRepositoryOf(app),
            ...(spec.image
              ? {
                  image: {
                    registry: spec.image.registry,
                    ...(spec.image.cache ? { cache: { registry: spec.image.cache, repository: imageRepositoryOf(app) } } : {}),
                    ...(spec.image.deployedToTags ? { deployedToTags: spec.image.deployedToTags } : {}),
                    ...(spec.image.writeDigest ? { writeDigest: true } : {}),
                  },
                }
              : {}),
            tagScheme: spec.tagScheme ?? 'sha',
            ...(spec.onDivergence ? { onDivergence: spec.onDivergence } : {}),
            ...(spec.promotion ? { promotion: spec.promotion } : {}),
            ...(spec.unpromoted ? { unpromoted: spec.unpromoted } : {}),
            ...(spec.queue ? { queue: spec.queue } : {}),
            build: { workflow: 'build-image.yml', ref: 'main', timeout: spec.buildTimeout ?? '2m' },
            approvalTimeout: spec.approvalTimeout ?? '7d',
            environments: Object.fromEntries(
              environmentsOf(app).map(([environment, envSpec]) => [
                environment,
                {
                  continuousDeployment: envSpec.continuousDeployment ?? true,
                  argocdApplication: argoName(app, environment),
                  ...(perEnvironment
                    ? {
                        argocd: {
                          url: argoOf(environment).url,
                          tokenVariable: argoTokenVariable(environment),
                          ...(options.argo?.appOfApps ? { appOfApps: options.argo.appOfApps } : {}),
                        },
                      }
                    : {}),
                  approvers: envSpec.approvers ?? ['anyone'],
                  ...(envSpec.deployers ? { deployers: envSpec.deployers } : {}),
                  approval: { identity: envSpec.identity ?? 'claimed' },
                  ...(envSpec.allowSelfApproval !== undefined ? { allowSelfApproval: envSpec.allowSelfApproval } : {}),
                  ...(envSpec.deployWindows ? { deployWindows: envSpec.deployWindows } : {}),
                  syncTimeout: envSpec.syncTimeout ?? '2m',
                  smokeAttempts: envSpec.smokeAttempts ?? 2,
                  smokeRetryInterval: options.smokeRetryInterval ?? '100ms',
                  smokeChecks: [{ name: 'healthcheck', url: endpoints.healthcheckUrl(app, environment), expectStatus: 200, expectBodyContains: '"status":"ok"', timeout: '2s' }],
                  ...suiteCatalogue(envSpec.smokeSuite, environment),
                },
              ]),
            ),
          },
        ];
      }),
    ),
  };
  function suiteCatalogue(kind: StackEnvironmentSpec['smokeSuite'], environment: string): Record<string, unknown> {
    const timeout = options.suite?.timeout ?? '2m';
    if (kind === 'githubWorkflow') {
      return { smokeSuites: [{ kind, name: 'e2e', workflow: SMOKE_WORKFLOW, inputs: { environment: '{environment}', tag: '{tag}' }, timeout }] };
    }
    if (kind !== 'argoWorkflow') return {};
    return {
      smokeSuites: [{ kind, workflowTemplate: E2E_TEMPLATE, parameters: { testArgs: '--grep=@app-{app} --grep-invert=@not-{environment}' }, timeout }],
      argoWorkflows: { url: argoWorkflowsOf(environment).url, tokenVariable: argoWorkflowsTokenVariable(environment), namespace: SUITE_NAMESPACE },
    };
  }
  const cataloguePath = join(options.dataDir, 'apps.yaml');
  await writeFile(cataloguePath, `# Generated by the sandbox for its simulated apps\n${stringifyYaml(catalogueDocument)}`);
  const catalogue = loadCatalogue(cataloguePath);

  const env: Record<string, string> = {
    DEPLOY_CATALOGUE: cataloguePath,
    GITHUB_TOKEN: tokens.github,
    GITHUB_API_URL: github.url,
    ARGOCD_URL: argo.url,
    ARGOCD_TOKEN: tokens.argo,
    RELEASE_URL: release.url,
    RELEASE_TOKEN: tokens.release,
    // The Web API with a bot token: each message exactly once. A test of the webhook sets SLACK_WEBHOOK_URL
    // (slack.webhookUrl) and empties these.
    SLACK_BOT_TOKEN: tokens.slack,
    SLACK_CHANNEL: SANDBOX_CHANNEL,
    SLACK_API_URL: slack.apiUrl,
    DEPLOY_WEB_UI_URL: options.webUiUrl ?? 'http://127.0.0.1:8233',
    CHARTS_REPO_URL: charts.bareDir,
    CHARTS_WORKDIR: join(options.dataDir, `charts-workdir-${stackId}`),
    DEPLOY_POLL_INTERVAL_MS: String(options.polling?.initialIntervalMs ?? 100),
    DEPLOY_POLL_MAX_INTERVAL_MS: String(options.polling?.maxIntervalMs ?? 500),
    DEPLOY_OIDC_ISSUER: oidc.issuer,
    DEPLOY_OIDC_OWNERS: ORG,
    ...Object.fromEntries(clusters.flatMap((cluster) => (cluster ? [[argoTokenVariable(cluster), clusterTokens.get(cluster)!]] : []))),
    ...Object.fromEntries(suiteClusters.map((cluster) => [argoWorkflowsTokenVariable(cluster), argoWorkflowsTokens.get(cluster)!])),
    ...Object.fromEntries(
      Object.entries(options.ociRegistries ?? {}).flatMap(([name, registry]) =>
        registry.username ? [[registryVariable(name, 'USERNAME'), registry.username], [registryVariable(name, 'PASSWORD'), registry.password ?? '']] : [],
      ),
    ),
  };
  const settings = loadWorkerSettings(env);
  const dependencies = createProductionDependencies(settings, catalogue, env);

  return {
    github,
    oidc,
    argo,
    argoOf,
    catalogueEnvironments: () => [...new Set(appNames.flatMap((app) => environmentsOf(app).map(([environment]) => environment)))],
    argoApplicationOf: argoName,
    release,
    slack,
    endpoints,
    charts,
    ecr,
    catalogue,
    cataloguePath,
    env,
    settings,
    dependencies,
    repoOf,
    imageRepositoryOf,
    async merge(app, mergeOptions = {}) {
      const sha = github.addCommit(repoOf(app), {
        branch: mergeOptions.branch ?? 'main',
        authorLogin: mergeOptions.authorLogin,
        message: mergeOptions.message ?? `Merge a change to ${app}`,
      });
      if (mergeOptions.buildImage ?? true) await pushBuiltImage(app, buildTagOf(app, sha));
      return sha;
    },
    async pushImage(app, tag) {
      await pushBuiltImage(app, tag);
    },
    failBuilds(app, value) {
      if (value) failing.add(app);
      else failing.delete(app);
    },
    stallBuilds(app, value) {
      if (value) stalled.add(app);
      else stalled.delete(app);
    },
    argoWorkflowsOf,
    setSuiteOutcome(app, environment, outcome, outcomeOptions = {}) {
      const kind = options.apps[app]?.environments?.[environment]?.smokeSuite;
      if (kind === 'argoWorkflow') {
        if (outcomeOptions.next) argoWorkflowsOf(environment).queueOutcome(app, outcome);
        else argoWorkflowsOf(environment).setOutcome(app, outcome);
        return;
      }
      if (kind !== 'githubWorkflow') throw new Error(`${app} runs no end-to-end suite in ${environment}`);
      const outcomes = suiteOutcomeOf(`${app} ${environment}`);
      if (outcomeOptions.next) outcomes.next.push(outcome);
      else outcomes.from = outcome;
    },
    async close() {
      closed = true;
      await Promise.all([github, ...argos.values(), ...argoWorkflowsSims.values(), release, endpoints, slack, oidc].map((sim) => sim.close()));
      ecr.destroy();
    },
  };
}

/** The charts repo of an earlier stack: its scratch clone is rebuilt, its history kept; missing files are added. */
async function reopenChartsRepo(parentDir: string, files: Record<string, string>): Promise<LocalChartsRepo> {
  await rm(join(parentDir, 'charts-work'), { recursive: true, force: true });
  const charts = await createLocalChartsRepo({ parentDir });
  const missing: Record<string, string> = {};
  for (const [path, content] of Object.entries(files)) {
    if ((await charts.readFile(path)) === undefined) missing[path] = content;
  }
  if (Object.keys(missing).length > 0) await charts.commitFiles(missing, 'Add image tags of new apps');
  return charts;
}
