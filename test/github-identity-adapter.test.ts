/**
 * What the GitHub adapter tells identity checks, over real HTTP against the GitHub simulator: the run an Actions
 * OIDC token names (who started which attempt, under which run-name), and the people behind a release (authors,
 * committers, who merged its pull request).
 */
import { PermanentHttpError, TransientHttpError } from '../common/errors';
import { createGitHubSourceHost } from '../adapters/github';
import { createOidcTokenVerifier } from '../adapters/github-oidc';
import { GitHubSimulator } from '../simulators/github';
import { GitHubOidcSimulator } from '../simulators/github-oidc';
import { errorFrom } from './support/env';

const TOKEN = 'ghp_simulatedToken1234567890';
const REPO = 'alphagov/deploy-approvals';
const APP_REPO = 'alphagov/whitehall';

let github: GitHubSimulator;
let host: ReturnType<typeof createGitHubSourceHost>;

beforeEach(async () => {
  github = new GitHubSimulator({ token: TOKEN });
  github.addRepo(REPO);
  github.addRepo(APP_REPO);
  github.addCommit(REPO);
  const { url } = await github.start();
  host = createGitHubSourceHost({ token: TOKEN, baseUrl: url });
});
afterEach(() => github.close());

describe('workflowRunById', () => {
  it('says who started the run and, after a re-run, who started the latest attempt', async () => {
    const runId = github.startRun(REPO, { workflowFile: 'approve.yml', displayTitle: 'approve deploy-whitehall-abc production', actor: 'Alice' });
    await expect(host.workflowRunById(REPO, runId)).resolves.toEqual({
      id: runId,
      repository: REPO,
      displayTitle: 'approve deploy-whitehall-abc production',
      event: 'workflow_dispatch',
      runAttempt: 1,
      triggeringActor: 'Alice',
      actor: 'Alice',
      headBranch: 'main',
    });

    github.rerun(REPO, runId, 'mallory');
    await expect(host.workflowRunById(REPO, runId)).resolves.toMatchObject({ runAttempt: 2, actor: 'Alice', triggeringActor: 'mallory' });
    expect(github.requests.map((r) => r.url)).toEqual([`/repos/${REPO}/actions/runs/${runId}`, `/repos/${REPO}/actions/runs/${runId}`]);
  });

  it('checks a token GitHub Actions gave a job against the run it names', async () => {
    const oidc = new GitHubOidcSimulator();
    await oidc.start();
    try {
      const runId = github.startRun(REPO, { workflowFile: 'approve.yml', displayTitle: 'reject deploy-whitehall-abc staging', actor: 'alice', triggeringActor: 'bob' });
      const token = oidc.mintToken({ repository: REPO, audience: 'deploy-pipelines', runId, runAttempt: 1, actor: 'alice', eventName: 'workflow_dispatch', workflowFile: 'approve.yml' });
      const claims = await createOidcTokenVerifier({ issuer: oidc.issuer }).verify(token, { audience: 'deploy-pipelines' });
      expect(claims).toMatchObject({ repository: REPO, run_id: String(runId), run_attempt: '1', actor: 'alice', event_name: 'workflow_dispatch' });
      expect(claims.workflow_ref).toBe(`${REPO}/.github/workflows/approve.yml@refs/heads/main`);

      const run = await host.workflowRunById(claims.repository, Number(claims.run_id));
      expect(run).toMatchObject({ repository: claims.repository, runAttempt: Number(claims.run_attempt), displayTitle: 'reject deploy-whitehall-abc staging' });
      // The token's actor started the first attempt; the person deciding is whoever started this one.
      expect(run.triggeringActor).toBe('bob');
    } finally {
      await oidc.close();
    }
  });

  it('a run GitHub does not know, a bad token, and GitHub failing', async () => {
    const unknown = await errorFrom(() => host.workflowRunById(REPO, 987654));
    expect(unknown).toBeInstanceOf(PermanentHttpError);
    expect((unknown as PermanentHttpError).status).toBe(404);

    const badHost = createGitHubSourceHost({ token: 'ghp_wrongToken0987654321', baseUrl: github.url });
    const denied = await errorFrom(() => badHost.workflowRunById(REPO, 1));
    expect(denied).toBeInstanceOf(PermanentHttpError);
    expect(denied.message).not.toContain('ghp_wrongToken0987654321');

    github.injectFault({ pathPattern: '/actions/runs/', status: 503 });
    const flaky = await errorFrom(() => host.workflowRunById(REPO, 1));
    expect(flaky).toBeInstanceOf(TransientHttpError);
    expect(flaky).not.toBeInstanceOf(PermanentHttpError);
  });
});

