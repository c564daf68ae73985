import type { EnvironmentPlan } from '../common/types';
import {
  alreadyDecided,
  approvalRefusal,
  type GateView,
  invalidApprover,
  malformedDecision,
  MAX_DECISION_TEXT,
  notAnApprover,
  notAwaiting,
  replayedProof,
  selfApproval,
  unverifiedDecision,
  teamRefusal,
  wrongEnvironment,
} from '../workflows/approval-rules';

/** The approval gate's refusal rules, without a server: the pipeline only asks them. */
const SHA = '1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b';
const ID = 'deploy-whitehall-1a2b3c4';

function production(overrides: Partial<EnvironmentPlan> = {}): EnvironmentPlan {
  return {
    name: 'production',
    continuousDeployment: false,
    needsApproval: true,
    approvers: ['anyone'],
    allowSelfApproval: false,
    identity: 'claimed',
    deployers: ['anyone'],
    hasDeployWindows: false,
    syncTimeoutMs: 60_000,
    ...overrides,
  };
}

/** A pipeline waiting for approval to deploy to production, written by dora. */
function awaiting(overrides: Partial<GateView> = {}): GateView {
  return {
    workflowId: ID,
    status: 'AWAITING_APPROVAL',
    environments: [
      { environment: 'staging', state: 'DEPLOYED' },
      { environment: 'production', state: 'AWAITING_APPROVAL' },
    ],
    pending: { environment: 'production', newer: [] },
    environmentPlan: production(),
    sha: SHA,
    authorLogin: 'dora',
    ...overrides,
  };
}

const approve = (approver = 'alice', environment = 'production') => ({ environment, approver });

