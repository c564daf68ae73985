import { IdentityRefusedError, PermanentHttpError } from '../common/errors';
import { validateApprover } from '../common/names';
import { joinUrl, sendRequest } from './http-client';

/**
 * The SSH keys a GitHub user signs with (`GET /users/{username}/ssh_signing_keys`, the keys GitHub shows as
 * "Verified" on signed commits). Authentication keys are a separate list and never count.
 */
export interface SigningKeyDirectory {
  sshSigningKeys(login: string): Promise<string[]>;
}

export interface GitHubSigningKeysOptions {
  token: string;
  baseUrl: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** More keys than anyone signs with; a longer list is not followed further. */
const MAX_PAGES = 5;

export function createGitHubSigningKeys(options: GitHubSigningKeysOptions): SigningKeyDirectory {
  return {
    async sshSigningKeys(login) {
      const user = validateApprover(login);
      const keys: string[] = [];
      let url: string | undefined = joinUrl(options.baseUrl, `users/${encodeURIComponent(user)}/ssh_signing_keys?per_page=100`).toString();
      for (let page = 0; url && page < MAX_PAGES; page++) {
        let answer;
        try {
          answer = await sendRequest({
            service: 'GitHub',
            method: 'GET',
            url,
            headers: { authorization: `Bearer ${options.token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
            timeoutMs: options.timeoutMs ?? 10_000,
            secrets: [options.token],
            fetch: options.fetch,
          });
        } catch (err) {
          if (err instanceof PermanentHttpError && err.status === 404) throw new IdentityRefusedError(`GitHub has no user ${user}`);
          throw err;
        }
        for (const entry of Array.isArray(answer.body) ? (answer.body as { key?: unknown }[]) : []) {
          if (typeof entry.key === 'string') keys.push(entry.key);
        }
        url = /<([^>]+)>;\s*rel="next"/.exec(answer.headers.get('link') ?? '')?.[1];
      }
      return keys;
    },
  };
}
