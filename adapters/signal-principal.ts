/**
 * The `temporal-principal` channel: who sent a decision signal, from the principal the Temporal server verified and
 * recorded on the signal's history event, mapped to a GitHub login by the worker's settings.
 *
 * Which event is the decision's: the workflow counts the decision signals of each name as its handler receives
 * them, and the server delivers a run's signals to it once each, in history order, so "the n-th `approve` signal
 * of this run" names one event and no other, however many signals anyone else sends (each takes its own place in
 * the count). Signal handlers are not told event IDs, but replay makes the count the same every time. The event's
 * payload must also be the very decision the workflow is judging, or nothing is taken from it.
 */
import { IdentityRefusedError } from '../common/errors';
import { validateApprover } from '../common/names';
import type { DecisionSignal, IdentityQuestion, RecordedSignal, WorkflowHistory } from '../common/ports';
import { principalKey } from '../common/temporal-principals';
import type { VerifiedPerson } from '../common/types';

export interface SignalPrincipalOptions {
  /** `type:name` → GitHub login; undefined: the channel is off. */
  logins?: ReadonlyMap<string, string>;
  history?: WorkflowHistory;
}

const orNone = (value: unknown) => (value === null || value === undefined || value === '' ? undefined : value);

/** Whether the recorded signal says exactly what the workflow judges: the environment, the name, the comment or reason. */
function saysTheSame(signal: RecordedSignal, question: IdentityQuestion): boolean {
  const [sent] = signal.args;
  if (!sent || typeof sent !== 'object') return false;
  const { environment, approver, comment, reason } = sent as Record<string, unknown>;
  const text = question.action === 'reject' ? reason : comment;
  return environment === question.environment && approver === question.claimedLogin && orNone(text) === orNone(question.comment);
}

export function createSignalPrincipalVerifier(options: SignalPrincipalOptions) {
  return async function signalSender(question: IdentityQuestion, signal: DecisionSignal): Promise<VerifiedPerson> {
    const { logins, history } = options;
    if (!logins || !history) throw new IdentityRefusedError('this worker maps no Temporal principal to a GitHub login (DEPLOY_TEMPORAL_PRINCIPALS is not set)');
    const recorded = await history.nthSignal(signal, signal.name, signal.ordinal);
    if (!recorded) throw new IdentityRefusedError(`run ${signal.runId} has no ${signal.name} signal number ${signal.ordinal} in its history`);
    if (!saysTheSame(recorded, question)) {
      throw new IdentityRefusedError(`${signal.name} signal number ${signal.ordinal} (event ${recorded.eventId}) says something else than the decision judged here`);
    }
    const { principal } = recorded;
    if (!principal?.type || !principal.name) {
      throw new IdentityRefusedError('the Temporal server recorded no principal for this signal (it records one with an authorizer and frontend.enablePrincipalPropagation on)');
    }
    const key = principalKey(principal);
    const login = logins.get(key);
    if (!login) throw new IdentityRefusedError(`its sender, Temporal principal ${key.slice(0, 200)}, is mapped to no GitHub login (DEPLOY_TEMPORAL_PRINCIPALS)`);
    if (question.claimedLogin && question.claimedLogin.toLowerCase() !== login.toLowerCase()) {
      throw new IdentityRefusedError(`it was sent by Temporal principal ${key.slice(0, 200)}, who is ${login}, not ${question.claimedLogin}`);
    }
    return {
      login: validateApprover(login),
      channel: 'temporal-principal',
      proofId: `temporal-principal:${signal.workflowId}:${signal.runId}:${recorded.eventId}`,
      evidence: {
        principalType: principal.type,
        principalName: principal.name,
        runId: signal.runId,
        eventId: recorded.eventId,
        signal: signal.name,
        ...(recorded.time ? { sentAt: recorded.time } : {}),
      },
    };
  };
}
