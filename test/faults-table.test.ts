/**
 * One table of the outside faults a step can meet, each produced by the production adapter against a simulator
 * speaking the real wire format (or real git, or a real OCI issuer's keys), and what the step makes of it:
 * permanent (the step stops, with the message) or transient (Temporal retries, as soon as the server allows).
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { ECRClient } from '@aws-sdk/client-ecr';
import { classify } from '../activities/stage';
import { createEcrImageRegistry } from '../adapters/ecr';
import { createOidcTokenVerifier } from '../adapters/github-oidc';
import { EcrSimulator } from '../simulators/ecr';
import { ensureRepository, pushSyntheticImage } from '../simulators/ecr-images';
import { GitHubOidcSimulator } from '../simulators/github-oidc';
import { startStack, type Stack } from '../sandbox/stack';
import { errorFrom } from './support/env';

interface Verdict {
  kind: 'permanent' | 'transient';
  type?: string;
  message: RegExp;
  /** How long Temporal waits before the next attempt, when the server said. */
  retryAfterMs?: number | 'at least a minute';
}

/** What the step's retry policy sees once classify() has sorted the adapter's error. */
function verdictOf(thrown: unknown): Verdict {
  const sorted = classify(thrown);
  if (sorted instanceof ApplicationFailure) {
    return {
      kind: sorted.nonRetryable ? 'permanent' : 'transient',
      type: sorted.type ?? undefined,
      message: new RegExp(''),
      retryAfterMs: typeof sorted.nextRetryDelay === 'number' ? sorted.nextRetryDelay : undefined,
    };
  }
  return { kind: 'transient', message: new RegExp('') };
}

