/** Kept only for the import in workflows/deploy-pipeline.ts; everything else imports from '../activities'. */
export * from '.';
