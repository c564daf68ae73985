/**
 * The temporal-principal channel: the worker's mapping of principals to GitHub logins, finding a decision's signal
 * event in a run's history, and what is concluded from the principal the server recorded on it, without a server;
 * then a pipeline on the tests' dev server, which records no principal. test/production-shape-principal.test.ts
 * runs the channel against Temporal server 1.31.2 with its JWT authorizer.
 */
import { defaultPayloadConverter, msNumberToTs } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { createIdentityVerifier } from '../adapters/identity-verifier';
import { createSignalPrincipalVerifier } from '../adapters/signal-principal';
import { nthSignalIn } from '../adapters/temporal-history';
import { IdentityRefusedError } from '../common/errors';
import type { IdentityQuestion, RecordedSignal, WorkflowHistory } from '../common/ports';
import { loadWorkerSettings, SettingsError, type Env } from '../common/settings';
import { parsePrincipalLogins } from '../common/temporal-principals';
import { approveSignal } from '../workflows/definitions';
import { createProductionDependencies } from '../worker/adapters';
import { startHarness, type PipelineHarness } from './support/pipeline';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

describe('DEPLOY_TEMPORAL_PRINCIPALS: which Temporal principal is which GitHub login', () => {
  const base: Env = { GITHUB_TOKEN: 't', ARGOCD_URL: 'http://a', ARGOCD_TOKEN: 't', RELEASE_URL: 'http://r', RELEASE_TOKEN: 't', CHARTS_REPO_URL: 'x' };
  const problems = (value: string): string[] => {
    try {
      loadWorkerSettings({ ...base, DEPLOY_TEMPORAL_PRINCIPALS: value });
      return [];
    } catch (err) {
      if (!(err instanceof SettingsError)) throw err;
      return err.message.split('\n').slice(1).map((line) => line.replace(/^\s*- /, ''));
    }
  };

  it('maps type:name to a login, entries split by commas or line breaks; unset or empty, the channel is off', () => {
    const { temporalPrincipals } = loadWorkerSettings({ ...base, DEPLOY_TEMPORAL_PRINCIPALS: ' jwt:alice@example.org=alice ,\njwt:auth0|42=bob-smith\n,users:a=b=carol' }).identity;
    expect(temporalPrincipals).toEqual(new Map([
      ['jwt:alice@example.org', 'alice'],
      ['jwt:auth0|42', 'bob-smith'],
      // The login follows the last "=": a name may hold one.
      ['users:a=b', 'carol'],
    ]));
    expect(loadWorkerSettings(base).identity.temporalPrincipals).toBeUndefined();
    expect(loadWorkerSettings({ ...base, DEPLOY_TEMPORAL_PRINCIPALS: '  ' }).identity.temporalPrincipals).toBeUndefined();
  });

  it('stops the start with a precise message for each entry it cannot read', () => {
    expect(problems('jwt:alice')).toEqual([
      'DEPLOY_TEMPORAL_PRINCIPALS: "jwt:alice" does not say which GitHub login it is: write <type>:<name>=<login>, such as jwt:alice@example.org=alice',
    ]);
    expect(problems('alice=alice')).toEqual([expect.stringMatching(/^DEPLOY_TEMPORAL_PRINCIPALS: "alice" is not a Temporal principal: write <type>:<name>/)]);
    expect(problems('jwt: =alice')).toEqual([expect.stringMatching(/"jwt:" is not a Temporal principal/)]);
    expect(problems('jwt:alice=not a login')).toEqual(['DEPLOY_TEMPORAL_PRINCIPALS: "not a login" (for jwt:alice) is not a GitHub login (letters, digits and hyphens, at most 39 characters)']);
    expect(problems('jwt:alice=alice,jwt:alice=mallory')).toEqual(['DEPLOY_TEMPORAL_PRINCIPALS: jwt:alice is mapped twice, to alice and to mallory']);
    expect(problems(',,')).toEqual(['DEPLOY_TEMPORAL_PRINCIPALS is set but maps no principal: unset it to turn the temporal-principal channel off']);
    // Every problem at once, not the first only.
    expect(problems('jwt:a,b=c')).toHaveLength(2);
    // The same principal twice with one login is no contradiction.
    expect(parsePrincipalLogins('jwt:a=Alice,jwt:a=alice').problems).toEqual([]);
  });
});

/** A history event as the server returns it: a signal with its payload and, where the server records one, a principal. */
function signalEvent(eventId: number, signalName: string, arg: unknown, principal?: { type: string; name: string }): HistoryEvent {
  return {
    eventId: eventId as unknown as HistoryEvent['eventId'],
    eventTime: msNumberToTs((1_800_000_000 + eventId) * 1000),
    workflowExecutionSignaledEventAttributes: { signalName, input: { payloads: [defaultPayloadConverter.toPayload(arg)] } },
    ...(principal ? { principal } : {}),
  };
}
const otherEvent = (eventId: number): HistoryEvent => ({ eventId: eventId as unknown as HistoryEvent['eventId'], workflowTaskCompletedEventAttributes: {} });

