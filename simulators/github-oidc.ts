import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { json, Simulator, type SimResponse } from './http';

/**
 * GitHub Actions' OIDC issuer (token.actions.githubusercontent.com): the discovery document, the JWKS, and ID
 * tokens shaped as a job gets them (`core.getIDToken(audience)`), signed RS256 with a key pair made when the
 * simulator starts. Keys rotate as GitHub's do: the JWKS keeps the previous key for a while, and a token names
 * its key by `kid`.
 */
export interface GitHubOidcSimulatorOptions {
  host?: string;
  port?: number;
}

/** What a job's token says about the run that asked for it. */
export interface ActionsTokenRequest {
  /** `owner/name`. */
  repository: string;
  audience: string;
  runId: number;
  /** Who started the run (the `actor` claim). */
  actor: string;
  eventName?: string;
  /** e.g. `refs/heads/main`. */
  ref?: string;
  sha?: string;
  /** The workflow's name, and its file for `workflow_ref`. */
  workflow?: string;
  workflowFile?: string;
  environment?: string;
  runAttempt?: number;
  /** Seconds since the epoch; default now. */
  issuedAt?: number;
  /** Default 300 s, as GitHub's. */
  lifetimeSeconds?: number;
}

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function makeKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const exported = publicKey.export({ format: 'jwk' }) as { n: string; e: string };
  // GitHub's kids are thumbprints of the key; any stable identifier does.
  const kid = createHash('sha256').update(`${exported.e}.${exported.n}`).digest('hex').slice(0, 40).toUpperCase();
  return { kid, privateKey, jwk: { kty: 'RSA', alg: 'RS256', use: 'sig', kid, n: exported.n, e: exported.e } };
}

export class GitHubOidcSimulator extends Simulator {
  private keys: SigningKey[] = [makeKey()];
  /** Every token minted, for assertions. */
  readonly minted: { jti: string; claims: Record<string, unknown> }[] = [];

  constructor(options: GitHubOidcSimulatorOptions = {}) {
    super({ host: options.host, port: options.port });
    this.server.route('GET', /^\/\.well-known\/openid-configuration$/, () => this.discovery());
    this.server.route('GET', /^\/\.well-known\/jwks$/, () => json(200, { keys: this.keys.map((key) => key.jwk) }));
  }

  /** The issuer is this server, as GitHub's issuer is its own host. */
  get issuer(): string {
    return this.url;
  }

  /** A new signing key; the JWKS keeps the previous one, so tokens signed before still verify. */
  rotateKey(): void {
    this.keys = [makeKey(), ...this.keys.slice(0, 1)];
  }

  /** Drops every key but the newest, as an issuer does once old tokens have expired. */
  forgetOldKeys(): void {
    this.keys = this.keys.slice(0, 1);
  }

  mintToken(request: ActionsTokenRequest): string {
    const key = this.keys[0]!;
    const iat = request.issuedAt ?? Math.floor(Date.now() / 1000);
    const [owner = ''] = request.repository.split('/');
    const ref = request.ref ?? 'refs/heads/main';
    const workflowFile = request.workflowFile ?? 'approve.yml';
    const jti = randomUUID();
    const claims: Record<string, unknown> = {
      jti,
      sub: request.environment ? `repo:${request.repository}:environment:${request.environment}` : `repo:${request.repository}:ref:${ref}`,
      aud: request.audience,
      ref,
      sha: request.sha ?? '0'.repeat(40),
      repository: request.repository,
      repository_owner: owner,
      repository_owner_id: '65',
      repository_id: '74',
      repository_visibility: 'private',
      actor: request.actor,
      actor_id: '12',
      run_id: String(request.runId),
      run_number: '10',
      run_attempt: String(request.runAttempt ?? 1),
      runner_environment: 'github-hosted',
      workflow: request.workflow ?? 'Approve a deploy',
      workflow_ref: `${request.repository}/.github/workflows/${workflowFile}@${ref}`,
      job_workflow_ref: `${request.repository}/.github/workflows/${workflowFile}@${ref}`,
      event_name: request.eventName ?? 'workflow_dispatch',
      ref_type: 'branch',
      head_ref: '',
      base_ref: '',
      ...(request.environment ? { environment: request.environment } : {}),
      iss: this.issuer,
      nbf: iat - 5,
      iat,
      exp: iat + (request.lifetimeSeconds ?? 300),
    };
    this.minted.push({ jti, claims });
    return signJwt({ typ: 'JWT', alg: 'RS256', kid: key.kid }, claims, key.privateKey);
  }

  private discovery(): SimResponse {
    return json(200, {
      issuer: this.issuer,
      jwks_uri: `${this.issuer}/.well-known/jwks`,
      subject_types_supported: ['public', 'pairwise'],
      response_types_supported: ['id_token'],
      claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'ref', 'repository', 'repository_owner', 'run_id', 'actor', 'event_name', 'workflow'],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid'],
    });
  }
}

/** A compact JWS: what the issuer signs, and what a test may sign with a key of its own to forge one. */
export function signJwt(header: Record<string, unknown>, claims: Record<string, unknown>, privateKey: KeyObject): string {
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  return `${signingInput}.${base64url(sign('RSA-SHA256', Buffer.from(signingInput), privateKey))}`;
}
