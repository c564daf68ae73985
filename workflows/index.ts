export * from './deploy-pipeline';
export * from './lane';
