import {
  createArgoCdClient,
  createEcrImageRegistry,
  createGitHubActionsRuns,
  createGitChartsRepository,
  createGitHubSourceHost,
  createGitHubSigningKeys,
  createHttpSmokeTester,
  createIdentityVerifier,
  createOciImageRegistry,
  createOidcTokenVerifier,
  createReleaseAppClient,
  createSlackWebApiNotifier,
  createSlackWebhookNotifier,
  createSshSignatureVerifier,
  createTemporalWorkflowHistory,
} from '../adapters';
import { Context } from '@temporalio/activity';
import type { ActivityDependencies } from '../activities';
import type { ArgoCdOfEnvironment, Catalogue, RegistryConfig } from '../common/catalogue';
import type { ArgoCd, ImageRegistry, Notifier } from '../common/ports';
import { SettingsError, type Env, type SlackSettings, type WorkerSettings } from '../common/settings';
import { argoWorkflowsOfClusters } from './argo-workflows-clients';

/** The one production adapter for each outside system, wired from validated settings. */
export function createProductionDependencies(settings: WorkerSettings, catalogue: Catalogue, env: Env = process.env): ActivityDependencies {
  const argoCdOf = argoCdsOfClusters(settings, catalogue, env);
  const github = createGitHubSourceHost({ token: settings.github.token, baseUrl: settings.github.apiUrl });
  return {
    catalogue,
    sourceHost: github,
    deployments: github,
    notifier: slackNotifier(settings.slack),
    webUi: settings.webUiUrl ? { url: settings.webUiUrl } : undefined,
    // Region, credentials and endpoint come from the AWS SDK's own chain (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_ECR, …).
    registry: createEcrImageRegistry(),
    registries: Object.fromEntries([...catalogue.registries.values()].map((registry) => [registry.name, imageRegistry(registry, env)])),
    charts: createGitChartsRepository({
      remoteUrl: settings.charts.remoteUrl,
      branch: settings.charts.branch,
      workdir: settings.charts.workdir,
      chartsPath: catalogue.chartsPath,
      author: settings.charts.author,
    }),
    argoCd: createArgoCdClient({ url: settings.argoCd.url, token: settings.argoCd.token }),
    argoCdOf,
    releaseApp: createReleaseAppClient({ url: settings.releaseApp.url, token: settings.releaseApp.token }),
    smokeTester: createHttpSmokeTester(),
    argoWorkflowsOf: argoWorkflowsOfClusters(catalogue, env),
    actionsRuns: createGitHubActionsRuns({ token: settings.github.token, baseUrl: settings.github.apiUrl }),
    polling: settings.polling,
    identity: createIdentityVerifier({
      oidc: {
        verifier: createOidcTokenVerifier({ issuer: settings.identity.oidcIssuer }),
        audience: settings.identity.oidcAudience,
        repositories: settings.identity.oidcRepositories,
        owners: settings.identity.oidcOwners,
      },
      runs: github,
      signingKeys: createGitHubSigningKeys({ token: settings.github.token, baseUrl: settings.github.apiUrl }),
      ssh: createSshSignatureVerifier(),
      signatureMaxAgeMs: settings.identity.signatureMaxAgeMs,
      // The worker's own client, with its connection and its token: the activity reads its own pipeline's history.
      principals: { logins: settings.identity.temporalPrincipals, history: createTemporalWorkflowHistory(() => Context.current().client) },
    }),
  };
}

/**
 * One adapter per registry of the catalogue. Credentials are read here, from the variables the catalogue names, and
 * go nowhere else: not in any step's input or result, not in any message.
 */
function imageRegistry(registry: RegistryConfig, env: NodeJS.ProcessEnv): ImageRegistry {
  if (registry.type === 'ecr') return createEcrImageRegistry({ registryId: registry.registryId });
  const credential = (name: string | undefined) => {
    if (name === undefined) return undefined;
    const value = env[name];
    if (!value) throw new Error(`registry "${registry.name}" of the app catalogue takes its credentials from ${name}, which is not set`);
    return value;
  };
  return createOciImageRegistry({ url: registry.url!, username: credential(registry.usernameEnv), password: credential(registry.passwordEnv) });
}

/** The bot token's Web API posts each message once; the incoming webhook may repeat one after a worker crash. */
function slackNotifier(slack: SlackSettings | undefined): Notifier | undefined {
  if (!slack) return undefined;
  if (slack.mode === 'webhook') return createSlackWebhookNotifier({ webhookUrl: slack.webhookUrl });
  return createSlackWebApiNotifier({ token: slack.botToken, channel: slack.channel, apiUrl: slack.apiUrl });
}

/**
 * One client per cluster's Argo CD the catalogue names (URL, and the variable holding its token); an environment
 * naming none uses ARGOCD_URL and ARGOCD_TOKEN. A token missing from the worker's environment stops the start.
 */
function argoCdsOfClusters(settings: WorkerSettings, catalogue: Catalogue, env: Env): (argocd: ArgoCdOfEnvironment) => ArgoCd {
  const clients = new Map<string, ArgoCd>();
  const problems = new Set<string>();
  const keyOf = (argocd: ArgoCdOfEnvironment) => `${argocd.url ?? settings.argoCd.url} ${argocd.tokenVariable ?? ''}`;
  for (const app of catalogue.apps.values()) {
    for (const { name, argocd } of app.environments) {
      if ((!argocd.url && !argocd.tokenVariable) || clients.has(keyOf(argocd))) continue;
      const token = argocd.tokenVariable ? env[argocd.tokenVariable]?.trim() : settings.argoCd.token;
      if (!token) {
        problems.add(`${argocd.tokenVariable} is not set (the API token of ${argocd.url ?? settings.argoCd.url}, the Argo CD of ${name}, as ${catalogue.file} says)`);
        continue;
      }
      clients.set(keyOf(argocd), createArgoCdClient({ url: argocd.url ?? settings.argoCd.url, token }));
    }
  }
  if (problems.size > 0) throw new SettingsError(`the worker's settings are incomplete:\n  - ${[...problems].join('\n  - ')}`);
  return (argocd) => {
    const client = clients.get(keyOf(argocd));
    if (!client) throw new Error(`no Argo CD client for ${argocd.url ?? settings.argoCd.url}: the catalogue changed since the worker started`);
    return client;
  };
}