describe('approval refusal rules', () => {
  it('let an allowed approver through', () => {
    expect(approvalRefusal(approve(), 'approved', awaiting())).toBeUndefined();
    expect(approvalRefusal({ ...approve(), reason: 'breaks search' } as never, 'rejected', awaiting())).toBeUndefined();
  });

  describe('wrong environment', () => {
    it('names the environment the pipeline waits for', () => {
      const refusal = 'pipeline deploy-whitehall-1a2b3c4 is awaiting approval for production, not staging-2';
      expect(wrongEnvironment(approve('alice', 'staging-2'), awaiting())).toBe(refusal);
      expect(approvalRefusal(approve('alice', 'staging-2'), 'approved', awaiting())).toBe(refusal);
      expect(wrongEnvironment(approve(), awaiting())).toBeUndefined();
    });
  });

  describe('not awaiting', () => {
    it('says the pipeline waits for no approval, with its status', () => {
      const running = awaiting({ status: 'DEPLOYING', pending: undefined, environmentPlan: undefined });
      expect(notAwaiting(running)).toBe(`pipeline ${ID} is not awaiting approval (status DEPLOYING)`);
      expect(approvalRefusal(approve(), 'approved', running)).toBe(`pipeline ${ID} is not awaiting approval (status DEPLOYING)`);
      expect(notAwaiting(awaiting())).toBeUndefined();
    });
  });

  describe('already decided', () => {
    it('names the first decision while the pipeline still waits', () => {
      const approved = awaiting({ pending: { environment: 'production', newer: [], approved: { ...approve('bob'), at: '2026-01-01T00:00:00Z', channel: 'claimed' } } });
      expect(alreadyDecided(approve(), approved)).toBe('production was already approved by bob');
      const rejected = awaiting({ pending: { environment: 'production', newer: [], rejected: { ...approve('carol'), reason: 'not today', at: '2026-01-01T00:00:00Z', channel: 'claimed' } } });
      expect(approvalRefusal(approve(), 'approved', rejected)).toBe('production was already rejected by carol: not today');
    });

    it('names the first decision once the pipeline has moved on, before saying it waits for nothing', () => {
      const done = awaiting({
        status: 'SUCCEEDED',
        pending: undefined,
        environments: [
          { environment: 'staging', state: 'DEPLOYED', approval: { by: 'bob', at: '2026-01-01T00:00:00Z' } },
          { environment: 'production', state: 'REJECTED', rejection: { by: 'carol', at: '2026-01-01T00:00:00Z', comment: 'breaks search' } },
        ],
      });
      expect(approvalRefusal(approve('alice', 'staging'), 'approved', done)).toBe('staging was already approved by bob');
      expect(approvalRefusal(approve(), 'approved', done)).toBe('production was already rejected by carol: breaks search');
    });

    it('does not name a decision in another environment than the one asked about', () => {
      const approved = awaiting({ pending: { environment: 'production', newer: [], approved: { ...approve('bob'), at: '2026-01-01T00:00:00Z', channel: 'claimed' } } });
      expect(alreadyDecided(approve('alice', 'staging'), approved)).toBeUndefined();
    });
  });

  describe('not an approver', () => {
    it('refuses a login missing from a list of logins, whatever its case', () => {
      const view = awaiting({ environmentPlan: production({ approvers: ['Alice', 'bob'] }) });
      expect(notAnApprover(approve('mallory'), ['Alice', 'bob'])).toBe('mallory may not approve deploys to production (approvers: Alice, bob)');
      expect(approvalRefusal(approve('mallory'), 'approved', view)).toBe('mallory may not approve deploys to production (approvers: Alice, bob)');
      expect(approvalRefusal(approve('ALICE'), 'approved', view)).toBeUndefined();
    });

    it('lets anyone approve only where the list says anyone, and leaves lists with teams to the team check', () => {
      expect(notAnApprover(approve('mallory'), ['anyone'])).toBeUndefined();
      expect(notAnApprover(approve('mallory'), ['alice', '@alphagov/release-managers'])).toBeUndefined();
    });

    it('fails closed: an empty list lets nobody, except in plans recorded before lists had to be written out', () => {
      expect(notAnApprover(approve('mallory'), [])).toBe('nobody may approve deploys to production: the catalogue names no approvers');
      expect(notAnApprover(approve('mallory'), [], true)).toBeUndefined();
      const legacy = { ...production({ approvers: [] }), identity: undefined } as unknown as EnvironmentPlan;
      expect(approvalRefusal(approve('mallory'), 'approved', awaiting({ environmentPlan: legacy }))).toBeUndefined();
      expect(approvalRefusal(approve('mallory'), 'approved', awaiting({ environmentPlan: production({ approvers: [] }) }))).toMatch(/^nobody may approve/);
    });

    it('refuses a login that is not a GitHub login before looking any further', () => {
      expect(invalidApprover(approve('not a login'))).toMatch(/^invalid approver "not a login"/);
      expect(approvalRefusal(approve('not a login'), 'approved', awaiting({ pending: undefined }))).toMatch(/^invalid approver/);
    });
  });

  describe('team', () => {
    const approvers = ['alice', '@alphagov/release-managers', '@alphagov/leads'];

    it('asks one team after another until one has the approver', async () => {
      const asked: string[] = [];
      const isMember = async (team: string) => {
        asked.push(team);
        return team === '@alphagov/release-managers';
      };
      expect(await teamRefusal(approve('erin'), approvers, isMember)).toBeUndefined();
      expect(asked).toEqual(['@alphagov/release-managers']);
    });

    it('refuses someone in none of the teams, naming every approver', async () => {
      const asked: string[] = [];
      const isMember = async (team: string) => (asked.push(team), false);
      expect(await teamRefusal(approve('mallory'), approvers, isMember)).toBe(
        'mallory may not approve deploys to production (approvers: alice, @alphagov/release-managers, @alphagov/leads)',
      );
      expect(asked).toEqual(['@alphagov/release-managers', '@alphagov/leads']);
    });

    it('asks nobody for an approver listed by login, or when no team is listed', async () => {
      const isMember = jest.fn(async () => false);
      expect(await teamRefusal(approve('ALICE'), approvers, isMember)).toBeUndefined();
      expect(await teamRefusal(approve('mallory'), ['alice'], isMember)).toBeUndefined();
      expect(isMember).not.toHaveBeenCalled();
    });
  });

  describe('verified identity', () => {
    const verifiedPlan = production({ identity: 'verified' });
    it('refuses a bare name where decisions must be proved, and takes one with a proof or verified by the gate', () => {
      const view = awaiting({ environmentPlan: verifiedPlan });
      expect(unverifiedDecision(approve('alice'), view)).toMatch(/^production takes only verified decisions, and a name alone \("alice"\) proves nothing/);
      expect(approvalRefusal(approve('alice'), 'approved', view)).toMatch(/^production takes only verified decisions/);
      expect(unverifiedDecision({ ...approve('alice'), proof: { channel: 'github-actions', token: 'x.y.z' } }, view)).toBeUndefined();
      expect(unverifiedDecision({ ...approve('alice'), verified: true }, view)).toBeUndefined();
      expect(unverifiedDecision(approve('alice'), awaiting())).toBeUndefined();
    });

    it('refuses a proof that decided something before in this pipeline', () => {
      const decided = awaiting({
        environments: [
          { environment: 'staging', state: 'DEPLOYED', approval: { by: 'bob', at: '2026-01-01T00:00:00Z', channel: 'github-actions', proofId: 'github-actions:iss:jti-1' } },
          { environment: 'production', state: 'AWAITING_APPROVAL' },
        ],
      });
      expect(replayedProof('github-actions:iss:jti-1', decided)).toBe('this proof was used before: each decision needs a fresh token or signature');
      expect(replayedProof('github-actions:iss:jti-2', decided)).toBeUndefined();
    });
  });

  describe('self-approval', () => {
    it("refuses the commit's author, whatever the case of the login", () => {
      const refusal = `Dora wrote 1a2b3c4 and may not approve its deploy to production`;
      expect(selfApproval(approve('Dora'), 'approved', awaiting())).toBe(refusal);
      expect(approvalRefusal(approve('Dora'), 'approved', awaiting())).toBe(refusal);
    });

    it('lets the author approve where the environment allows it, and anyone when the author is unknown', () => {
      expect(selfApproval(approve('dora'), 'approved', awaiting({ environmentPlan: production({ allowSelfApproval: true }) }))).toBeUndefined();
      expect(selfApproval(approve('dora'), 'approved', awaiting({ authorLogin: undefined }))).toBeUndefined();
    });

    it('lets the author reject their own release', () => {
      expect(selfApproval(approve('dora'), 'rejected', awaiting())).toBeUndefined();
      expect(approvalRefusal({ ...approve('dora'), reason: 'not ready' } as never, 'rejected', awaiting())).toBeUndefined();
    });

    it('refuses whoever wrote, committed or merged any commit the release brings, not only the head', () => {
      const releasePeople = { authors: ['erin', 'dora'], committers: ['frank'], mergedBy: ['grace'], truncated: false };
      const view = awaiting({ releasePeople });
      expect(selfApproval(approve('Erin'), 'approved', view)).toBe('Erin wrote a change in this release and may not approve its deploy to production');
      expect(selfApproval(approve('frank'), 'approved', view)).toBe('frank committed a change in this release and may not approve its deploy to production');
      expect(selfApproval(approve('grace'), 'approved', view)).toBe('grace merged a change in this release and may not approve its deploy to production');
      expect(selfApproval(approve('alice'), 'approved', view)).toBeUndefined();
    });

    it('refuses everyone when GitHub could list only part of the release', () => {
      const view = awaiting({ releasePeople: { authors: ['erin'], committers: [], mergedBy: [], truncated: true } });
      expect(selfApproval(approve('alice'), 'approved', view)).toMatch(/^GitHub lists only part of the commits/);
      expect(selfApproval(approve('alice'), 'approved', awaiting({ releasePeople: view.releasePeople, environmentPlan: production({ allowSelfApproval: true }) }))).toBeUndefined();
    });

    it('comes before the list of approvers', () => {
      const view = awaiting({ environmentPlan: production({ approvers: ['alice'] }) });
      expect(approvalRefusal(approve('dora'), 'approved', view)).toBe('dora wrote 1a2b3c4 and may not approve its deploy to production');
    });
  });

  describe('text limits and shape', () => {
    it(`refuses a comment or reason longer than ${MAX_DECISION_TEXT} characters, and accepts one of that length`, () => {
      const long = 'x'.repeat(MAX_DECISION_TEXT + 1);
      expect(malformedDecision({ ...approve(), comment: long }, 'approved')).toBe(`the comment is longer than ${MAX_DECISION_TEXT} characters`);
      expect(malformedDecision({ ...approve(), reason: long }, 'rejected')).toBe(`the reason is longer than ${MAX_DECISION_TEXT} characters`);
      expect(malformedDecision({ ...approve(), comment: 'x'.repeat(MAX_DECISION_TEXT) }, 'approved')).toBeUndefined();
      expect(approvalRefusal({ ...approve(), comment: long } as never, 'approved', awaiting())).toBe(`the comment is longer than ${MAX_DECISION_TEXT} characters`);
    });

    it('refuses texts that are not text', () => {
      expect(malformedDecision({ ...approve(), comment: 42 }, 'approved')).toBe('the comment must be text');
      expect(malformedDecision({ ...approve(), comment: null }, 'approved')).toBeUndefined();
    });

    it('wants a reason to reject', () => {
      expect(malformedDecision(approve(), 'rejected')).toBe('a rejection gives a reason');
      expect(malformedDecision({ ...approve(), reason: '   ' }, 'rejected')).toBe('a rejection gives a reason');
    });

    it('refuses a request that is not an object, before any other rule', () => {
      const shape = 'an approval is {"environment", "approver", "comment"?} and a rejection {"environment", "approver", "reason"}';
      for (const request of [null, 'approve', ['production', 'alice']]) {
        expect(malformedDecision(request, 'approved')).toBe(shape);
        expect(approvalRefusal(request as never, 'approved', awaiting({ pending: undefined }))).toBe(shape);
      }
    });
  });
});
