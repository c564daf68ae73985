/** What the gate writes down: a decision as the status keeps it, and what an approval request says the release brings. */
import { shortSha } from '../common/names';
import type { Decision as DecisionRecord, EnvironmentStatus } from '../common/types';
import type { PendingDecision } from './approval-rules';

/** What the approval would put on the environment, in a line: how many commits, the newest few. */
export function changesLine(env: EnvironmentStatus): string {
  const { changes } = env;
  if (!changes || changes.total === 0) return '';
  const newest = changes.commits.slice(0, 3).map((c) => `${shortSha(c.sha)} ${c.message}${c.author ? ` (${c.author})` : ''}`);
  const more = changes.total > newest.length ? `, and ${changes.total - newest.length} more` : '';
  return `; it brings ${changes.total} commit${changes.total === 1 ? '' : 's'}: ${newest.join('; ')}${more}`;
}

/** What the status keeps of a decision: who, when, why, and how they were known. */
export function decisionRecord(decided: NonNullable<PendingDecision['approved'] | PendingDecision['rejected']>, comment: string | undefined): DecisionRecord {
  const { approver, at, channel, evidence, proofId } = decided;
  return { by: approver, at, ...(comment !== undefined ? { comment } : {}), channel, ...(evidence ? { evidence, proofId } : {}) };
}
