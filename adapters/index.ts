/**
 * The production adapters, one per outside system, each behind its port in common/ports.ts. Other folders build
 * adapters through these factories only; what sits behind them (the HTTP client, retries, wording) stays here.
 */
export { createArgoCdClient } from './argocd';
export { createArgoWorkflowsClient } from './argo-workflows';
export { createGitChartsRepository } from './charts-git';
export { createEcrImageRegistry } from './ecr';
export { createOciImageRegistry } from './oci-registry';
export { createGitHubSourceHost } from './github';
export { createGitHubActionsRuns } from './github-actions-runs';
export { createOidcTokenVerifier } from './github-oidc';
export { createGitHubSigningKeys } from './github-signing-keys';
export { createIdentityVerifier } from './identity-verifier';
export { createReleaseAppClient } from './release-app';
export { createSlackWebApiNotifier, createSlackWebhookNotifier } from './slack';
export { createHttpSmokeTester } from './smoke-http';
export { createSshSignatureVerifier } from './ssh-signatures';
export { createTemporalWorkflowHistory } from './temporal-history';
