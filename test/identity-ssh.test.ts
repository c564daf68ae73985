/**
 * Decisions signed with SSH keys, as people sign git commits: keys are made here with ssh-keygen, published as
 * signing keys in the GitHub simulator, and statements are signed and checked with ssh-keygen itself.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createGitHubSigningKeys, type SigningKeyDirectory } from '../adapters/github-signing-keys';
import { createSshSignatureVerifier } from '../adapters/ssh-signatures';
import { signDecision } from '../client/sign-decision';
import { canonicalStatement, DECISION_SIGNATURE_NAMESPACE, signedAtRefusal, type DecisionStatement } from '../common/decision-statement';
import { IdentityRefusedError } from '../common/errors';
import { GitHubSimulator } from '../simulators/github';

const TOKEN = `ghs_${randomBytes(12).toString('hex')}`;
const SHA = randomBytes(20).toString('hex');
let dir: string;
let github: GitHubSimulator;
let directory: SigningKeyDirectory;
const verifier = createSshSignatureVerifier();

/** A key pair made now: the private key's path and the public key's text. */
function keyPair(name: string, type: 'ed25519' | 'ecdsa' | 'rsa'): { file: string; publicKey: string; fingerprint: string } {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '3072'] : []), '-N', '', '-C', `${name}@laptop`, '-f', file]);
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  return { file, publicKey: readFileSync(`${file}.pub`, 'utf8').trim(), fingerprint };
}

function statement(overrides: Partial<DecisionStatement> = {}): DecisionStatement {
  return {
    pipelineId: `deploy-whitehall-${SHA}`,
    environment: 'production',
    commit: SHA,
    decision: 'approve',
    comment: 'looks good',
    signedAt: new Date().toISOString(),
    ...overrides,
  };
}

async function check(signed: DecisionStatement, signature: string, login: string, expected: DecisionStatement = signed) {
  return verifier.verify({
    message: canonicalStatement(expected),
    signature,
    namespace: DECISION_SIGNATURE_NAMESPACE,
    login,
    publicKeys: await directory.sshSigningKeys(login),
  });
}

async function refusal(work: Promise<unknown>): Promise<string> {
  const err = await work.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(IdentityRefusedError);
  return (err as Error).message;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'identity-ssh-'));
  github = new GitHubSimulator({ token: TOKEN });
  await github.start();
  directory = createGitHubSigningKeys({ token: TOKEN, baseUrl: github.url });
});
afterAll(async () => {
  await github.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('signed decisions', () => {
  it.each(['ed25519', 'ecdsa', 'rsa'] as const)('a statement signed with an %s key on the login verifies, naming the key', async (type) => {
    const alice = keyPair(`alice-${type}`, type);
    github.addSshSigningKey('alice', alice.publicKey, `laptop ${type}`);
    const signed = statement();
    const signature = await signDecision(signed, alice.file);
    expect(signature).toMatch(/^-----BEGIN SSH SIGNATURE-----/);
    await expect(check(signed, signature, 'alice')).resolves.toEqual({ fingerprint: alice.fingerprint });
  });

  it('refuses a signature by a key that is not on the login, however the name is claimed', async () => {
    const mallory = keyPair('mallory', 'ed25519');
    github.addSshSigningKey('mallory', mallory.publicKey);
    const signed = statement();
    const signature = await signDecision(signed, mallory.file);
    expect(await refusal(check(signed, signature, 'alice'))).toMatch(/^the signature is not by any of alice's SSH signing keys on GitHub, or not over this statement/);
    await expect(check(signed, signature, 'mallory')).resolves.toMatchObject({ fingerprint: mallory.fingerprint });
  });

  it.each([
    ['another environment', { environment: 'staging' }],
    ['another commit', { commit: randomBytes(20).toString('hex') }],
    ['another pipeline', { pipelineId: `deploy-whitehall-${SHA}-production-manual` }],
    ['the other decision', { decision: 'reject' as const }],
    ['another comment', { comment: 'looks good; also deploy search' }],
  ])('refuses a statement signed for %s', async (_what, changed) => {
    const bob = keyPair(`bob-${randomBytes(3).toString('hex')}`, 'ed25519');
    github.addSshSigningKey('bob', bob.publicKey);
    const signed = statement(changed);
    const signature = await signDecision(signed, bob.file);
    expect(await refusal(check(signed, signature, 'bob', statement({ signedAt: signed.signedAt })))).toMatch(/not over this statement/);
  });

  it('refuses a signature made for another purpose (git commits use the namespace "git")', async () => {
    const carol = keyPair('carol', 'ed25519');
    github.addSshSigningKey('carol', carol.publicKey);
    const signed = statement();
    const gitSignature = execFileSync('ssh-keygen', ['-Y', 'sign', '-q', '-f', carol.file, '-n', 'git'], { input: canonicalStatement(signed), encoding: 'utf8' });
    expect(await refusal(check(signed, gitSignature, 'carol'))).toMatch(/not over this statement/);
  });

  it('refuses a login with no signing keys, an unknown login, and text that is no signature', async () => {
    github.addUser('dave');
    expect(await refusal(check(statement(), '-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n', 'dave'))).toBe('dave has no SSH signing key on GitHub');
    expect(await refusal(directory.sshSigningKeys('nobody-at-all'))).toBe('GitHub has no user nobody-at-all');
    expect(await refusal(check(statement(), 'approved, honest', 'alice'))).toBe('the signature is not an SSH signature (ssh-keygen -Y sign)');
  });

  it('takes a statement signed within the allowed age, and refuses a stale one or one from the future', () => {
    const now = Date.parse('2026-12-01T12:00:00.000Z');
    expect(signedAtRefusal('2026-12-01T11:55:00.000Z', now, 15 * 60_000)).toBeUndefined();
    expect(signedAtRefusal('2026-12-01T11:00:00.000Z', now, 15 * 60_000)).toBe('the statement was signed at 2026-12-01T11:00:00.000Z, more than 15 minutes ago; sign a fresh one');
    expect(signedAtRefusal('2026-12-01T13:00:00.000Z', now, 15 * 60_000)).toBe('the statement was signed at 2026-12-01T13:00:00.000Z, in the future');
    expect(signedAtRefusal('yesterday', now, 15 * 60_000)).toBe('the signed statement\'s time "yesterday" is not an ISO 8601 UTC time');
  });

  it('writes one canonical text, so no comment can add or end a line', () => {
    const text = canonicalStatement(statement({ comment: 'ok\ndecision "reject"', signedAt: '2026-12-01T12:00:00.000Z' }));
    expect(text.split('\n')).toEqual([
      'deploy-pipeline decision v1',
      `pipeline "deploy-whitehall-${SHA}"`,
      'environment "production"',
      `commit "${SHA}"`,
      'decision "approve"',
      'comment "ok\\ndecision \\"reject\\""',
      'signed-at "2026-12-01T12:00:00.000Z"',
      '',
    ]);
  });
});
