import { z } from 'zod';
import type { EnvironmentConfig } from './catalogue';
import { validateRepo } from './names';

/**
 * End-to-end suites as smoke tests, beside the HTTP checks: an Argo Workflows WorkflowTemplate submitted in the
 * environment's cluster (GOV.UK's `govuk-e2e-tests`), or a GitHub Actions workflow dispatched in a repository.
 * Both are followed to their end; a failure rolls back and holds as a failed HTTP check does.
 */

export interface ArgoWorkflowSuite {
  kind: 'argoWorkflow';
  /** What messages call the suite. */
  name: string;
  workflowTemplate: string;
  /** Submitted as `name=value`; `{app}`, `{environment}` and `{tag}` are filled in. */
  parameters: Record<string, string>;
  timeoutMs: number;
}

export interface GitHubWorkflowSuite {
  kind: 'githubWorkflow';
  name: string;
  repo: string;
  /** The workflow file, e.g. `smoke-tests.yml`. */
  workflow: string;
  ref: string;
  /** Dispatched with these inputs (placeholders filled in) and `smokeRun`, which the run's run-name must carry. */
  inputs: Record<string, string>;
  timeoutMs: number;
}

export type SmokeSuite = ArgoWorkflowSuite | GitHubWorkflowSuite;

/** The Argo Workflows server of an environment's cluster, as `argocd` names its Argo CD. */
export interface ArgoWorkflowsOfEnvironment {
  url: string;
  /** The worker's environment variable holding a token the server accepts (a service account's). */
  tokenVariable: string;
  /** Where the WorkflowTemplates live and the suites run. */
  namespace: string;
}

/** The input a dispatched suite run gets besides the catalogue's: its key, which the workflow's run-name must carry. */
export const SMOKE_RUN_INPUT = 'smokeRun';
export const DEFAULT_ARGO_WORKFLOWS_TOKEN_VARIABLE = 'ARGO_WORKFLOWS_TOKEN';
export const DEFAULT_SUITE_TIMEOUT_MS = 30 * 60_000;

const PLACEHOLDERS = ['app', 'environment', 'tag'];
const KUBERNETES_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** A templated value: only the placeholders the pipeline fills in. */
const templated = z.string().superRefine((value, ctx) => {
  for (const [, name] of value.matchAll(/\{([^{}]*)\}/g)) {
    if (!PLACEHOLDERS.includes(name!)) ctx.addIssue({ code: 'custom', message: `unknown placeholder {${name}}: use {app}, {environment} or {tag}` });
  }
});

export function suiteSchemas(duration: z.ZodType<number, unknown>) {
  const timeout = duration.refine((ms) => ms > 0, 'must be longer than zero').default(DEFAULT_SUITE_TIMEOUT_MS);
  const argoWorkflow = z.strictObject({
    kind: z.literal('argoWorkflow'),
    name: z.string().min(1).max(100).optional(),
    workflowTemplate: z
      .string({ error: (issue) => (issue.input === undefined ? 'name the WorkflowTemplate to submit, such as govuk-e2e-tests' : 'must be a string') })
      .regex(KUBERNETES_NAME, 'must be a Kubernetes resource name such as govuk-e2e-tests'),
    parameters: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'must be a WorkflowTemplate parameter name'), templated).default({}),
    timeout,
  });
  const githubWorkflow = z.strictObject({
    kind: z.literal('githubWorkflow'),
    name: z.string().min(1).max(100).optional(),
    repo: z
      .string()
      .superRefine((value, ctx) => {
        try {
          validateRepo(value);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      })
      .optional(),
    workflow: z
      .string({ error: (issue) => (issue.input === undefined ? 'name the workflow file to dispatch, such as smoke-tests.yml' : 'must be a string') })
      .regex(/^[A-Za-z0-9_.-]+\.ya?ml$/, 'must be a workflow file name such as smoke-tests.yml'),
    ref: z.string().regex(/^[A-Za-z0-9._/-]{1,200}$/, 'must be a branch or tag').default('main'),
    inputs: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,99}$/, 'must be a workflow input name'), templated)
      .refine((inputs) => !(SMOKE_RUN_INPUT in inputs), `"${SMOKE_RUN_INPUT}" is the pipeline's own input: it names the run`)
      .default({}),
    timeout,
  });
  const suite = z.discriminatedUnion('kind', [argoWorkflow, githubWorkflow], { error: 'kind must be argoWorkflow or githubWorkflow' });
  const argoWorkflows = z.strictObject({
    url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
    tokenVariable: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,99}$/, 'must be an environment variable name such as ARGO_WORKFLOWS_TOKEN_STAGING')
      // The worker's logs redact the values of such variables (worker/logging.ts).
      .regex(/TOKEN|SECRET|PASSWORD|API_KEY|CREDENTIAL/i, 'must name a variable the worker treats as secret: its name holds TOKEN, SECRET or PASSWORD')
      .optional(),
    namespace: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a Kubernetes namespace').default('argo'),
  });
  return { suite, argoWorkflows };
}

type ParsedSuite = z.infer<ReturnType<typeof suiteSchemas>['suite']>;

/** The suites of one environment as the pipeline runs them: names given, the app's repository the default. */
export function smokeSuitesOf(suites: ParsedSuite[], appRepo: string): SmokeSuite[] {
  return suites.map((suite) => {
    if (suite.kind === 'argoWorkflow') {
      return { kind: suite.kind, name: suite.name ?? suite.workflowTemplate, workflowTemplate: suite.workflowTemplate, parameters: suite.parameters, timeoutMs: suite.timeout };
    }
    const repo = suite.repo ?? appRepo;
    return { kind: suite.kind, name: suite.name ?? `${repo} ${suite.workflow}`, repo, workflow: suite.workflow, ref: suite.ref, inputs: suite.inputs, timeoutMs: suite.timeout };
  });
}

/** `{app}`, `{environment}` and `{tag}` filled in. */
export function fillPlaceholders(values: Record<string, string>, fill: { app: string; environment: string; tag: string }): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, value.replace(/\{(app|environment|tag)\}/g, (_, name: keyof typeof fill) => fill[name])]));
}

/**
 * How long the smoke step may take where suites run: every attempt of every check and suite to its timeout, with
 * the pauses between, and room for the polls. The step enforces each suite's timeout itself; this only bounds it.
 */
export function smokeTestsBudgetMs(env: Pick<EnvironmentConfig, 'smokeChecks' | 'smokeSuites' | 'smokeAttempts' | 'smokeRetryIntervalMs'>): number {
  const perAttempt = [...env.smokeChecks.map((check) => check.timeoutMs), ...env.smokeSuites.map((suite) => suite.timeoutMs)];
  return perAttempt.reduce((total, timeoutMs) => total + env.smokeAttempts * (timeoutMs + env.smokeRetryIntervalMs), 5 * 60_000);
}
