/**
 * What a person signs to approve or reject a pipeline's promotion: one canonical text naming the pipeline, the
 * environment, the commit, the decision, the comment and the moment. The worker never reads it from the request:
 * it writes the same text from what it knows (its own pipeline ID and commit), so a signature made for another
 * pipeline, environment or commit cannot verify here. The CLI signs it with `ssh-keygen -Y sign`.
 */
export const DECISION_SIGNATURE_NAMESPACE = 'deploy-pipeline-decision';
const FORMAT = 'deploy-pipeline decision v1';

export interface DecisionStatement {
  pipelineId: string;
  environment: string;
  /** The full SHA of the release the decision is about. */
  commit: string;
  /** What the person does; `clear-hold` statements name the lane as the pipeline and the hold's `setAt` as the commit. */
  decision: 'approve' | 'reject' | 'deploy' | 'clear-hold';
  /** The approval's comment or the rejection's reason; empty when none. */
  comment?: string;
  /** When the person signed, ISO 8601 in UTC. */
  signedAt: string;
}

/** One line per field in a fixed order; JSON strings, so no value can add a line or end another. */
export function canonicalStatement(statement: DecisionStatement): string {
  return [
    FORMAT,
    `pipeline ${JSON.stringify(statement.pipelineId)}`,
    `environment ${JSON.stringify(statement.environment)}`,
    `commit ${JSON.stringify(statement.commit)}`,
    `decision ${JSON.stringify(statement.decision)}`,
    `comment ${JSON.stringify(statement.comment ?? '')}`,
    `signed-at ${JSON.stringify(statement.signedAt)}`,
    '',
  ].join('\n');
}

/** Why a signing time is not acceptable now: unreadable, too old to be a fresh decision, or from the future. */
export function signedAtRefusal(signedAt: string, nowMs: number, maxAgeMs: number, clockSkewMs = 60_000): string | undefined {
  const at = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/.test(signedAt) ? Date.parse(signedAt) : Number.NaN;
  if (Number.isNaN(at)) return `the signed statement's time ${JSON.stringify(signedAt.slice(0, 40))} is not an ISO 8601 UTC time`;
  if (at > nowMs + clockSkewMs) return `the statement was signed at ${signedAt}, in the future`;
  if (nowMs - at > maxAgeMs) return `the statement was signed at ${signedAt}, more than ${Math.round(maxAgeMs / 60_000)} minutes ago; sign a fresh one`;
  return undefined;
}
