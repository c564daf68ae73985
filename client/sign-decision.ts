import { execFile } from 'node:child_process';
import { canonicalStatement, DECISION_SIGNATURE_NAMESPACE, type DecisionStatement } from '../common/decision-statement';

/**
 * Signs a decision with the person's SSH key, the one they sign git commits with: `ssh-keygen -Y sign` reads
 * the statement on standard input and writes the armored signature to standard output. `keyFile` is a private
 * key, or a public key whose private half an ssh-agent holds.
 */
export function signDecision(statement: DecisionStatement, keyFile: string, sshKeygen = 'ssh-keygen'): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(sshKeygen, ['-Y', 'sign', '-q', '-f', keyFile, '-n', DECISION_SIGNATURE_NAMESPACE], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ssh-keygen could not sign with ${keyFile}: ${(stderr || err.message).trim().split('\n')[0]}`));
      else resolve(stdout);
    });
    child.stdin?.end(canonicalStatement(statement));
  });
}