describe('outside faults: permanent or transient, and what the message says', () => {
  let dataDir: string;
  let stack: Stack;
  let ecr: EcrSimulator;
  let oidc: GitHubOidcSimulator;
  const APP = 'frontend';

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'faults-table-'));
    stack = await startStack({ dataDir, apps: { [APP]: {} } });
    ecr = new EcrSimulator();
    await ecr.start();
    oidc = new GitHubOidcSimulator();
    await oidc.start();
  });
  afterAll(async () => {
    await oidc?.close();
    await ecr?.close();
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const secondaryLimit = { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.' };
  const rows: [string, () => Promise<unknown>, Verdict][] = [
    [
      'GitHub: secondary rate limit (403, requests remaining)',
      () => {
        stack.github.injectFault({ pathPattern: '/compare/', status: 403, headers: { 'x-ratelimit-remaining': '4999' }, body: secondaryLimit });
        return stack.dependencies.sourceHost.compareCommits(stack.repoOf(APP), 'main', 'main');
      },
      { kind: 'transient', type: 'TransientHttpError', message: /returned 403: You have exceeded a secondary rate limit.*\(secondary rate limit; retry in 60 s\)$/, retryAfterMs: 60_000 },
    ],
    [
      'GitHub: primary rate limit spent (403, x-ratelimit-reset)',
      () => {
        stack.github.injectFault({ pathPattern: '/compare/', status: 403, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 120) }, body: { message: 'API rate limit exceeded' } });
        return stack.dependencies.sourceHost.compareCommits(stack.repoOf(APP), 'main', 'main');
      },
      { kind: 'transient', type: 'TransientHttpError', message: /returned 403: API rate limit exceeded \(rate limited; retry in \d+ s\)$/, retryAfterMs: 'at least a minute' },
    ],
    [
      'GitHub: a 403 that is no rate limit',
      () => {
        stack.github.injectFault({ pathPattern: '/dispatches', status: 403, body: { message: 'Resource not accessible by integration' } });
        return stack.dependencies.sourceHost.dispatchWorkflow(stack.repoOf(APP), 'build-image.yml', 'main', {});
      },
      { kind: 'permanent', type: 'PermanentHttpError', message: /returned 403: Resource not accessible by integration$/ },
    ],
    [
      'GitHub: 502',
      () => {
        stack.github.injectFault({ pathPattern: '/compare/', status: 502, body: 'Bad gateway' });
        return stack.dependencies.sourceHost.compareCommits(stack.repoOf(APP), 'main', 'main');
      },
      { kind: 'transient', message: /returned 502/ },
    ],
    [
      'Argo CD: 403 for our token',
      () => {
        stack.argo.injectFault({ pathPattern: '^/api/v1/applications/', status: 403, body: { error: 'permission denied', code: 7, message: 'permission denied' } });
        return stack.dependencies.argoCd.getApplication(`${APP}-integration`);
      },
      { kind: 'permanent', type: 'PermanentHttpError', message: /^Argo CD GET \S+ returned 403: permission denied$/ },
    ],
    [
      'Argo CD: 503',
      () => {
        stack.argo.injectFault({ pathPattern: '^/api/v1/applications/', status: 503, body: 'upstream unavailable' });
        return stack.dependencies.argoCd.getApplication(`${APP}-integration`);
      },
      { kind: 'transient', message: /^Argo CD GET \S+ returned 503/ },
    ],
    [
      'Release app: 429 with Retry-After',
      () => {
        stack.release.injectFault({ method: 'POST', pathPattern: '^/deployments', status: 429, headers: { 'retry-after': '7' } });
        return stack.dependencies.releaseApp.recordDeployment({ repo: stack.repoOf(APP), environment: 'staging', version: 'v1' }, `faults-table/${Date.now()}`);
      },
      { kind: 'transient', type: 'TransientHttpError', message: /returned 429.*\(rate limited; retry in 7 s\)$/, retryAfterMs: 7_000 },
    ],
    [
      'ECR: AccessDeniedException',
      async () => {
        const admin = new ECRClient({ endpoint: ecr.url, region: 'eu-west-2', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
        await ensureRepository(admin, 'frontend');
        await pushSyntheticImage(admin, 'frontend', 'v1');
        admin.destroy();
        ecr.deny('AKIAWORKERWITHOUTECR', ['DescribeImages']);
        const restricted = new ECRClient({ endpoint: ecr.url, region: 'eu-west-2', credentials: { accessKeyId: 'AKIAWORKERWITHOUTECR', secretAccessKey: 'testing' } });
        return createEcrImageRegistry({ client: restricted }).hasImage('frontend', 'v1');
      },
      { kind: 'permanent', type: 'PermanentHttpError', message: /^ECR permissions error: the worker's AWS identity may not ecr:DescribeImages on ECR repository "frontend"/ },
    ],
    [
      'charts: push refused by branch protection',
      async () => {
        const hook = join(stack.charts.bareDir, 'hooks', 'pre-receive');
        await writeFile(hook, '#!/bin/sh\necho "error: GH006: Protected branch update failed for refs/heads/main." >&2\nexit 1\n');
        await chmod(hook, 0o755);
        try {
          return await stack.dependencies.charts.setImageTag(APP, 'integration', `v${Date.now()}`, 'Deploy frontend to integration');
        } finally {
          await rm(hook, { force: true });
        }
      },
      { kind: 'permanent', type: 'ChartsPushRefused', message: /^the charts repository refused our push: branch protection on main\. Let the deploy identity push to main/ },
    ],
    [
      'OIDC: an expired token',
      () =>
        createOidcTokenVerifier({ issuer: oidc.issuer }).verify(
          oidc.mintToken({ repository: 'alphagov/frontend', audience: 'deploys', runId: 1, actor: 'alice', issuedAt: Math.floor(Date.now() / 1000) - 3600 }),
          { audience: 'deploys' },
        ),
      { kind: 'permanent', type: 'IdentityRefused', message: /^the OIDC token expired at / },
    ],
    [
      'OIDC: the issuer is down',
      () => {
        oidc.injectFault({ pathPattern: 'openid-configuration', status: 503 });
        const token = oidc.mintToken({ repository: 'alphagov/frontend', audience: 'deploys', runId: 1, actor: 'alice' });
        return createOidcTokenVerifier({ issuer: oidc.issuer }).verify(token, { audience: 'deploys' });
      },
      { kind: 'transient', message: /^OIDC issuer GET \S+ returned 503/ },
    ],
  ];

  it.each(rows)('%s', async (_fault, produce, expected) => {
    const thrown = await errorFrom(produce);
    const verdict = verdictOf(thrown);
    expect(thrown.message).toMatch(expected.message);
    expect(verdict.kind).toBe(expected.kind);
    if (expected.type) expect(verdict.type).toBe(expected.type);
    if (expected.retryAfterMs === 'at least a minute') expect(verdict.retryAfterMs).toBeGreaterThanOrEqual(60_000);
    else if (expected.retryAfterMs !== undefined) expect(verdict.retryAfterMs).toBe(expected.retryAfterMs);
  });
});
