export * from './deploy-pipeline';
