import type { DecisionStatement } from '../common/decision-statement';
import type { DecisionProof } from '../common/types';
import { signDecision } from './sign-decision';

/**
 * Where the CLI gets its proof of who is deciding: an OIDC token GitHub Actions gave the job (the approve and
 * deploy workflows pass it), or the person's SSH signing key, the one they sign git commits with.
 */
export interface ProofSource {
  oidcToken?: string;
  /** A private key file, or a public key whose private half an ssh-agent holds. */
  signingKey?: string;
}

/** The proof for this statement; none when the person gave no way to make one (a name alone). */
export async function proveStatement(source: ProofSource, statement: Omit<DecisionStatement, 'signedAt'>): Promise<DecisionProof | undefined> {
  if (source.oidcToken) return { channel: 'github-actions', token: source.oidcToken };
  if (!source.signingKey) return undefined;
  const signedAt = new Date().toISOString();
  const signature = await signDecision({ ...statement, signedAt }, source.signingKey);
  return { channel: 'ssh-signature', signature, signedAt };
}
