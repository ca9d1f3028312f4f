import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';

/** What a workflow execution starts from. */
export interface WorkflowInput {
  taskId: string;
  tenant: string;
}

/** The execution name for a task's run that begins with attempt `attempt`: one execution per admission. */
export const executionName = (taskId: string, attempt: number): string => `${taskId}-${attempt}`;

/**
 * Starts the task workflow (Step Functions Standard). Execution names are task id + attempt, so
 * starting the same run twice (a redelivered message, a retried Lambda) starts it once.
 */
export class StepFunctionsLauncher {
  constructor(
    private readonly sfn: SFNClient,
    private readonly stateMachineArn: string,
  ) {}

  /** Returns the execution ARN, and whether this call started it. */
  async start(name: string, input: WorkflowInput): Promise<{ executionArn: string; started: boolean }> {
    try {
      const res = await this.sfn.send(
        new StartExecutionCommand({
          stateMachineArn: this.stateMachineArn,
          name,
          input: JSON.stringify(input),
        }),
      );
      return { executionArn: res.executionArn ?? '', started: true };
    } catch (err) {
      if (err instanceof ExecutionAlreadyExists || (err as Error).name === 'ExecutionAlreadyExists') {
        const arn = this.stateMachineArn.replace(':stateMachine:', ':execution:');
        return { executionArn: `${arn}:${name}`, started: false };
      }
      throw err;
    }
  }
}