async function* pagesOf(...pages: HistoryEvent[][]): AsyncIterable<HistoryEvent[]> {
  yield* pages;
}

describe("finding a decision's signal in the run's history", () => {
  const mallory = { type: 'jwt', name: 'mallory' };
  const alice = { type: 'jwt', name: 'alice@example.org' };
  const pages = () =>
    pagesOf(
      [otherEvent(1), signalEvent(2, 'approve', { environment: 'production', approver: 'alice' }, mallory), signalEvent(3, 'reject', { environment: 'production', approver: 'x', reason: 'no' })],
      [otherEvent(4), signalEvent(5, 'approve', { environment: 'production', approver: 'alice' }, alice)],
    );

  it('is the n-th signal of its name, across pages, with its payload decoded and the principal the server recorded', async () => {
    await expect(nthSignalIn(pages(), 'approve', 2)).resolves.toEqual({
      eventId: '5',
      time: new Date((1_800_000_000 + 5) * 1000).toISOString(),
      args: [{ environment: 'production', approver: 'alice' }],
      principal: alice,
    });
    // The same payload sent before by someone else is another signal, with another place and another principal.
    await expect(nthSignalIn(pages(), 'approve', 1)).resolves.toMatchObject({ eventId: '2', principal: mallory });
    await expect(nthSignalIn(pages(), 'reject', 1)).resolves.toEqual(expect.not.objectContaining({ principal: expect.anything() }));
  });

  it('is nothing when the run has fewer, or the place is not a count', async () => {
    await expect(nthSignalIn(pages(), 'approve', 3)).resolves.toBeUndefined();
    await expect(nthSignalIn(pages(), 'approve', 0)).resolves.toBeUndefined();
    await expect(nthSignalIn(pages(), 'approve', 1.5)).resolves.toBeUndefined();
  });

  it('stops reading at the signal it looks for', async () => {
    let pagesRead = 0;
    async function* counted(): AsyncIterable<HistoryEvent[]> {
      for await (const page of pages()) {
        pagesRead++;
        yield page;
      }
    }
    await nthSignalIn(counted(), 'approve', 1);
    expect(pagesRead).toBe(1);
  });
});

