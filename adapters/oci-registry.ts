import { createHash } from 'node:crypto';
import { PermanentHttpError, TransientHttpError } from '../common/errors';
import { InvalidNameError, isImageDigest, validateImageReference, validateImageTag } from '../common/names';
import type { ImageRegistry } from '../common/ports';
import { describeNetworkError, displayUrl, httpFailure, joinUrl, redact } from './http-client';

/**
 * Any registry that speaks the OCI distribution API (GitHub's and GitLab's container registries, Docker Hub,
 * Harbor, the CNCF Distribution registry): a manifest HEAD says whether a tag exists and which digest it names,
 * and tagging is a manifest GET and a PUT of the same bytes under the new tag. Authentication is what those
 * registries ask for in their 401: the bearer-token handshake (a token from the realm they name, for the scope
 * they name, with our credentials as Basic auth where we have some) or Basic auth itself.
 */
export interface OciRegistryOptions {
  /** The registry's base URL, e.g. `https://ghcr.io`. */
  url: string;
  /** With `password`: Basic credentials for the registry or its token realm (for GitHub: a login and a token). */
  username?: string;
  password?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface OciImageRegistry extends ImageRegistry {
  /** The digest the tag names now (`sha256:…`), or undefined when there is no such tag. */
  digestOf(repository: string, tag: string): Promise<string | undefined>;
}

/** Every manifest kind a tag may name; asking for all of them keeps a registry from converting one. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
];

const REPOSITORY_NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

function validateRepositoryName(value: string): string {
  if (value.length > 255 || !REPOSITORY_NAME.test(value)) throw new InvalidNameError(`invalid OCI repository name ${JSON.stringify(value)}`);
  return value;
}

interface Answer {
  status: number;
  headers: Headers;
  bytes: Buffer;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull"`. */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const match = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const [, key, quoted, bare] of match[2]!.matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[key!.toLowerCase()] = quoted ?? bare ?? '';
  return { scheme: match[1]!.toLowerCase(), params };
}

