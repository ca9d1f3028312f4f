import { DescribeTasksCommand, type ECSClient, ListTasksCommand, StopTaskCommand } from '@aws-sdk/client-ecs';

/** The environment variable that names the AutoDev task a worker container runs. */
export const WORKER_TASK_ID_ENV = 'AUTODEV_TASK_ID';

/**
 * Stops the Fargate worker of a cancelled task. Workers carry their task id in a container
 * environment override; the worker also polls for cancellation itself, so this only makes it faster.
 */
export class EcsWorkerStopper {
  constructor(
    private readonly ecs: ECSClient,
    private readonly cluster: string,
  ) {}

  /** Returns the ARNs of the ECS tasks asked to stop. */
  async stop(taskId: string, reason: string): Promise<string[]> {
    const stopped: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.ecs.send(
        new ListTasksCommand({ cluster: this.cluster, desiredStatus: 'RUNNING', nextToken }),
      );
      nextToken = page.nextToken;
      const arns = page.taskArns ?? [];
      if (arns.length === 0) continue;
      const described = await this.ecs.send(new DescribeTasksCommand({ cluster: this.cluster, tasks: arns }));
      for (const t of described.tasks ?? []) {
        const env = (t.overrides?.containerOverrides ?? []).flatMap((c) => c.environment ?? []);
        if (!t.taskArn || !env.some((e) => e.name === WORKER_TASK_ID_ENV && e.value === taskId)) continue;
        await this.ecs.send(
          new StopTaskCommand({ cluster: this.cluster, task: t.taskArn, reason: reason.slice(0, 255) }),
        );
        stopped.push(t.taskArn);
      }
    } while (nextToken);
    return stopped;
  }
}
