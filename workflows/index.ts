export { DeployPipeline } from './deploy-pipeline';
export { DeployLane } from './lane';