export function createOciImageRegistry(options: OciRegistryOptions): OciImageRegistry {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const secrets = [options.password];
  const basic = options.username !== undefined && options.password !== undefined ? `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}` : undefined;
  /** Bearer tokens by scope, until shortly before they expire. */
  const tokens = new Map<string, { value: string; expiresAtMs: number }>();
  let basicAsked = false;

  async function send(method: string, url: URL | string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
    try {
      const response = await doFetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
      return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
    } catch (err) {
      const problem = describeNetworkError(err);
      const what = `OCI registry ${method} ${displayUrl(url)}`;
      throw new TransientHttpError(redact(problem.timedOut ? `${what} timed out after ${timeoutMs} ms` : `${what} failed: ${problem.description}`, secrets));
    }
  }

  function fail(method: string, url: URL, answer: Answer): never {
    let body: unknown = answer.bytes.toString('utf8');
    try {
      // The distribution API explains itself as {"errors": [{"code", "message"}]}.
      const parsed = JSON.parse(String(body)) as { errors?: { code?: string; message?: string }[] };
      const first = parsed.errors?.[0];
      body = first ? { message: [first.code, first.message].filter(Boolean).join(': ') } : parsed;
    } catch {
      // Not JSON: quoted as text.
    }
    throw httpFailure({ service: 'OCI registry', method, url, status: answer.status, headers: answer.headers, body, secrets });
  }

  async function token(challenge: Challenge, scope: string): Promise<string> {
    const cached = tokens.get(scope);
    if (cached && cached.expiresAtMs > Date.now()) return cached.value;
    const realm = challenge.params.realm;
    if (!realm) throw new PermanentHttpError(`the OCI registry ${displayUrl(options.url)} asked for a bearer token but named no realm`, 401);
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    url.searchParams.set('scope', scope);
    const answer = await send('GET', url, { accept: 'application/json', ...(basic ? { authorization: basic } : {}) });
    if (answer.status !== 200) fail('GET', url, answer);
    const issued = JSON.parse(answer.bytes.toString('utf8')) as { token?: string; access_token?: string; expires_in?: number };
    const value = issued.token ?? issued.access_token;
    if (!value) throw new PermanentHttpError(`the token realm ${displayUrl(url)} answered without a token`, 502);
    // Tokens default to 60 s; renew a little early.
    tokens.set(scope, { value, expiresAtMs: Date.now() + Math.max(1, (issued.expires_in ?? 60) - 10) * 1000 });
    return value;
  }

  /** One call to the registry, authenticating as its 401 asks. */
  async function call(method: 'GET' | 'HEAD' | 'PUT', repository: string, path: string, push: boolean, headers: Record<string, string> = {}, body?: Buffer): Promise<Answer> {
    const url = joinUrl(options.url, `v2/${repository}/${path}`);
    const scope = `repository:${repository}:${push ? 'pull,push' : 'pull'}`;
    const cached = tokens.get(scope);
    let authorization = cached && cached.expiresAtMs > Date.now() ? `Bearer ${cached.value}` : basicAsked ? basic : undefined;
    for (let attempt = 0; ; attempt++) {
      const answer = await send(method, url, { ...headers, ...(authorization ? { authorization } : {}) }, body);
      if (answer.status !== 401 || attempt > 0) {
        if (answer.status === 401) {
          throw new PermanentHttpError(redact(`the OCI registry ${displayUrl(options.url)} refused ${basic ? 'our credentials' : 'anonymous access'} for ${scope}`, secrets), 401);
        }
        return answer;
      }
      const challenge = parseChallenge(answer.headers.get('www-authenticate'));
      if (challenge?.scheme === 'bearer') authorization = `Bearer ${await token(challenge, scope)}`;
      else if (challenge?.scheme === 'basic' && basic) {
        basicAsked = true;
        authorization = basic;
      } else return answer;
    }
  }

  async function digestOf(repository: string, tag: string): Promise<string | undefined> {
    validateRepositoryName(repository);
    validateImageTag(tag);
    const answer = await call('HEAD', repository, `manifests/${tag}`, false, { accept: MANIFEST_MEDIA_TYPES.join(', ') });
    if (answer.status === 404) return undefined;
    if (answer.status !== 200) fail('HEAD', joinUrl(options.url, `v2/${repository}/manifests/${tag}`), answer);
    const digest = answer.headers.get('docker-content-digest');
    if (digest) return digest;
    // A registry that does not say: the digest of the manifest's own bytes.
    const got = await call('GET', repository, `manifests/${tag}`, false, { accept: MANIFEST_MEDIA_TYPES.join(', ') });
    if (got.status !== 200) fail('GET', joinUrl(options.url, `v2/${repository}/manifests/${tag}`), got);
    return `sha256:${createHash('sha256').update(got.bytes).digest('hex')}`;
  }

  return {
    digestOf,

    async hasImage(repository, tag) {
      return (await digestOf(repository, tag)) !== undefined;
    },

    async addTag(repository, sourceTag, newTag) {
      validateRepositoryName(repository);
      validateImageReference(sourceTag);
      validateImageTag(newTag);
      const source = await call('GET', repository, `manifests/${sourceTag}`, true, { accept: MANIFEST_MEDIA_TYPES.join(', ') });
      const sourceUrl = joinUrl(options.url, `v2/${repository}/manifests/${sourceTag}`);
      if (source.status === 404) throw new PermanentHttpError(`OCI repository "${repository}" has no image ${isImageDigest(sourceTag) ? sourceTag : `tagged "${sourceTag}"`}`, 404);
      if (source.status !== 200) fail('GET', sourceUrl, source);
      const mediaType = source.headers.get('content-type')?.split(';')[0]?.trim();
      if (!mediaType || !MANIFEST_MEDIA_TYPES.includes(mediaType)) {
        throw new PermanentHttpError(`OCI repository "${repository}" answered "${sourceTag}" with a manifest of type ${JSON.stringify(mediaType)}`, 415);
      }
      const digest = `sha256:${createHash('sha256').update(source.bytes).digest('hex')}`;
      // The tag already names this very image: an earlier attempt (or another pipeline) did the work.
      if ((await digestOf(repository, newTag)) === digest) return;
      // The manifest goes back byte for byte: its digest is the image's identity.
      const put = await call('PUT', repository, `manifests/${newTag}`, true, { 'content-type': mediaType }, source.bytes);
      if (put.status !== 201 && put.status !== 200) fail('PUT', joinUrl(options.url, `v2/${repository}/manifests/${newTag}`), put);
    },
  };
}
