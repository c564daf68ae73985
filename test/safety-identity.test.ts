/**
 * Who decides is proved, not claimed. Keys are made here (ssh-keygen for people's signing keys, the OIDC
 * simulator's RSA key for GitHub Actions tokens); each attack an ordinary user could try is refused with its
 * reason, and nothing is deployed. Valid proofs are accepted and recorded with their channel.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { signDecision } from '../client/sign-decision';
import type { DecisionStatement } from '../common/decision-statement';
import type { DecisionProof, PipelineStatus } from '../common/types';
import { approveUpdate } from '../workflows/definitions';
import { readFileAt } from './support/charts-repo';
import { failureOf, startHarness, type PipelineHarness } from './support/pipeline';
import { waitFor } from './support/env';
import { imageTagFile } from './support/safety';

const APP = 'frontend';
const APPROVALS_REPO = 'alphagov/deploy-approvals';
const AUDIENCE = 'deploy-pipelines';

let h: PipelineHarness;
let keysDir: string;
const keys: Record<string, string> = {};

function makeKey(name: string): string {
  const file = path.join(keysDir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@laptop`, '-f', file]);
  return file;
}

beforeAll(async () => {
  keysDir = mkdtempSync(path.join(os.tmpdir(), 'identity-keys-'));
  h = await startHarness({
    apps: {
      [APP]: {
        environments: {
          integration: { continuousDeployment: true },
          staging: { continuousDeployment: false, approvers: ['alice', '@alphagov/deployers'], identity: 'verified' },
          production: { continuousDeployment: false, approvers: ['bob', 'carol'], identity: 'verified', deployers: ['bob', 'carol'] },
        },
      },
    },
  });
  const { github } = h.stack;
  for (const person of ['alice', 'bob', 'carol', 'mallory', 'dora']) {
    keys[person] = makeKey(person);
    github.addSshSigningKey(person, readFileSync(`${keys[person]}.pub`, 'utf8'));
  }
  // A key nobody registered: whoever holds it is nobody GitHub knows.
  keys.stranger = makeKey('stranger');
  github.addTeamMember('alphagov', 'deployers', 'mallory');
  github.addTeamMember('alphagov', 'deployers', 'erin');
  github.addRepo(APPROVALS_REPO, { defaultBranch: 'main' });
  github.addCommit(APPROVALS_REPO, { branch: 'main', message: 'approve.yml' });
  github.addRepo('evilcorp/approvals', { defaultBranch: 'main' });
  github.addCommit('evilcorp/approvals', { branch: 'main', message: 'approve.yml' });
});

afterAll(async () => {
  await h?.close();
  rmSync(keysDir, { recursive: true, force: true });
});

/** The token a job of the approve workflow gets, for a run a person started with this run-name. */
function actionsToken(options: { title: string; by: string; repository?: string; audience?: string; issuedAt?: number; event?: string }): { token: string; runId: number } {
  const repository = options.repository ?? APPROVALS_REPO;
  const runId = h.stack.github.startRun(repository, { workflowFile: 'approve.yml', displayTitle: options.title, actor: options.by, event: options.event });
  const token = h.stack.oidc.mintToken({ repository, audience: options.audience ?? AUDIENCE, runId, actor: options.by, issuedAt: options.issuedAt, eventName: options.event });
  return { token, runId };
}

async function signed(person: string, statement: Omit<DecisionStatement, 'signedAt'>, signedAt = new Date().toISOString()): Promise<DecisionProof> {
  return { channel: 'ssh-signature', signature: await signDecision({ ...statement, signedAt }, keys[person]!), signedAt };
}

async function awaitingStaging(): Promise<{ workflowId: string; sha: string }> {
  const sha = await h.stack.merge(APP, { authorLogin: 'dora' });
  const { workflowId } = await h.startCi(APP, sha);
  await h.waitForStatus(workflowId, (s) => s.awaitingApprovalFor === 'staging', 'the pipeline to wait for staging approval');
  return { workflowId, sha };
}

const stagingTag = () => readFileAt(h.stack.charts.bareDir, 'main', imageTagFile(APP, 'staging'));

async function refusedByCli(args: string[], reason: RegExp): Promise<void> {
  const run = await h.cli(args);
  expect(run.code).toBe(3);
  expect(run.err.join('\n')).toMatch(reason);
}

