/** What `deploy help`, `deploy --help` and `deploy <command> --help` print. */

const PROOF = `Proof of who you are: --sign-with KEY signs with your SSH signing key (the one on your GitHub account; default
$DEPLOY_SIGNING_KEY, for the login $DEPLOY_USER), or --oidc-token TOKEN in GitHub Actions (default $DEPLOY_OIDC_TOKEN).
Environments that take only verified decisions refuse a name alone.`;

export const COMMAND_HELP: Record<string, string> = {
  start: `usage: deploy start --app APP --ref REF [--environment ENV [--allow-unmerged]] [--wait [--until ENV]] [--requested-by WHO] [--sign-with KEY | --oidc-token TOKEN]

Without --environment: CI's pipeline for the commit REF names, through every environment (a retry attaches to it).
With --environment: a manual deploy of REF to ENV only; --allow-unmerged for a commit that is not on the main
branch. REF is a branch, tag or commit; it is resolved to a full SHA once, here. --wait follows the pipeline and
exits with its outcome; --until ENV stops once ENV is deployed.
${PROOF}`,
  approve: `usage: deploy approve ID --environment ENV [--approver LOGIN] [--comment TEXT] [--sign-with KEY | --oidc-token TOKEN]

Approves the promotion of pipeline ID into ENV. Refused (exit 3, with the reason) when the pipeline does not
wait for ENV, the approver may not approve there, wrote part of the release, or gave no valid proof.
${PROOF}`,
  reject: `usage: deploy reject ID --environment ENV --reason TEXT [--approver LOGIN] [--sign-with KEY | --oidc-token TOKEN]

Rejects the promotion of pipeline ID into ENV; the pipeline ends REJECTED. An author may reject their own release.
${PROOF}`,
  status: `usage: deploy status ID [--json]

Where pipeline ID stands: each environment's state, who approved it and how they were known, what it waits for.`,
  list: `usage: deploy list [--app APP] [--status STATUS] [--environment ENV] [--limit N] [--json]

Pipelines, newest first, as a table: pipeline, app, commit, environment, status, waiting for, started.
STATUS is a DeployStatus (AWAITING_APPROVAL, FROZEN, WAITING_FOR_LANE, OUTSIDE_WINDOW, SUCCEEDED, …).`,
  history: `usage: deploy history --app APP --environment ENV [--limit N] [--json]

What ran on ENV and when, newest first, from the pipelines' records: the tag, how it got there (CI or by hand),
who approved it, the charts commit and how the deploy ended. Where CHARTS_REPO_URL is set (and CHARTS_BRANCH,
default main), the charts repository's log of the app's image-tag file joins in: commits people made by hand, freezes
and rollbacks show as CHARTS COMMIT rows with their author.`,
  cancel: `usage: deploy cancel ID

Cancels pipeline ID; a deploy under way hands its lane back.`,
  hold: `usage: deploy hold list [--app APP] [--environment ENV]
       deploy hold clear --app APP --environment ENV [--approver LOGIN] [--sign-with KEY]

A hold stops automatic deploys of APP to ENV (after a manual deploy), or every deploy there (after a rollback or
an unverified deploy), until an approver of ENV clears it.`,
};

export const USAGE = `usage: deploy <command> [options]

commands:
  start    start a pipeline (CI), or a manual deploy of one ref to one environment
  approve  approve a promotion          reject   reject a promotion
  status   where a pipeline stands      list     pipelines, as a table
  history  what ran on an environment   cancel   cancel a pipeline
  hold     list or clear holds
  help     this; \`deploy help COMMAND\` or \`deploy COMMAND --help\` for one command

ID is a pipeline's workflow ID (deploy-<app>-<sha>[-<environment>-manual]), or give --app APP --ref REF instead.
--json for machine-readable output.
Exit codes: 0 ok, 1 pipeline ended unsuccessfully, 2 bad input, 3 refused, 4 not found, 5 Temporal, GitHub or the charts repository unreachable, 6 waiting for approval.`;

/** Help for a command, or the general usage when none (or an unknown one) is named. */
export function helpFor(command: string | undefined): string {
  return (command && COMMAND_HELP[command]) ?? USAGE;
}
