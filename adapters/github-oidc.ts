import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { IdentityRefusedError } from '../common/errors';
import { joinUrl, sendRequest } from './http-client';

/**
 * Verifies OIDC ID tokens from GitHub Actions (or GitHub Enterprise's issuer): the signature against the keys the
 * issuer publishes (discovery, then JWKS), the issuer, the audience and the token's lifetime. What the claims must
 * say about the run (repository, event, binding to a pipeline) is the approval policy's to decide.
 *
 * Only RS256 is accepted, the algorithm GitHub signs with: a token that names another (`none`, HS256 with the
 * public key as a secret) is refused before any key is used. Node's crypto checks the signature; JWT parsing is
 * the few lines below, since the one well-kept JOSE library ships only as ES modules.
 */
export const GITHUB_ACTIONS_ISSUER = 'https://token.actions.githubusercontent.com';

export interface OidcVerifierOptions {
  /** The issuer exactly as the tokens name it; default GitHub's. */
  issuer?: string;
  timeoutMs?: number;
  /** Clocks differ a little: how far past `exp` (and before `nbf`) a token still counts. Default 60 s. */
  clockToleranceSeconds?: number;
  /** How soon the keys are fetched again for a token that names a key we do not know; default 10 s. */
  minKeyRefetchMs?: number;
  fetch?: typeof fetch;
}

/** The claims of a GitHub Actions ID token that an approval reads. */
export interface ActionsTokenClaims {
  iss: string;
  aud: string | string[];
  sub: string;
  jti?: string;
  exp: number;
  iat: number;
  nbf?: number;
  repository: string;
  repository_owner: string;
  run_id: string;
  run_attempt?: string;
  actor: string;
  event_name: string;
  ref?: string;
  sha?: string;
  workflow?: string;
  workflow_ref?: string;
  environment?: string;
  [claim: string]: unknown;
}

export interface OidcTokenVerifier {
  readonly issuer: string;
  /** The token's claims once signature, issuer, audience and lifetime hold; IdentityRefusedError otherwise. */
  verify(token: string, expected: { audience: string; nowMs?: number }): Promise<ActionsTokenClaims>;
}

interface Jwks {
  keys: (JsonWebKey & { kid?: string; alg?: string; use?: string })[];
}

const MAX_TOKEN_LENGTH = 16_384;

function decodePart(part: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Reported below, the same way whatever was wrong.
  }
  throw new IdentityRefusedError(`the OIDC token's ${what} is not base64url JSON`);
}

export function createOidcTokenVerifier(options: OidcVerifierOptions = {}): OidcTokenVerifier {
  const issuer = (options.issuer ?? GITHUB_ACTIONS_ISSUER).replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 10_000;
  const tolerance = options.clockToleranceSeconds ?? 60;
  const minKeyRefetchMs = options.minKeyRefetchMs ?? 10_000;
  let keys: Map<string, KeyObject> | undefined;
  let fetchedAtMs = 0;

  async function fetchKeys(): Promise<Map<string, KeyObject>> {
    const discovery = await sendRequest({ service: 'OIDC issuer', method: 'GET', url: joinUrl(issuer, '.well-known/openid-configuration'), timeoutMs, secrets: [], fetch: options.fetch });
    const document = discovery.body as { issuer?: unknown; jwks_uri?: unknown } | undefined;
    if (document?.issuer !== issuer) throw new IdentityRefusedError(`the OIDC discovery document of ${issuer} names another issuer (${String(document?.issuer)})`);
    if (typeof document.jwks_uri !== 'string' || new URL(document.jwks_uri).origin !== new URL(issuer).origin) {
      // Keys from anywhere else would let whoever answers there sign tokens.
      throw new IdentityRefusedError(`the OIDC discovery document of ${issuer} points its keys (jwks_uri) away from the issuer`);
    }
    const answer = await sendRequest({ service: 'OIDC issuer', method: 'GET', url: document.jwks_uri, timeoutMs, secrets: [], fetch: options.fetch });
    const jwks = answer.body as Jwks | undefined;
    const found = new Map<string, KeyObject>();
    for (const jwk of Array.isArray(jwks?.keys) ? jwks.keys : []) {
      if (jwk.kty !== 'RSA' || typeof jwk.kid !== 'string' || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
      try {
        found.set(jwk.kid, createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' }));
      } catch {
        // A key we cannot read signs nothing we accept.
      }
    }
    fetchedAtMs = Date.now();
    keys = found;
    return found;
  }

  async function keyFor(kid: string): Promise<KeyObject> {
    let known = keys ?? (await fetchKeys());
    // A key we do not know may be one the issuer added since; a forged kid must not make us ask on every call.
    if (!known.has(kid) && Date.now() - fetchedAtMs >= minKeyRefetchMs) known = await fetchKeys();
    const key = known.get(kid);
    if (!key) throw new IdentityRefusedError(`the OIDC token is signed with key "${kid.slice(0, 64)}", which ${issuer} does not publish`);
    return key;
  }

  return {
    issuer,
    async verify(token, expected) {
      if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw new IdentityRefusedError('the OIDC token is not a JWT');
      const parts = token.split('.');
      if (parts.length !== 3 || parts.some((part) => !/^[A-Za-z0-9_-]+$/.test(part))) throw new IdentityRefusedError('the OIDC token is not a JWT');
      const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
      const header = decodePart(headerPart, 'header');
      if (header.alg !== 'RS256') throw new IdentityRefusedError(`the OIDC token is signed with ${JSON.stringify(header.alg)}; only RS256 is accepted`);
      if (typeof header.kid !== 'string' || !header.kid) throw new IdentityRefusedError('the OIDC token names no signing key (kid)');
      const key = await keyFor(header.kid);
      const signed = verify('RSA-SHA256', Buffer.from(`${headerPart}.${payloadPart}`), key, Buffer.from(signaturePart, 'base64url'));
      if (!signed) throw new IdentityRefusedError(`the OIDC token's signature does not verify with ${issuer}'s key "${header.kid}"`);

      const claims = decodePart(payloadPart, 'payload') as Partial<ActionsTokenClaims>;
      if (claims.iss !== issuer) throw new IdentityRefusedError(`the OIDC token was issued by ${JSON.stringify(claims.iss)}, not ${issuer}`);
      const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      if (!audiences.includes(expected.audience)) {
        throw new IdentityRefusedError(`the OIDC token is for audience ${JSON.stringify(claims.aud)}, not ${JSON.stringify(expected.audience)}`);
      }
      const now = Math.floor((expected.nowMs ?? Date.now()) / 1000);
      if (typeof claims.exp !== 'number' || claims.exp + tolerance < now) {
        throw new IdentityRefusedError(`the OIDC token expired at ${typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : 'an unknown time'}`);
      }
      if (typeof claims.nbf === 'number' && claims.nbf - tolerance > now) throw new IdentityRefusedError('the OIDC token is not valid yet');
      if (typeof claims.iat !== 'number') throw new IdentityRefusedError('the OIDC token does not say when it was issued');
      for (const name of ['sub', 'repository', 'repository_owner', 'run_id', 'actor', 'event_name'] as const) {
        if (typeof claims[name] !== 'string' || !claims[name]) throw new IdentityRefusedError(`the OIDC token has no ${name} claim`);
      }
      return claims as ActionsTokenClaims;
    },
  };
}
