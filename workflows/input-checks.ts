import { validateAppName } from '../common/names';

/**
 * What the workflow checks before it uses its input at all: its shape, and the values it writes to search attributes
 * (the server refuses oversized ones, which would fail every workflow task). resolveRelease checks the rest.
 */
export function inputRefusal(input: unknown, continuedRun: boolean): string | undefined {
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    return `a pipeline's input is {"app", "ref", "trigger", "environment"?}, not ${JSON.stringify(input) ?? String(input)}`;
  }
  const { app, trigger } = input as Record<string, unknown>;
  if (typeof app !== 'string' || app.length > 63) {
    try {
      validateAppName(app);
    } catch (err) {
      return (err as Error).message;
    }
  }
  if (typeof trigger !== 'string' || trigger.length > 20) return `trigger must be "ci" or "manual", not ${JSON.stringify(trigger) ?? String(trigger)}`;
  // Resuming skips the release's checks and its gates: only the pipeline's own continue-as-new may ask for it.
  if ((input as Record<string, unknown>).resume !== undefined && !continuedRun) return 'a pipeline is resumed only by its own continue-as-new, never started with "resume"';
  return undefined;
}
