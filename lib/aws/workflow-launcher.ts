import { ExecutionAlreadyExists, type SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';

/** What a workflow execution starts from. */
export interface WorkflowInput {
  taskId: string;
  tenant: string;
}

/**
 * The execution name of one admission of a task: task id + the attempt it starts with + the task
 * version the admission wrote. A redelivered message finds the same admission and the same name; a
 * task re-queued after a lost execution is admitted at a new version and gets a new name (a closed
 * execution's name cannot be used again for 90 days).
 */
export const executionName = (taskId: string, attempt: number, version: number): string =>
  `${taskId}-${attempt}-v${version}`;

/**
 * Starts the task workflow (Step Functions Standard). Execution names are fixed at admission, so
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
