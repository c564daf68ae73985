/**
 * GitHub Actions OIDC tokens verified against the issuer's published keys: the OIDC simulator makes a fresh RSA
 * key pair when it starts and signs tokens shaped as GitHub's; forgeries are made here with keys of our own.
 */
import { generateKeyPairSync } from 'node:crypto';
import { IdentityRefusedError, TransientHttpError } from '../common/errors';
import { createOidcTokenVerifier, type OidcTokenVerifier } from '../adapters/github-oidc';
import { GitHubOidcSimulator, signJwt, type ActionsTokenRequest } from '../simulators/github-oidc';

const AUDIENCE = 'durable-deploy-pipelines';
const RUN: ActionsTokenRequest = { repository: 'alphagov/whitehall', audience: AUDIENCE, runId: 4242, actor: 'alice' };

let issuer: GitHubOidcSimulator;
let verifier: OidcTokenVerifier;

beforeEach(async () => {
  issuer = new GitHubOidcSimulator();
  await issuer.start();
  verifier = createOidcTokenVerifier({ issuer: issuer.issuer, minKeyRefetchMs: 0 });
});
afterEach(() => issuer.close());

async function refusal(token: string, audience = AUDIENCE): Promise<string> {
  const err = await verifier.verify(token, { audience }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(IdentityRefusedError);
  return (err as Error).message;
}

/** The parts of a token, to tamper with. */
function parts(token: string): { header: Record<string, unknown>; claims: Record<string, unknown>; signature: string } {
  const [header, claims, signature] = token.split('.') as [string, string, string];
  const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  return { header: decode(header), claims: decode(claims), signature };
}
const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('OIDC token verification', () => {
  it('accepts a token the issuer signed for our audience and returns what it says about the run', async () => {
    const claims = await verifier.verify(issuer.mintToken({ ...RUN, eventName: 'workflow_dispatch' }), { audience: AUDIENCE });
    expect(claims).toMatchObject({
      iss: issuer.issuer,
      aud: AUDIENCE,
      repository: 'alphagov/whitehall',
      repository_owner: 'alphagov',
      run_id: '4242',
      actor: 'alice',
      event_name: 'workflow_dispatch',
      sub: 'repo:alphagov/whitehall:ref:refs/heads/main',
    });
    expect(claims.jti).toBe(issuer.minted[0]!.jti);
  });

  it('refuses an expired token, one for another audience, and one not valid yet', async () => {
    const anHourAgo = Math.floor(Date.now() / 1000) - 3600;
    expect(await refusal(issuer.mintToken({ ...RUN, issuedAt: anHourAgo }))).toMatch(/^the OIDC token expired at \d{4}-/);
    expect(await refusal(issuer.mintToken({ ...RUN, audience: 'https://github.com/alphagov' }))).toBe(
      `the OIDC token is for audience "https://github.com/alphagov", not "${AUDIENCE}"`,
    );
    expect(await refusal(issuer.mintToken({ ...RUN, issuedAt: Math.floor(Date.now() / 1000) + 3600 }))).toBe('the OIDC token is not valid yet');
  });

  it('refuses a token signed with another key under the issuer’s key ID, and a tampered one', async () => {
    const genuine = parts(issuer.mintToken(RUN));
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = signJwt(genuine.header, { ...genuine.claims, actor: 'mallory' }, privateKey);
    expect(await refusal(forged)).toMatch(/^the OIDC token's signature does not verify with .*'s key "[0-9A-F]+"$/);

    const tampered = `${encode(genuine.header)}.${encode({ ...genuine.claims, repository: 'alphagov/other' })}.${genuine.signature}`;
    expect(await refusal(tampered)).toMatch(/signature does not verify/);
  });

  it('refuses alg none and HS256 before using any key', async () => {
    const { header, claims } = parts(issuer.mintToken(RUN));
    expect(await refusal(`${encode({ ...header, alg: 'none' })}.${encode(claims)}.AAAA`)).toBe('the OIDC token is signed with "none"; only RS256 is accepted');
    expect(await refusal(`${encode({ ...header, alg: 'HS256' })}.${encode(claims)}.AAAA`)).toBe('the OIDC token is signed with "HS256"; only RS256 is accepted');
    expect(await refusal('not-a-token')).toBe('the OIDC token is not a JWT');
  });

  it('refuses a token from another issuer', async () => {
    const elsewhere = new GitHubOidcSimulator();
    await elsewhere.start();
    try {
      expect(await refusal(elsewhere.mintToken(RUN))).toMatch(/^the OIDC token is signed with key "[0-9A-F]+", which http:\/\/127\.0\.0\.1:\d+ does not publish$/);
    } finally {
      await elsewhere.close();
    }
  });

  it('follows the issuer’s key rotation: new tokens verify, and so do older ones while the old key is published', async () => {
    const before = issuer.mintToken(RUN);
    await verifier.verify(before, { audience: AUDIENCE });
    issuer.rotateKey();
    const after = issuer.mintToken(RUN);
    await expect(verifier.verify(after, { audience: AUDIENCE })).resolves.toMatchObject({ run_id: '4242' });
    await expect(verifier.verify(before, { audience: AUDIENCE })).resolves.toMatchObject({ run_id: '4242' });
    issuer.forgetOldKeys();
    const fresh = createOidcTokenVerifier({ issuer: issuer.issuer });
    await expect(fresh.verify(before, { audience: AUDIENCE })).rejects.toThrow(/does not publish/);
  });

  it('does not take keys from anywhere the discovery document points', async () => {
    issuer.injectFault({ pathPattern: 'openid-configuration', status: 200, body: { issuer: issuer.issuer, jwks_uri: 'http://127.0.0.1:9/keys' } });
    expect(await refusal(issuer.mintToken(RUN))).toMatch(/points its keys \(jwks_uri\) away from the issuer$/);
  });

  it('an issuer that cannot be reached is a transient failure, not a refusal', async () => {
    issuer.injectFault({ pathPattern: 'openid-configuration', status: 503 });
    const err = await verifier.verify(issuer.mintToken(RUN), { audience: AUDIENCE }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientHttpError);
    // Once it answers again, the same token verifies.
    await expect(verifier.verify(issuer.mintToken(RUN), { audience: AUDIENCE })).resolves.toMatchObject({ actor: 'alice' });
  });
});