/** Nothing moved: still waiting for staging, and staging's file as it was. */
async function stillWaiting(workflowId: string, tagBefore: string | undefined): Promise<PipelineStatus> {
  const status = await h.status(workflowId);
  expect(status).toMatchObject({ status: 'AWAITING_APPROVAL', awaitingApprovalFor: 'staging' });
  expect(status.environments[1]!.approval).toBeUndefined();
  expect(await stagingTag()).toBe(tagBefore);
  return status;
}

describe('valid proofs are accepted and recorded with their channel', () => {
  it('a signed approval, then an Actions approval; the record keeps what checks them again, never the token', async () => {
    const { workflowId } = await awaitingStaging();
    const approved = await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'alice', '--sign-with', keys.alice!, '--comment', 'ship it']);
    expect(approved).toMatchObject({ code: 0, out: [`approved staging for ${workflowId} as alice (verified: ssh-signature)`] });
    const atProduction = await h.waitForStatus(workflowId, (s) => s.awaitingApprovalFor === 'production', 'the pipeline to reach production');
    expect(atProduction.environments[1]!.approval).toMatchObject({
      by: 'alice',
      channel: 'ssh-signature',
      comment: 'ship it',
      evidence: { keyFingerprint: expect.stringMatching(/^SHA256:/), signature: expect.stringContaining('BEGIN SSH SIGNATURE') },
    });

    const { token, runId } = actionsToken({ title: `approve ${workflowId} production`, by: 'carol' });
    const byActions = await h.cli(['approve', workflowId, '--environment', 'production', '--approver', 'carol', '--oidc-token', token]);
    expect(byActions).toMatchObject({ code: 0, out: [`approved production for ${workflowId} as carol (verified: github-actions)`] });
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('SUCCEEDED');
    const production = result.environments[2]!.approval!;
    expect(production).toMatchObject({ by: 'carol', channel: 'github-actions', evidence: { repository: APPROVALS_REPO, runId: String(runId), runAttempt: '1' } });
    // GitHub's deployment of production says who let it through, and how they were known.
    const productionStatuses = h.stack.github.deploymentStatuses.filter((st) => st.repo === `alphagov/${APP}` && st.environment === 'production' && st.state === 'success');
    expect(productionStatuses.at(-1)?.description).toMatch(/; approved by carol \(github-actions\)$/);
    const history = JSON.stringify(await h.handle(workflowId).fetchHistory());
    expect(JSON.stringify(result)).not.toContain(token);
    expect(history).not.toContain(token.split('.')[2]);
  });
});

