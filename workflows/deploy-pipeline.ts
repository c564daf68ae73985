// Placeholder: the real DeployPipeline is being written.
export async function DeployPipeline(): Promise<void> {}
