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
  selfApproval,
  teamRefusal,
  wrongEnvironment,
} from '../workflows/approval-rules';

/** The approval gate's refusal rules, without a server: the pipeline only asks them. */
const SHA = '1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b';
const ID = 'deploy-whitehall-1a2b3c4';

function production(overrides: Partial<EnvironmentPlan> = {}): EnvironmentPlan {
  return { name: 'production', continuousDeployment: false, approvers: [], allowSelfApproval: false, hasDeployWindows: false, syncTimeoutMs: 60_000, ...overrides };
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
      const approved = awaiting({ pending: { environment: 'production', newer: [], approved: { ...approve('bob'), at: '2026-01-01T00:00:00Z' } } });
      expect(alreadyDecided(approve(), approved)).toBe('production was already approved by bob');
      const rejected = awaiting({ pending: { environment: 'production', newer: [], rejected: { ...approve('carol'), reason: 'not today', at: '2026-01-01T00:00:00Z' } } });
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
      const approved = awaiting({ pending: { environment: 'production', newer: [], approved: { ...approve('bob'), at: '2026-01-01T00:00:00Z' } } });
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

    it('lets anyone approve when the list is empty, and leaves lists with teams to the team check', () => {
      expect(notAnApprover(approve('mallory'), [])).toBeUndefined();
      expect(notAnApprover(approve('mallory'), ['alice', '@alphagov/release-managers'])).toBeUndefined();
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

  describe('self-approval', () => {
    it("refuses the commit's author, whatever the case of the login", () => {
      const refusal = `Dora wrote 1a2b3c4 and may not approve its deploy to production`;
      expect(selfApproval(approve('Dora'), awaiting())).toBe(refusal);
      expect(approvalRefusal(approve('Dora'), 'approved', awaiting())).toBe(refusal);
    });

    it('lets the author approve where the environment allows it, and anyone when the author is unknown', () => {
      expect(selfApproval(approve('dora'), awaiting({ environmentPlan: production({ allowSelfApproval: true }) }))).toBeUndefined();
      expect(selfApproval(approve('dora'), awaiting({ authorLogin: undefined }))).toBeUndefined();
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
