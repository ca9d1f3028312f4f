/**
 * The ARN of the ECS task this container runs in, from the task metadata endpoint (v4) that ECS
 * gives every Fargate container (`ECS_CONTAINER_METADATA_URI_V4`). undefined outside ECS or when the
 * endpoint does not answer within `timeoutMs`.
 */
export async function ecsTaskArn(
  metadataUri: string | undefined,
  timeoutMs = 2000,
): Promise<string | undefined> {
  if (!metadataUri) return undefined;
  try {
    const res = await fetch(`${metadataUri}/task`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { TaskARN?: unknown };
    return typeof body.TaskARN === 'string' ? body.TaskARN : undefined;
  } catch {
    return undefined;
  }
}
