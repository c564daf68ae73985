import type { PipelineInput } from '../common/types';
import type { PipelineLanes } from './pipeline-lanes';
import type { PipelineState } from './pipeline-state';
import type { Reports } from './reports';
import type { Steps } from './steps';

/** One pipeline run's parts, shared by the steps of its deploy (as argo-rollouts' rolloutContext is). */
export interface PipelineContext {
  readonly input: PipelineInput;
  readonly pipeline: PipelineState;
  readonly steps: Steps;
  readonly reports: Reports;
  readonly lanes: PipelineLanes;
}
