export * from './http';
export * from './github';
export * from './argocd';
export * from './release-app';
export * from './app-endpoints';
export * from './charts-repo';
