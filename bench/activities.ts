/** The baseline's activities: they do nothing, so a bare workflow costs only orchestration. */
export const benchActivities = {
  async benchNoop(_step: number): Promise<void> {
    // Nothing: the baseline measures Temporal and the worker, not work.
  },
};

export type BenchActivities = typeof benchActivities;
