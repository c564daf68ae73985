import { createHash, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { signJwt } from './github-oidc';
import { json, Simulator } from './http';

/**
 * An organisation's OpenID provider as a Temporal server with its JWT authorizer sees it: a JWKS
 * (`/.well-known/jwks`, the server's TEMPORAL_JWT_KEY_SOURCE1) and RS256 access tokens naming a person (`sub`) and
 * their Temporal permissions (`permissions`: `namespace:role`, `temporal-system:admin` for operators).
 */
export interface IdentityProviderSimulatorOptions {
  host?: string;
  port?: number;
}

export interface AccessTokenRequest {
  subject: string;
  /** e.g. `['default:write']`; the server's default claim mapper reads the `permissions` claim. */
  permissions: string[];
  /** Default 3600 s. */
  lifetimeSeconds?: number;
}

export class IdentityProviderSimulator extends Simulator {
  private readonly privateKey: KeyObject;
  private readonly jwk: Record<string, unknown>;

  constructor(options: IdentityProviderSimulatorOptions = {}) {
    super({ host: options.host, port: options.port });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const exported = publicKey.export({ format: 'jwk' }) as { n: string; e: string };
    const kid = createHash('sha256').update(`${exported.e}.${exported.n}`).digest('hex').slice(0, 16);
    this.privateKey = privateKey;
    this.jwk = { kty: 'RSA', alg: 'RS256', use: 'sig', kid, n: exported.n, e: exported.e };
    this.server.route('GET', /^\/\.well-known\/jwks$/, () => json(200, { keys: [this.jwk] }));
  }

  get jwksUrl(): string {
    return `${this.url}/.well-known/jwks`;
  }

  mintAccessToken(request: AccessTokenRequest): string {
    const iat = Math.floor(Date.now() / 1000);
    const claims = { iss: this.url, sub: request.subject, jti: randomUUID(), permissions: request.permissions, iat, nbf: iat - 5, exp: iat + (request.lifetimeSeconds ?? 3600) };
    return signJwt({ typ: 'JWT', alg: 'RS256', kid: this.jwk.kid }, claims, this.privateKey);
  }
}