describe('decisions without a valid proof are refused, and nothing is deployed', () => {
  it('a name alone: through the CLI, a raw signal (Web UI, temporal workflow signal) and the update', async () => {
    const { workflowId } = await awaitingStaging();
    const before = await stagingTag();
    await refusedByCli(['approve', workflowId, '--environment', 'staging', '--approver', 'alice'], /refused: staging takes only verified decisions, and a name alone \("alice"\) proves nothing/);

    await h.handle(workflowId).signal('approve', { environment: 'staging', approver: 'alice' });
    const shown = await h.waitForStatus(workflowId, (s) => s.environments[1]?.refusedDecision !== undefined, 'the refused signal to be shown');
    expect(shown.environments[1]!.refusedDecision).toMatchObject({ claimedBy: 'alice', reason: expect.stringMatching(/^staging takes only verified decisions/) });
    // This worker has the temporal-principal channel off, and says so.
    expect(shown.environments[1]!.refusedDecision!.reason).toMatch(/; nor does the signal's Temporal principal prove it: this worker maps no Temporal principal to a GitHub login \(DEPLOY_TEMPORAL_PRINCIPALS is not set\)$/);
    // Web UI's current details panel says it too.
    const metadata = (await h.handle(workflowId).query('__temporal_workflow_metadata')) as { currentDetails?: string };
    expect(metadata.currentDetails).toMatch(/\| staging \| AWAITING_APPROVAL \|.*last decision refused: staging takes only verified decisions/);

    const update = await h.handle(workflowId).executeUpdate(approveUpdate, { args: [{ environment: 'staging', approver: 'alice' }] }).catch((e: Error) => e);
    expect(String(((update as Error).cause as Error | undefined)?.message ?? update)).toMatch(/staging takes only verified decisions/);
    await stillWaiting(workflowId, before);
  });

  it('Actions tokens: expired, wrong audience, wrong repository, another pipeline, a re-run by someone else, not a person', async () => {
    const { workflowId } = await awaitingStaging();
    const before = await stagingTag();
    const title = `approve ${workflowId} staging`;
    const attempts: [string, string, RegExp][] = [
      ['expired', actionsToken({ title, by: 'alice', issuedAt: Math.floor(Date.now() / 1000) - 3600 }).token, /the OIDC token expired at/],
      ['wrong audience', actionsToken({ title, by: 'alice', audience: 'sts.amazonaws.com' }).token, /the OIDC token is for audience "sts\.amazonaws\.com", not "deploy-pipelines"/],
      ['wrong repository', actionsToken({ title, by: 'alice', repository: 'evilcorp/approvals' }).token, /comes from evilcorp\/approvals, which may not send decisions here/],
      ['another pipeline', actionsToken({ title: `approve deploy-${APP}-${'0'.repeat(40)} staging`, by: 'alice' }).token, /is for run \d+, "approve deploy-frontend-0{40} staging", not for "approve deploy-frontend-[0-9a-f]{40} staging"/],
      ['another environment', actionsToken({ title: `approve ${workflowId} production`, by: 'alice' }).token, /not for "approve deploy-frontend-[0-9a-f]{40} staging"/],
      ['not started by a person', actionsToken({ title, by: 'alice', event: 'push' }).token, /started by push, not by a person/],
    ];
    // A run alice started and mallory re-ran: the token is the second attempt's, and mallory's.
    const rerun = actionsToken({ title, by: 'alice' });
    h.stack.github.rerun(APPROVALS_REPO, rerun.runId, 'mallory');
    attempts.push(['re-run by someone else', rerun.token, /attempt 1 of run \d+; GitHub's run is at attempt 2/]);
    for (const [what, token, reason] of attempts) {
      const run = await h.cli(['approve', workflowId, '--environment', 'staging', '--approver', 'alice', '--oidc-token', token]);
      expect({ what, code: run.code }).toEqual({ what, code: 3 });
      expect({ what, err: run.err.join('\n') }).toEqual({ what, err: expect.stringMatching(reason) });
    }
    // The person is the one GitHub says started the run, whatever name comes with the token.
    const mallorys = actionsToken({ title, by: 'mallory' }).token;
    await refusedByCli(['approve', workflowId, '--environment', 'staging', '--approver', 'alice', '--oidc-token', mallorys], /the proof is mallory's, not alice's/);
    await stillWaiting(workflowId, before);
  });

  it("signatures: a key not on the login, another environment, another commit, stale", async () => {
    const { workflowId, sha } = await awaitingStaging();
    const before = await stagingTag();
    const about = { pipelineId: workflowId, environment: 'staging', commit: sha, decision: 'approve' as const, comment: '' };
    const send = (approver: string, proof: DecisionProof) =>
      h.handle(workflowId).executeUpdate(approveUpdate, { args: [{ environment: 'staging', approver, proof }] }).then(
        () => 'accepted',
        (e: Error) => ((e.cause as Error | undefined)?.message ?? e.message),
      );
    expect(await send('alice', await signed('stranger', about))).toMatch(/not by any of alice's SSH signing keys on GitHub/);
    expect(await send('alice', await signed('alice', { ...about, environment: 'production' }))).toMatch(/not by any of alice's SSH signing keys on GitHub, or not over this statement/);
    expect(await send('alice', await signed('alice', { ...about, commit: 'f'.repeat(40) }))).toMatch(/or not over this statement/);
    const stale = new Date(Date.now() - 20 * 60_000).toISOString();
    expect(await send('alice', await signed('alice', about, stale))).toMatch(/signed at .*, more than 15 minutes ago; sign a fresh one/);
    // Signed by mallory's own key, claiming to be alice.
    expect(await send('alice', await signed('mallory', about))).toMatch(/not by any of alice's SSH signing keys/);
    await stillWaiting(workflowId, before);
  });

  it('the author of a middle commit may not approve, though in the approvers team; a rejection by them stands', async () => {
    const middle = await h.stack.merge(APP, { authorLogin: 'mallory', buildImage: false, message: 'Change the search box' });
    const { workflowId, sha } = await awaitingStaging();
    expect(middle).not.toBe(sha);
    // The approver is shown what the release brings (every commit since staging's, earlier tests' too), newest first, with their authors.
    const changes = (await h.status(workflowId)).environments[1]!.changes!;
    expect(changes.total).toBeGreaterThanOrEqual(2);
    expect(changes.commits).toHaveLength(Math.min(changes.total, 20));
    expect(changes.commits.slice(0, 2)).toEqual([
      { sha, message: expect.any(String), author: 'dora' },
      { sha: middle, message: 'Change the search box', author: 'mallory' },
    ]);
    // Slack hears it as the wait begins, just after the status says so.
    const asked = await waitFor(() => h.stack.slack.messages.map((m) => m.text).find((text) => text.includes(workflowId) && text.includes('waits for approval')), {
      timeoutMs: 10_000,
      description: 'Slack to hear that the pipeline waits for approval',
    });
    expect(asked).toMatch(new RegExp(`it brings ${changes.total} commits: ${sha.slice(0, 7)} .* \\(dora\\); ${middle.slice(0, 7)} Change the search box \\(mallory\\)`));
    const before = await stagingTag();
    await refusedByCli(['approve', workflowId, '--environment', 'staging', '--approver', 'mallory', '--sign-with', keys.mallory!], /refused: mallory wrote a change in this release and may not approve its deploy to staging/);
    await stillWaiting(workflowId, before);
    const rejected = await h.cli(['reject', workflowId, '--environment', 'staging', '--approver', 'mallory', '--sign-with', keys.mallory!, '--reason', 'my change is broken']);
    expect(rejected).toMatchObject({ code: 0, out: [`rejected staging for ${workflowId} as mallory (verified: ssh-signature)`] });
    const result = await h.handle(workflowId).result();
    expect(result.status).toBe('REJECTED');
    expect(result.environments[1]!.rejection).toMatchObject({ by: 'mallory', channel: 'ssh-signature', comment: 'my change is broken' });
  });
});

describe('manual deploys pass the same gates', () => {
  it('production by hand: refused without a proof, and for a verified person who is not a deployer', async () => {
    const sha = await h.stack.merge(APP);
    const productionBefore = await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile(APP, 'production'));
    const unproved = await h.cli(['start', '--app', APP, '--ref', sha, '--environment', 'production', '--requested-by', 'bob', '--wait']);
    expect(unproved.code).toBe(1);
    const id = `deploy-${APP}-${sha}-production-manual`;
    expect(await failureOf(h, id)).toMatch(/only bob, carol may deploy to production by hand, and a name alone proves nothing.*nothing was deployed/);

    const mallory = await h.cli(['start', '--app', APP, '--ref', sha, '--environment', 'production', '--approver', 'mallory', '--sign-with', keys.mallory!, '--wait']);
    expect(mallory.code).toBe(1);
    expect(await failureOf(h, id)).toMatch(/mallory may not deploy to production by hand \(deployers: bob, carol\); nothing was deployed/);
    expect(await readFileAt(h.stack.charts.bareDir, 'main', imageTagFile(APP, 'production'))).toBe(productionBefore);

    // A deployer who may approve there starts it, verified: it goes at once, approved by them.
    const bob = await h.cli(['start', '--app', APP, '--ref', sha, '--environment', 'production', '--approver', 'bob', '--sign-with', keys.bob!, '--wait']);
    expect(bob.code).toBe(0);
    const result = await h.handle(id).result();
    expect(result.environments[0]).toMatchObject({ state: 'DEPLOYED', approval: { by: 'bob', channel: 'ssh-signature' } });
  });

  it("an unmerged branch needs --allow-unmerged, then an approver's approval even when an approver started it", async () => {
    const sha = await h.stack.merge(APP, { branch: 'try-this' });
    const id = `deploy-${APP}-${sha}-staging-manual`;
    const plain = await h.cli(['start', '--app', APP, '--ref', 'try-this', '--environment', 'staging', '--approver', 'alice', '--sign-with', keys.alice!, '--wait']);
    expect(plain.code).toBe(1);
    expect(await failureOf(h, id)).toMatch(/try-this \([0-9a-f]{7}\) is not on main: deploying it needs --allow-unmerged; nothing was deployed/);

    const before = await stagingTag();
    const allowed = await h.cli(['start', '--app', APP, '--ref', 'try-this', '--environment', 'staging', '--allow-unmerged', '--approver', 'alice', '--sign-with', keys.alice!]);
    expect(allowed.code).toBe(0);
    const waiting = await h.waitForStatus(id, (s) => s.awaitingApprovalFor === 'staging', 'the unmerged deploy to wait for approval');
    expect(waiting.environments[0]!.waitingFor).toMatch(/is not on main: an approver of staging must approve this manual deploy/);
    expect(await stagingTag()).toBe(before);
    // The token approves this run once; the same token for the same deploy started again is a replay.
    // mallory wrote a commit staging lacks, and may not approve; erin, of the approvers team, may.
    await refusedByCli(['approve', id, '--environment', 'staging', '--approver', 'mallory', '--sign-with', keys.mallory!], /refused: mallory wrote a change in this release/);
    const { token } = actionsToken({ title: `approve ${id} staging`, by: 'erin' });
    expect((await h.cli(['approve', id, '--environment', 'staging', '--approver', 'erin', '--oidc-token', token])).code).toBe(0);
    expect((await h.handle(id).result()).status).toBe('SUCCEEDED');

    const again = await h.cli(['start', '--app', APP, '--ref', 'try-this', '--environment', 'staging', '--allow-unmerged', '--requested-by', 'alice']);
    expect(again.code).toBe(0);
    await h.waitForStatus(id, (s) => s.awaitingApprovalFor === 'staging', 'the second run to wait for approval');
    await refusedByCli(['approve', id, '--environment', 'staging', '--approver', 'erin', '--oidc-token', token], /refused: the decision's proof is refused: this proof was used before/);
    await h.handle(id).cancel();
  });
});

describe('holds', () => {
  it('a safety hold stops manual deploys too, and only a verified approver of the environment clears it', async () => {
    const laneId = `lane/${h.taskQueue}/${APP}/staging`;
    const hold = { reason: 'rolled back from v41: smoke tests failed', setBy: 'deploy pipeline', setAt: new Date().toISOString(), kind: 'safety' };
    await h.client.workflow.signalWithStart('DeployLane', { workflowId: laneId, taskQueue: h.taskQueue, args: [{ app: APP, environment: 'staging' }], signal: 'setHold', signalArgs: [hold] });
    const sha = await h.stack.merge(APP);
    const id = `deploy-${APP}-${sha}-staging-manual`;
    const before = await stagingTag();
    expect((await h.cli(['start', '--app', APP, '--ref', sha, '--environment', 'staging', '--approver', 'alice', '--sign-with', keys.alice!])).code).toBe(0);
    const held = await h.waitForStatus(id, (s) => /hold on frontend in staging: rolled back from v41/.test(s.environments[0]?.waitingFor ?? ''), 'the manual deploy to wait at the hold');
    expect(held.environments[0]!.state).toBe('WAITING_FOR_LANE');
    expect(await stagingTag()).toBe(before);

    const clear = (args: string[]) => h.cli(['hold', 'clear', '--app', APP, '--environment', 'staging', ...args]);
    await refusedByCli(['hold', 'clear', '--app', APP, '--environment', 'staging', '--approver', 'alice'], /refused: holds on frontend in staging are cleared only by a verified approver/);
    const notApprover = await clear(['--approver', 'dora', '--sign-with', keys.dora!]);
    expect(notApprover).toMatchObject({ code: 3, err: [expect.stringMatching(/refused: dora may not clear holds on frontend in staging: only its approvers may \(alice, @alphagov\/deployers\)/)] });
    const forged = await clear(['--approver', 'alice', '--sign-with', keys.mallory!]);
    expect(forged.code).toBe(3);
    expect(forged.err.join('\n')).toMatch(/refused: the proof is refused: the signature is not by any of alice's SSH signing keys/);
    expect(await stagingTag()).toBe(before);

    const cleared = await clear(['--approver', 'alice', '--sign-with', keys.alice!]);
    expect(cleared).toMatchObject({ code: 0, out: [expect.stringContaining('cleared the hold on frontend in staging: rolled back from v41')] });
    const result = await h.handle(id).result();
    expect(result.status).toBe('SUCCEEDED');
    expect(await stagingTag()).toContain(`image_tag: ${sha}`);
  });
});
