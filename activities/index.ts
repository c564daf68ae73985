export type { PipelineActivities } from './pipeline-activities';
