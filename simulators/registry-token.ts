import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { json, sameSecret, Simulator, type SimRequest, type SimResponse } from './http';
import { signJwt } from './github-oidc';

/**
 * The token service of a registry that uses Docker's token authentication (GitHub's container registry, Docker
 * Hub, and the CNCF Distribution registry configured with `auth.token`): `GET /token?service=…&scope=…`, with
 * Basic credentials or none, answers a JWT granting the actions this user may do on the repository. The registry
 * checks the token with the keys written to `jwksPath` (its `auth.token.jwks`).
 */
export interface RegistryTokenSimulatorOptions {
  /** The registry's `auth.token.service` (the token's audience) and `issuer`. */
  service: string;
  issuer: string;
  /** Where to write the public keys the registry trusts. */
  jwksPath: string;
  /** Users and what they may do: `pull` or `pull,push`, on every repository. */
  users: Record<string, { password: string; actions: ('pull' | 'push')[] }>;
  /** What anyone without credentials may do; default nothing. */
  anonymous?: ('pull' | 'push')[];
  host?: string;
  port?: number;
}

export class RegistryTokenSimulator extends Simulator {
  private readonly privateKey;
  private readonly kid: string;
  /** Who asked for which scope, and what they were granted. */
  readonly grants: { user: string | undefined; scope: string; granted: string[] }[] = [];

  constructor(private readonly options: RegistryTokenSimulatorOptions) {
    super({ host: options.host, port: options.port });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' }) as { n: string; e: string };
    this.kid = createHash('sha256').update(jwk.n).digest('hex').slice(0, 16);
    writeFileSync(options.jwksPath, JSON.stringify({ keys: [{ kty: 'RSA', use: 'sig', alg: 'RS256', kid: this.kid, n: jwk.n, e: jwk.e }] }));
    this.server.route('GET', /^\/token$/, (req) => this.issue(req));
  }

  get realm(): string {
    return `${this.url}/token`;
  }

  private issue(req: SimRequest): SimResponse {
    const header = String(req.headers.authorization ?? '');
    let user: string | undefined;
    let allowed = this.options.anonymous ?? [];
    if (header) {
      const decoded = /^Basic (.+)$/.exec(header) ? Buffer.from(header.slice(6), 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      const login = decoded.slice(0, colon);
      const account = colon > 0 ? this.options.users[login] : undefined;
      if (!account || !sameSecret(decoded.slice(colon + 1), account.password)) {
        return json(401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, { 'www-authenticate': 'Basic realm="registry token"' });
      }
      user = login;
      allowed = account.actions;
    }
    if (req.query.get('service') !== this.options.service) return json(400, { errors: [{ code: 'DENIED', message: 'unknown service' }] });
    const access = req.query.getAll('scope').flatMap((scope) => {
      const [type, name, actions = ''] = scope.split(':');
      if (type !== 'repository' || !name) return [];
      const granted = actions.split(',').filter((action): action is 'pull' | 'push' => (action === 'pull' || action === 'push') && allowed.includes(action));
      this.grants.push({ user, scope, granted });
      return [{ type, name, actions: granted }];
    });
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: this.options.issuer, sub: user ?? '', aud: this.options.service, exp: now + 300, nbf: now - 5, iat: now, jti: randomUUID(), access };
    const token = signJwt({ typ: 'JWT', alg: 'RS256', kid: this.kid }, claims, this.privateKey);
    return json(200, { token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() });
  }
}
