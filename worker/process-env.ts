/**
 * Environment of the worker process itself, read by the C library before any of our code runs: the image sets
 * it (Dockerfile ENV) and the benchmark starts the worker with it, so that what is measured is what runs.
 *
 * MALLOC_ARENA_MAX: glibc gives each thread that allocates its own malloc arena; the SDK's core, Node and V8 run
 * a dozen threads, and memory freed in an arena is rarely handed back. Two arenas kept a worker with 1,500
 * parked pipelines about 85 MB smaller at no cost we could measure (BENCHMARKS.md).
 */
export const WORKER_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
