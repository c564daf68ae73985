import { validateRepo } from '../common/names';
import type { ReleaseApp } from '../common/ports';
import { joinUrl, sendRequest } from './http-client';

export interface ReleaseAppClientOptions {
  url: string;
  token: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export function createReleaseAppClient(options: ReleaseAppClientOptions): ReleaseApp {
  const { token } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;

  return {
    async recordDeployment(deployment, idempotencyKey) {
      validateRepo(deployment.repo);
      if (!idempotencyKey) throw new Error('recordDeployment needs an idempotency key, or a retry could record the deployment twice');
      await sendRequest({
        service: 'Release app',
        method: 'POST',
        url: joinUrl(options.url, 'deployments'),
        headers: { authorization: `Bearer ${token}`, 'idempotency-key': idempotencyKey },
        body: { repo: deployment.repo, deployment: { environment: deployment.environment, version: deployment.version } },
        timeoutMs,
        secrets: [token],
        fetch: options.fetch,
      });
    },
  };
}
