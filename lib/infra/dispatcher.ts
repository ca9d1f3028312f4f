import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct } from 'constructs';
import { AutoDevFunction } from './autodev-function.js';
import type { TaskQueue } from './task-queue.js';
import type { TaskStore } from './task-store.js';
import type { WorkerRuntime } from './worker-runtime.js';
import type { TaskWorkflow } from './workflow.js';

export interface DispatcherProps {
  readonly store: TaskStore;
  readonly queue: TaskQueue;
  readonly workflow: TaskWorkflow;
  readonly runtime: WorkerRuntime;
}

/** The task-queue consumer: admits ready tasks and starts their workflow; stops cancelled workers. */
export class Dispatcher extends Construct {
  public readonly function: AutoDevFunction;
  /** The ARNs of the worker cluster's ECS tasks (the resource of ecs:StopTask). */
  public readonly workerTasks: string;

  constructor(scope: Construct, id: string, props: DispatcherProps) {
    super(scope, id);
    this.function = new AutoDevFunction(this, 'Function', {
      entry: 'dispatch',
      description: 'AutoDev dispatcher: SQS FIFO task queue -> Step Functions',
      timeout: Duration.seconds(10),
      environment: {
        STATE_MACHINE_ARN: props.workflow.stateMachine.stateMachineArn,
        CLUSTER_ARN: props.runtime.cluster.clusterArn,
      },
    });
    props.store.grantReadWrite(this.function);
    props.workflow.stateMachine.grantStartExecution(this.function);
    // cancel stops the worker by the ECS task ARN its attempt recorded: tasks of the worker cluster only
    this.workerTasks = Stack.of(this).formatArn({
      service: 'ecs',
      resource: 'task',
      resourceName: `${props.runtime.cluster.clusterName}/*`,
    });
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['ecs:StopTask'],
        resources: [this.workerTasks],
        conditions: { ArnEquals: { 'ecs:cluster': props.runtime.cluster.clusterArn } },
      }),
    );
    this.function.addEventSource(
      new SqsEventSource(props.queue.queue, { batchSize: 10, reportBatchItemFailures: true }),
    );
  }
}