describe("who sent a decision signal, from its event's principal", () => {
  const run = { workflowId: 'deploy-whitehall-abc', runId: 'run-1' };
  const question: IdentityQuestion = { pipelineId: run.workflowId, environment: 'production', commit: 'a'.repeat(40), action: 'approve', comment: 'ship it', claimedLogin: 'alice' };
  const logins = new Map([
    ['jwt:alice@example.org', 'alice'],
    ['jwt:carol-sub', 'carol'],
  ]);
  const recorded = (overrides: Partial<RecordedSignal> = {}): RecordedSignal => ({
    eventId: '17',
    time: '2027-01-15T10:00:00.000Z',
    args: [{ environment: 'production', approver: 'alice', comment: 'ship it' }],
    principal: { type: 'jwt', name: 'alice@example.org' },
    ...overrides,
  });
  function historyOf(signal: RecordedSignal | undefined): WorkflowHistory & { asked: unknown[] } {
    const asked: unknown[] = [];
    return {
      asked,
      async nthSignal(...args) {
        asked.push(args);
        return signal;
      },
    };
  }
  const refusal = async (promise: Promise<unknown>): Promise<string> => {
    const err = await promise.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityRefusedError);
    return (err as Error).message;
  };

  it("is the login the principal is mapped to, with the principal and the event as evidence, and the event as the proof's ID", async () => {
    const history = historyOf(recorded());
    const person = await createSignalPrincipalVerifier({ logins, history })(question, { ...run, name: 'approve', ordinal: 3 });
    expect(history.asked).toEqual([[{ ...run, name: 'approve', ordinal: 3 }, 'approve', 3]]);
    expect(person).toEqual({
      login: 'alice',
      channel: 'temporal-principal',
      proofId: 'temporal-principal:deploy-whitehall-abc:run-1:17',
      evidence: { principalType: 'jwt', principalName: 'alice@example.org', runId: 'run-1', eventId: '17', signal: 'approve', sentAt: '2027-01-15T10:00:00.000Z' },
    });
  });

  it('refuses a principal mapped to nobody, an event without one, and a sender who is not the person the signal names', async () => {
    const ask = (signal: RecordedSignal | undefined, q: IdentityQuestion = question) => createSignalPrincipalVerifier({ logins, history: historyOf(signal) })(q, { ...run, name: 'approve', ordinal: 1 });
    expect(await refusal(ask(recorded({ principal: { type: 'jwt', name: 'mallory' } })))).toBe('its sender, Temporal principal jwt:mallory, is mapped to no GitHub login (DEPLOY_TEMPORAL_PRINCIPALS)');
    expect(await refusal(ask(recorded({ principal: undefined })))).toMatch(/^the Temporal server recorded no principal for this signal \(it records one with an authorizer and frontend\.enablePrincipalPropagation on\)$/);
    // Another principal type with the same name is another principal.
    expect(await refusal(ask(recorded({ principal: { type: 'users', name: 'alice@example.org' } })))).toMatch(/Temporal principal users:alice@example\.org, is mapped to no GitHub login/);
    // The name a signal states is a claim: the principal says who sent it.
    const byCarol = recorded({ principal: { type: 'jwt', name: 'carol-sub' } });
    expect(await refusal(ask(byCarol))).toBe('it was sent by Temporal principal jwt:carol-sub, who is carol, not alice');
    await expect(ask(recorded({ principal: { type: 'jwt', name: 'carol-sub' }, args: [{ environment: 'production', approver: 'CAROL', comment: 'ship it' }] }), { ...question, claimedLogin: 'CAROL' })).resolves.toMatchObject({ login: 'carol' });
  });

  it('takes nothing from an event that is not the decision judged, or that does not exist', async () => {
    const ask = (signal: RecordedSignal | undefined, q: IdentityQuestion = question) => createSignalPrincipalVerifier({ logins, history: historyOf(signal) })(q, { ...run, name: 'approve', ordinal: 2 });
    const elsewhere = /^approve signal number 2 \(event 17\) says something else than the decision judged here$/;
    expect(await refusal(ask(recorded({ args: [{ environment: 'staging', approver: 'alice', comment: 'ship it' }] })))).toMatch(elsewhere);
    expect(await refusal(ask(recorded({ args: [{ environment: 'production', approver: 'alicia', comment: 'ship it' }] })))).toMatch(elsewhere);
    expect(await refusal(ask(recorded({ args: [{ environment: 'production', approver: 'alice', comment: 'other' }] })))).toMatch(elsewhere);
    expect(await refusal(ask(recorded({ args: [] })))).toMatch(elsewhere);
    // No comment and an empty or null one are the same decision.
    await expect(ask(recorded({ args: [{ environment: 'production', approver: 'alice', comment: null }] }), { ...question, comment: undefined })).resolves.toMatchObject({ login: 'alice' });
    // A rejection's text is its reason.
    const reject = { ...question, action: 'reject' as const, comment: 'broken' };
    await expect(ask(recorded({ args: [{ environment: 'production', approver: 'alice', reason: 'broken' }] }), reject)).resolves.toMatchObject({ login: 'alice' });
    expect(await refusal(ask(undefined))).toBe('run run-1 has no approve signal number 2 in its history');
  });

  it('is off without a mapping: a worker that sets none says so and reads no history', async () => {
    const history = historyOf(recorded());
    const verifier = createIdentityVerifier({
      oidc: { verifier: { issuer: 'https://issuer.invalid', verify: () => Promise.reject(new Error('unused')) }, audience: 'a', repositories: [], owners: [] },
      runs: { workflowRunById: () => Promise.reject(new Error('unused')) },
      signingKeys: { sshSigningKeys: () => Promise.reject(new Error('unused')) },
      ssh: { verify: () => Promise.reject(new Error('unused')) },
      signatureMaxAgeMs: 60_000,
      principals: { history },
    });
    expect(await refusal(verifier.signalSender(question, { ...run, name: 'approve', ordinal: 1 }))).toBe(
      'this worker maps no Temporal principal to a GitHub login (DEPLOY_TEMPORAL_PRINCIPALS is not set)',
    );
    expect(history.asked).toEqual([]);
  });
});

describe('on a server that records no principal (the dev server, 1.29)', () => {
  let h: PipelineHarness;
  beforeAll(async () => {
    h = await startHarness(
      { apps: { whitehall: { environments: { integration: {}, production: { continuousDeployment: false, approvers: ['alice'], identity: 'verified' } } } } },
      // The channel is on: the worker maps a principal, which this server never records.
      (stack) => createProductionDependencies(loadWorkerSettings({ ...stack.env, DEPLOY_TEMPORAL_PRINCIPALS: 'jwt:alice@example.org=alice' }), stack.catalogue, stack.env),
    );
  });
  afterAll(() => h?.close());

  it("refuses a decision signal with the reason, shown in the status, and the pipeline keeps waiting", async () => {
    const sha = await h.stack.merge('whitehall', { authorLogin: 'dora' });
    const { workflowId } = await h.startCi('whitehall', sha);
    await h.waitForStatus(workflowId, (s) => s.awaitingApprovalFor === 'production', 'the pipeline to wait at production');
    await h.handle(workflowId).signal(approveSignal, { environment: 'production', approver: 'alice' });
    const shown = await h.waitForStatus(workflowId, (s) => s.environments[1]?.refusedDecision !== undefined, 'the refusal to be shown');
    expect(shown.environments[1]!.refusedDecision).toEqual({
      claimedBy: 'alice',
      at: expect.any(String),
      reason: expect.stringMatching(
        /^production takes only verified decisions, and a name alone \("alice"\) proves nothing: .*; nor does the signal's Temporal principal prove it: the Temporal server recorded no principal for this signal \(it records one with an authorizer and frontend\.enablePrincipalPropagation on\)$/,
      ),
    });
    expect(shown).toMatchObject({ status: 'AWAITING_APPROVAL', awaitingApprovalFor: 'production' });
    expect(shown.environments[1]!.approval).toBeUndefined();
  });
});
