import { createArgoWorkflowsClient } from '../adapters';
import type { Catalogue } from '../common/catalogue';
import type { ArgoWorkflows } from '../common/ports';
import { SettingsError, type Env } from '../common/settings';
import type { ArgoWorkflowsOfEnvironment } from '../common/smoke-suites';

/**
 * One client per cluster's Argo Workflows the catalogue names (URL, and the variable holding its token), built at
 * start-up: a token missing from the worker's environment stops the start, before any pipeline needs it.
 */
export function argoWorkflowsOfClusters(catalogue: Catalogue, env: Env): (cluster: ArgoWorkflowsOfEnvironment) => ArgoWorkflows {
  const clients = new Map<string, ArgoWorkflows>();
  const problems = new Set<string>();
  const keyOf = (cluster: ArgoWorkflowsOfEnvironment) => `${cluster.url} ${cluster.tokenVariable}`;
  for (const app of catalogue.apps.values()) {
    for (const { name, argoWorkflows, smokeSuites } of app.environments) {
      if (!argoWorkflows || !smokeSuites.some((suite) => suite.kind === 'argoWorkflow') || clients.has(keyOf(argoWorkflows))) continue;
      const token = env[argoWorkflows.tokenVariable]?.trim();
      if (!token) {
        problems.add(`${argoWorkflows.tokenVariable} is not set (the token of ${argoWorkflows.url}, the Argo Workflows of ${name}, as ${catalogue.file} says)`);
        continue;
      }
      clients.set(keyOf(argoWorkflows), createArgoWorkflowsClient({ url: argoWorkflows.url, token }));
    }
  }
  if (problems.size > 0) throw new SettingsError(`the worker's settings are incomplete:\n  - ${[...problems].join('\n  - ')}`);
  return (cluster) => {
    const client = clients.get(keyOf(cluster));
    if (!client) throw new Error(`no Argo Workflows client for ${cluster.url}: the catalogue changed since the worker started`);
    return client;
  };
}
