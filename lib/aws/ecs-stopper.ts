import { type ECSClient, StopTaskCommand } from '@aws-sdk/client-ecs';
import type { Task } from '../core/schemas.js';

/**
 * Stops the Fargate worker of a cancelled task: the ECS task its running attempt recorded
 * (`workerRef`, written by the worker's first heartbeat), and nothing else: no listing of the
 * cluster. A worker that has not recorded itself yet sees the cancel on its own (it polls the
 * task), so this only makes the stop faster.
 */
export class EcsWorkerStopper {
  constructor(
    private readonly ecs: ECSClient,
    private readonly cluster: string,
    private readonly store: { getById(id: string): Promise<Task | undefined> },
  ) {}

  /** Returns the ARNs of the ECS tasks asked to stop. */
  async stop(taskId: string, reason: string): Promise<string[]> {
    const task = await this.store.getById(taskId);
    const arn = task?.attempts.find((a) => a.outcome === 'running')?.workerRef;
    if (!arn) return [];
    try {
      await this.ecs.send(
        new StopTaskCommand({ cluster: this.cluster, task: arn, reason: reason.slice(0, 255) }),
      );
    } catch (err) {
      // the worker already stopped (its ARN is no longer known to ECS): nothing left to stop
      if ((err as Error).name === 'InvalidParameterException') return [];
      throw err;
    }
    return [arn];
  }
}
