/**
 * How the worker process itself is started, read before any of our code runs: the image sets both (Dockerfile
 * ENV and CMD, `npm run worker`) and the benchmark starts its workers with them, so that what is measured is
 * what runs.
 *
 * MALLOC_ARENA_MAX: glibc gives each thread that allocates its own malloc arena; the SDK's core, Node and V8 run
 * a dozen threads, and memory freed in an arena is rarely handed back. Two arenas kept a worker with 1,500
 * parked pipelines about 85 MB smaller at no cost we could measure (BENCHMARKS.md).
 */
export const WORKER_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * --optimize-for-size: V8 otherwise sizes each heap (the main thread's and the workflow thread's) for speed, and
 * after a busy spell keeps two to three times its live data. A worker spends its life waiting on the network, not
 * computing; with the flag one with 1,500 parked pipelines was about 45% smaller (BENCHMARKS.md). Node refuses it
 * in NODE_OPTIONS, so it goes on the command line.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--optimize-for-size'];