describe('releasePeople', () => {
  it('names the authors and committers between base and head, and who merged the pull request linked to head', async () => {
    const deployed = github.addCommit(APP_REPO, { authorLogin: 'zoe' });
    const typo = github.addCommit(APP_REPO, { authorLogin: 'Alice', branch: 'fix-typo', parents: [deployed], message: 'Fix a typo\n\nIn the footer.' });
    const reviewed = github.addCommit(APP_REPO, { authorLogin: 'alice', committerLogin: 'Bob', branch: 'fix-typo' });
    const unlinked = github.addCommit(APP_REPO, { unlinked: true, branch: 'fix-typo' });
    const merge = github.addCommit(APP_REPO, { authorLogin: 'alice', committerLogin: 'web-flow', parents: [deployed, unlinked] });
    github.addPullRequest(APP_REPO, { author: 'alice', headSha: unlinked, mergeCommitSha: merge, mergedBy: 'Carol' });
    // An open pull request that ends at the merge commit does not make its author a merger.
    github.addPullRequest(APP_REPO, { author: 'dave', headSha: merge });

    const people = await host.releasePeople(APP_REPO, deployed, merge);
    expect(people).toEqual({
      authors: ['alice'],
      committers: ['alice', 'bob'],
      mergedBy: ['carol'],
      truncated: false,
      totalChanges: 4,
      changes: expect.any(Array),
    });
    // What an approver is shown: every commit the release brings, the newest first, each message's first line.
    expect(people.changes![0]!.sha).toBe(merge);
    expect(people.changes!.map((c) => c.sha).sort()).toEqual([typo, reviewed, unlinked, merge].sort());
    expect(people.changes!.find((c) => c.sha === typo)).toEqual({ sha: typo, message: 'Fix a typo', author: 'Alice' });
    expect(people.changes!.find((c) => c.sha === unlinked)).not.toHaveProperty('author');
    const pulls = github.requests.filter((r) => r.url.includes('/pulls'));
    expect(pulls.map((r) => r.url.split('?')[0])).toEqual([`/repos/${APP_REPO}/commits/${merge}/pulls`, `/repos/${APP_REPO}/pulls/1`]);
  });

  it('with no base, names the people of head alone', async () => {
    const first = github.addCommit(APP_REPO, { authorLogin: 'zoe' });
    const head = github.addCommit(APP_REPO, { authorLogin: 'erin', committerLogin: 'frank', parents: [first] });
    await expect(host.releasePeople(APP_REPO, undefined, head)).resolves.toEqual({
      authors: ['erin'],
      committers: ['frank'],
      mergedBy: [],
      truncated: false,
      totalChanges: 1,
      changes: [{ sha: head, message: expect.any(String), author: 'erin' }],
    });
  });

  it('says when GitHub listed only some of the commits', async () => {
    const base = github.addCommit(APP_REPO, { authorLogin: 'zoe' });
    let head = base;
    for (let i = 0; i < 250; i += 1) head = github.addCommit(APP_REPO, { authorLogin: 'grace' });
    head = github.addCommit(APP_REPO, { authorLogin: 'heidi' });
    // GitHub lists the oldest 250: the author of the 251st is missing, and the flag says the lists are incomplete.
    const listed = await host.releasePeople(APP_REPO, base, head);
    expect(listed).toEqual({ authors: ['grace'], committers: ['grace'], mergedBy: [], truncated: true, totalChanges: 251, changes: expect.any(Array) });
    // An approver is shown twenty, and told how many there are.
    expect(listed.changes).toHaveLength(20);
    await expect(host.releasePeople(APP_REPO, github.getCommitRecord(APP_REPO, head)!.parents[0], head)).resolves.toMatchObject({ authors: ['heidi'], truncated: false });
  });

  it('fails permanently for commits GitHub cannot compare, retryably when GitHub fails', async () => {
    const head = github.addCommit(APP_REPO);
    const unknown = await errorFrom(() => host.releasePeople(APP_REPO, 'f'.repeat(40), head));
    expect(unknown).toBeInstanceOf(PermanentHttpError);
    expect((unknown as PermanentHttpError).status).toBe(404);

    github.injectFault({ pathPattern: '/pulls', status: 502 });
    expect(await errorFrom(() => host.releasePeople(APP_REPO, undefined, head))).toBeInstanceOf(TransientHttpError);
  });
});
