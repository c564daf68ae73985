/** The approvers stage (activities/approvers.ts) alone, in MockActivityEnvironment, against the GitHub simulator's teams. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, type PipelineActivities } from '../activities';
import { startStack, type Stack } from '../sandbox/stack';
import { errorFrom } from './support/env';

describe('the approvers stage', () => {
  let dataDir: string;
  let stack: Stack;
  let activities: PipelineActivities;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'activities-approvers-'));
    stack = await startStack({ dataDir, apps: { whitehall: { environments: { integration: {} } } } });
    stack.github.addTeamMember('alphagov', 'gov-uk-production-deploy', 'alice');
    activities = createActivities(stack.dependencies);
  });
  afterAll(async () => {
    await stack?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('isTeamMember: true for an active member of @org/team, false for anyone else', async () => {
    const env = new MockActivityEnvironment();
    await expect(env.run(activities.isTeamMember, { team: '@alphagov/gov-uk-production-deploy', login: 'alice' })).resolves.toBe(true);
    await expect(env.run(activities.isTeamMember, { team: 'alphagov/gov-uk-production-deploy', login: 'alice' })).resolves.toBe(true);
    await expect(env.run(activities.isTeamMember, { team: '@alphagov/gov-uk-production-deploy', login: 'mallory' })).resolves.toBe(false);
    await expect(env.run(activities.isTeamMember, { team: '@alphagov/no-such-team', login: 'alice' })).resolves.toBe(false);
  });

  it('a GitHub outage is left to Temporal to retry', async () => {
    stack.github.injectFault({ method: 'GET', pathPattern: '^/orgs/alphagov/teams/', status: 502, times: 1 });
    const err = await errorFrom(() => new MockActivityEnvironment().run(activities.isTeamMember, { team: '@alphagov/gov-uk-production-deploy', login: 'alice' }));
    expect(err).not.toHaveProperty('nonRetryable', true);
    expect(err.message).toMatch(/returned 502/);
  });
});
