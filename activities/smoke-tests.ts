import { Context } from '@temporalio/activity';
import type { SmokeCheckOutcome } from '../common/ports';
import { FailureTypes } from '../common/types';
import { resumedSuiteProgress, runSmokeSuites, type SuiteOutcome } from './smoke-suites';
import { classified, permanent, type EnvironmentStep, type Stage } from './stage';

/** Step 3.6, smoke tests against the deployed app: its HTTP checks, then its end-to-end suites (smoke-suites.ts). */
export function createSmokeTestActivities(stage: Stage) {
  const { smokeTester } = stage.deps;

  return {
    /** Every check and suite passes within its attempts, or the step fails with what was wrong. */
    async runSmokeTests(step: EnvironmentStep): Promise<Array<SmokeCheckOutcome | SuiteOutcome>> {
      return classified(async () => {
        const { app, env } = stage.target(step);
        const ctx = Context.current();
        // A retry that finds suite progress in the heartbeats passed the checks already.
        const resumed = env.smokeSuites.length > 0 ? resumedSuiteProgress() : undefined;
        const outcomes: Array<SmokeCheckOutcome | SuiteOutcome> = [];
        for (const check of resumed ? [] : env.smokeChecks) {
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
        outcomes.push(...(await runSmokeSuites(stage, step, env, resumed)));
        return outcomes;
      });
    },
  };
}
