import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { IdentityRefusedError } from '../common/errors';
import { validateApprover } from '../common/names';

/**
 * Checks SSH signatures (the SSHSIG format of `ssh-keygen -Y sign`, which git uses for signed commits) with
 * OpenSSH's own `ssh-keygen -Y verify`: every key type people sign commits with (Ed25519, ECDSA, RSA, security
 * keys) is checked by the tool that made the signature, not by a parser of ours.
 */
export interface SshSignatureCheck {
  /** The exact bytes that were signed. */
  message: string;
  /** The armored signature (`-----BEGIN SSH SIGNATURE-----` …). */
  signature: string;
  namespace: string;
  /** Who claims to have signed; the keys are theirs (GitHub's `GET /users/{login}/ssh_signing_keys`). */
  login: string;
  publicKeys: readonly string[];
}

export interface SshSignatureVerifier {
  /** The fingerprint of the key that made the signature; IdentityRefusedError when none of the keys did. */
  verify(check: SshSignatureCheck): Promise<{ fingerprint: string }>;
}

const PUBLIC_KEY = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$/;
const ARMOR = /^-----BEGIN SSH SIGNATURE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END SSH SIGNATURE-----\r?\n?$/;

function run(file: string, args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // ssh-keygen needs nothing of the worker's environment.
    const child = execFile(file, args, { env: { PATH: process.env.PATH ?? '' }, timeout: 10_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`could not run ${file}: ${err.message}`));
      else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
    child.stdin?.end(input);
  });
}

export function createSshSignatureVerifier(options: { sshKeygen?: string } = {}): SshSignatureVerifier {
  const sshKeygen = options.sshKeygen ?? 'ssh-keygen';
  return {
    async verify(check) {
      const login = validateApprover(check.login);
      if (!/^[a-z0-9][a-z0-9-]*$/i.test(check.namespace)) throw new Error(`invalid signature namespace ${JSON.stringify(check.namespace)}`);
      if (typeof check.signature !== 'string' || check.signature.length > 16_384 || !ARMOR.test(check.signature)) {
        throw new IdentityRefusedError('the signature is not an SSH signature (ssh-keygen -Y sign)');
      }
      const keys = check.publicKeys.map((key) => key.trim()).filter((key) => PUBLIC_KEY.test(key));
      if (keys.length === 0) throw new IdentityRefusedError(`${login} has no SSH signing key on GitHub`);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'ssh-verify-'));
      try {
        const allowedSigners = path.join(dir, 'allowed_signers');
        const signatureFile = path.join(dir, 'statement.sig');
        await writeFile(allowedSigners, keys.map((key) => `${login} namespaces="${check.namespace}" ${key.split(' ').slice(0, 2).join(' ')}\n`).join(''));
        await writeFile(signatureFile, check.signature);
        const answer = await run(sshKeygen, ['-Y', 'verify', '-f', allowedSigners, '-I', login, '-n', check.namespace, '-s', signatureFile], check.message);
        if (answer.code !== 0) {
          const why = (answer.stderr || answer.stdout).trim().split('\n')[0] ?? '';
          throw new IdentityRefusedError(`the signature is not by any of ${login}'s SSH signing keys on GitHub, or not over this statement (${why.slice(0, 200)})`);
        }
        const fingerprint = /key (SHA256:[A-Za-z0-9+/=]+)/.exec(answer.stdout)?.[1] ?? 'unknown';
        return { fingerprint };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
