import { Context } from '@temporalio/activity';
import type { SmokeCheckOutcome } from '../common/ports';
import { FailureTypes } from '../common/types';
import { classified, permanent, type EnvironmentStep, type Stage } from './stage';

/** Step 3.6, smoke tests against the deployed app. */
export function createSmokeTestActivities(stage: Stage) {
  const { smokeTester } = stage.deps;

  return {
    /** Every check passes within its attempts, or the step fails with what was wrong. */
    async runSmokeTests(step: EnvironmentStep): Promise<SmokeCheckOutcome[]> {
      return classified(async () => {
        const { app, env } = stage.target(step);
        const ctx = Context.current();
        const outcomes: SmokeCheckOutcome[] = [];
        for (const check of env.smokeChecks) {
          let outcome = await smokeTester.run(check);
          for (let attempt = 2; !outcome.ok && attempt <= env.smokeAttempts; attempt++) {
            ctx.heartbeat({ check: check.url, attempt });
            await ctx.sleep(env.smokeRetryIntervalMs);
            outcome = await smokeTester.run(check);
          }
          if (!outcome.ok) {
            throw permanent(
              FailureTypes.SmokeTestFailed,
              `smoke test failed for ${app.name} ${step.tag} in ${env.name}: ${outcome.detail} (after ${env.smokeAttempts} attempts)`,
            );
          }
          outcomes.push(outcome);
        }
        return outcomes;
      });
    },
  };
}
