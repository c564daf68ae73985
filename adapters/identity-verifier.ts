import { createHash } from 'node:crypto';
import { canonicalStatement, DECISION_SIGNATURE_NAMESPACE, signedAtRefusal } from '../common/decision-statement';
import { IdentityRefusedError, PermanentHttpError } from '../common/errors';
import { validateApprover } from '../common/names';
import type { IdentityQuestion, IdentityVerifier, SourceHost } from '../common/ports';
import type { DecisionProof, VerifiedPerson } from '../common/types';
import type { OidcTokenVerifier } from './github-oidc';
import type { SigningKeyDirectory } from './github-signing-keys';
import { createSignalPrincipalVerifier, type SignalPrincipalOptions } from './signal-principal';
import type { SshSignatureVerifier } from './ssh-signatures';

/**
 * Who sent a decision, from what GitHub vouches for: an Actions run's OIDC token (the run GitHub says a person
 * started, titled for exactly this decision) or a statement signed with one of the person's SSH signing keys; or,
 * for a signal, from the principal the Temporal server recorded for its sender (signal-principal.ts).
 * The worker never takes the question from the proof: it writes the run title and the statement from what it
 * knows, so a proof made for another pipeline, environment, commit or action does not match.
 */
export interface IdentityVerifierOptions {
  oidc: {
    verifier: OidcTokenVerifier;
    audience: string;
    /** `owner/name`s whose Actions runs may send decisions; with `owners`, either is enough. None at all: no token counts. */
    repositories: readonly string[];
    owners: readonly string[];
  };
  runs: Pick<SourceHost, 'workflowRunById'>;
  signingKeys: SigningKeyDirectory;
  ssh: SshSignatureVerifier;
  /** How old a signed statement may be. */
  signatureMaxAgeMs: number;
  /** The temporal-principal channel; absent, or without logins, it is off. */
  principals?: SignalPrincipalOptions;
  now?: () => number;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The run-name the Actions workflow gives a run that makes this decision (examples/github-actions). */
export function expectedRunTitle(question: IdentityQuestion): string {
  if (question.action === 'deploy') return `deploy ${question.app} ${question.ref} to ${question.environment}`;
  return `${question.action} ${question.pipelineId} ${question.environment}`;
}

export function createIdentityVerifier(options: IdentityVerifierOptions): IdentityVerifier {
  const now = options.now ?? Date.now;
  const repositories = new Set(options.oidc.repositories.map((r) => r.toLowerCase()));
  const owners = new Set(options.oidc.owners.map((o) => o.toLowerCase()));

  function refuseClaimedOther(question: IdentityQuestion, login: string): void {
    if (question.claimedLogin && question.claimedLogin.toLowerCase() !== login.toLowerCase()) {
      throw new IdentityRefusedError(`the proof is ${login}'s, not ${question.claimedLogin}'s`);
    }
  }

  async function byActionsToken(question: IdentityQuestion, token: string): Promise<VerifiedPerson> {
    if (repositories.size === 0 && owners.size === 0) {
      throw new IdentityRefusedError('no repository may send decisions from GitHub Actions here (the worker sets neither DEPLOY_OIDC_REPOSITORIES nor DEPLOY_OIDC_OWNERS)');
    }
    const claims = await options.oidc.verifier.verify(token, { audience: options.oidc.audience, nowMs: now() });
    if (!repositories.has(claims.repository.toLowerCase()) && !owners.has(claims.repository_owner.toLowerCase())) {
      throw new IdentityRefusedError(`the OIDC token comes from ${claims.repository}, which may not send decisions here`);
    }
    if (claims.event_name !== 'workflow_dispatch') {
      throw new IdentityRefusedError(`the OIDC token comes from a run started by ${claims.event_name}, not by a person (workflow_dispatch)`);
    }
    const runId = Number(claims.run_id);
    if (!Number.isSafeInteger(runId) || runId <= 0) throw new IdentityRefusedError(`the OIDC token's run_id ${JSON.stringify(claims.run_id)} is not a run`);
    let run;
    try {
      run = await options.runs.workflowRunById(claims.repository, runId);
    } catch (err) {
      if (err instanceof PermanentHttpError && err.status === 404) throw new IdentityRefusedError(`GitHub has no run ${runId} in ${claims.repository}`);
      throw err;
    }
    const title = expectedRunTitle(question);
    if (run.displayTitle !== title) {
      throw new IdentityRefusedError(`the OIDC token is for run ${runId}, "${run.displayTitle.slice(0, 200)}", not for "${title}"`);
    }
    const attempt = String(run.runAttempt);
    if (claims.run_attempt !== undefined && claims.run_attempt !== attempt) {
      throw new IdentityRefusedError(`the OIDC token is for attempt ${claims.run_attempt} of run ${runId}; GitHub's run is at attempt ${attempt}`);
    }
    const login = run.triggeringActor ?? run.actor;
    if (!login) throw new IdentityRefusedError(`GitHub does not say who started run ${runId}`);
    refuseClaimedOther(question, login);
    const jti = typeof claims.jti === 'string' && claims.jti ? claims.jti : sha256(token);
    return {
      login: validateApprover(login),
      channel: 'github-actions',
      proofId: `github-actions:${claims.iss}:${jti}`,
      evidence: {
        issuer: claims.iss,
        repository: claims.repository,
        runId: String(runId),
        runAttempt: attempt,
        runTitle: run.displayTitle,
        jti,
        workflowRef: claims.workflow_ref ?? '',
        issuedAt: new Date(claims.iat * 1000).toISOString(),
        // A digest, never the token: a token kept in history would work until it expires.
        tokenSha256: sha256(token),
      },
    };
  }

  async function bySignature(question: IdentityQuestion, proof: Extract<DecisionProof, { channel: 'ssh-signature' }>): Promise<VerifiedPerson> {
    if (!question.claimedLogin) throw new IdentityRefusedError('a signed decision names the GitHub login whose key signed it');
    const login = validateApprover(question.claimedLogin);
    if (typeof proof.signedAt !== 'string') throw new IdentityRefusedError('the signed statement does not say when it was signed');
    const stale = signedAtRefusal(proof.signedAt, now(), options.signatureMaxAgeMs);
    if (stale) throw new IdentityRefusedError(stale);
    const statement = canonicalStatement({
      pipelineId: question.pipelineId,
      environment: question.environment,
      commit: question.commit,
      decision: question.action,
      comment: question.comment,
      signedAt: proof.signedAt,
    });
    const publicKeys = await options.signingKeys.sshSigningKeys(login);
    const { fingerprint } = await options.ssh.verify({ message: statement, signature: proof.signature, namespace: DECISION_SIGNATURE_NAMESPACE, login, publicKeys });
    return {
      login,
      channel: 'ssh-signature',
      proofId: `ssh-signature:${sha256(proof.signature)}`,
      evidence: { keyFingerprint: fingerprint, signedAt: proof.signedAt, statementSha256: sha256(statement), signature: proof.signature },
    };
  }

  return {
    signalSender: createSignalPrincipalVerifier(options.principals ?? {}),
    async verify(question, proof) {
      if (!proof || typeof proof !== 'object') throw new IdentityRefusedError('the proof is not {"channel": "github-actions", "token"} or {"channel": "ssh-signature", "signature", "signedAt"}');
      if (proof.channel === 'github-actions') return byActionsToken(question, proof.token);
      if (proof.channel === 'ssh-signature') return bySignature(question, proof);
      throw new IdentityRefusedError(`unknown proof channel ${JSON.stringify((proof as { channel?: unknown }).channel)}`);
    },
  };
}
