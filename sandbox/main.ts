import { DefaultLogger, Runtime } from '@temporalio/worker';
import { PortTakenError } from '../harness/free-ports';
import { parseSandboxOptions, SandboxOptionsError, USAGE, type SandboxOptions } from './options';
import { DataDirBusyError } from './processes';
import { PLAY_COMMAND, PLAY_COMMANDS } from './play';
import { watchPipelines, type ProgressWatcher } from './progress';
import { DEPLOY_COMMAND, displayPath, SandboxAbortedError, startSandbox, type Sandbox } from './sandbox';

/** `npm start`: the sandbox in the foreground until Ctrl-C. Exit codes: 0 stopped cleanly, 1 failed, 2 bad settings, a taken port or a busy data folder. */

const SAME_CTRL_C_MS = 1500;

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

function printError(line: string): void {
  process.stderr.write(`${line}\n`);
}

function describeApp(options: SandboxOptions, app: string): string {
  const environments = Object.entries(options.apps[app]?.environments ?? { integration: {}, staging: {}, production: {} });
  const manual = environments.slice(1).filter(([, spec]) => spec.continuousDeployment === false);
  if (manual.length === 0) return `continuous deployment to ${environments[environments.length - 1]?.[0] ?? 'the last environment'}`;
  return `needs approval for ${manual.map(([name]) => name).join(' and ')}`;
}

function printWelcome(sandbox: Sandbox, options: SandboxOptions): void {
  print('');
  print(`  Temporal Web UI    ${sandbox.webUiUrl}`);
  print(`  Release app page   ${sandbox.releaseUrl}`);
  print(`  deploy CLI         ${DEPLOY_COMMAND} list   (its settings: ${displayPath(sandbox.deployEnvFile)})`);
  print('');
  if (sandbox.samples.length > 0) {
    print('Sample pipelines:');
    for (const sample of sandbox.samples) {
      print(`  ${sample.app.padEnd(20)} ${describeApp(options, sample.app)}${sample.startedNow ? '' : ' (started by an earlier run)'}`);
      print(`  ${''.padEnd(20)} ${sandbox.pipelineUrl(sample.workflowId)}`);
    }
    print('');
  }
  print(`Play with it (in another terminal; sandbox/README.md says more):`);
  for (const [usage, what] of PLAY_COMMANDS) print(`  ${PLAY_COMMAND} ${usage.padEnd(50)} ${what}`);
  print('');
  print('Ctrl-C stops everything; `npm start` again resumes where it stopped.');
  print('');
}

async function main(): Promise<number> {
  // The AWS SDK warns that releases from 2027 on need Node 22; the project pins its SDK, and a newcomer's
  // first screen should show the sandbox, not that.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let options: SandboxOptions;
  try {
    const parsed = parseSandboxOptions(process.argv.slice(2), process.env);
    if (parsed.help) {
      print(USAGE);
      return 0;
    }
    options = parsed.options;
  } catch (err) {
    if (err instanceof SandboxOptionsError) {
      printError(`sandbox: ${err.message}`);
      return 2;
    }
    throw err;
  }

  // The worker's own logs only when something is wrong; the sandbox handles Ctrl-C itself, in order.
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });

  const controller = new AbortController();
  let sandbox: Sandbox | undefined;
  let progress: ProgressWatcher | undefined;
  let stopRequested!: () => void;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      // Under `npm start` one Ctrl-C arrives twice: from the terminal and forwarded by npm.
      if (Date.now() - firstSignalAt < SAME_CTRL_C_MS) return;
      printError(`sandbox: ${signal} again, not waiting any longer`);
      // The harness's exit hook kills the children.
      process.exit(130);
    }
    firstSignalAt = Date.now();
    print('');
    print('Stopping the sandbox… (Ctrl-C again to force)');
    controller.abort();
    stopRequested();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  print(`Starting the deploy pipelines sandbox (data in ${displayPath(options.dataDir)})`);
  const started = Date.now();
  try {
    sandbox = await startSandbox({ ...options, print, signal: controller.signal });
  } catch (err) {
    // Whatever broke after Ctrl-C (a child interrupted with us, say) is part of stopping.
    if (err instanceof SandboxAbortedError || controller.signal.aborted) {
      print('Stopped.');
      return 0;
    }
    if (err instanceof PortTakenError || err instanceof DataDirBusyError) {
      printError(`sandbox: ${err.message}`);
      return 2;
    }
    printError(`sandbox: could not start: ${(err as Error).message}`);
    return 1;
  }
  print(`  ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  printWelcome(sandbox, options);

  if (!controller.signal.aborted) {
    progress = watchPipelines({ client: sandbox.client, print, deployCommand: DEPLOY_COMMAND, pipelineUrl: (id) => sandbox!.pipelineUrl(id) });
  }
  await stopped;
  await progress?.stop();
  await sandbox.stop();
  print('Stopped. Everything is kept for the next start.');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    printError(`sandbox: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
