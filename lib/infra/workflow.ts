import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { PARK_TIMEOUT_SECONDS, WORKER_STATE_TIMEOUT_SECONDS } from '../aws/workflow-steps.js';
import { AutoDevFunction } from './autodev-function.js';
import type { TaskStore } from './task-store.js';
import type { WorkerRuntime } from './worker-runtime.js';

export interface TaskWorkflowProps {
  readonly store: TaskStore;
  readonly runtime: WorkerRuntime;
  /** Longest a task may take across all its attempts. @default 7 days */
  readonly timeout?: Duration;
  /**
   * Rate, burst and concurrency per provider, as JSON (core provider-slots.ts), e.g.
   * `{"*": {"concurrency": 50}, "claude": {"ratePerSecond": 2, "burst": 20, "concurrency": 100}}`.
   * @default DEFAULT_PROVIDER_LIMITS for every provider (1 start/s, burst 10, 50 at once)
   */
  readonly providerLimits?: string;
  /**
   * `maxConcurrent` per agent role, as JSON (core role-slots.ts), e.g. `{"ml": {"maxConcurrent": 2}}`.
   * @default no role limited
   */
  readonly roleLimits?: string;
  /**
   * Share of `provider: "auto"` choices left to exploration, 0 to 1 (ROUTING_EXPLORATION of the
   * prepare function, core routing.ts). @default 0.1
   */
  readonly routingExploration?: number;
}

/** State names: the tests override Task states by these names. */
export const STATES = {
  prepare: 'Prepare attempt',
  runOrStop: 'Run or stop?',
  startAttempt: 'Start attempt',
  runWorker: 'Run worker',
  record: 'Record attempt',
  retryOrFinish: 'Retry or finish?',
  backOff: 'Back off',
  waitForProvider: 'Wait for a provider',
  waitForTurn: 'Wait for its turn',
  park: 'Park until a slot frees',
  continueAsNew: 'Continue in a fresh execution',
  done: 'Done',
} as const;

/**
 * The task workflow on Step Functions Standard:
 * prepare (core: provider admitted by provider health, attempt, lease; or wait for a provider) →
 * ECS RunTask .sync with the attempt's cpu/memory →
 * record (core: decideAfterAttempt) → back off and loop for a retry or failover, or finish.
 * The worker enforces each attempt's time limit itself; the worker state's own limit only stops a
 * hung worker. A state timeout or crash is recorded as a failed attempt; a worker the
 * infrastructure never ran (capacity, throttling, image pull) is retried with backoff without
 * using an attempt (core `classifyWorkerFailure`, `recordInfrastructureFailure`).
 */
export class TaskWorkflow extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  public readonly prepareFunction: AutoDevFunction;
  public readonly recordFunction: AutoDevFunction;
  public readonly logGroup: logs.LogGroup;
  /** Per-provider limits (JSON) the step functions read; the reaper reads them too. */
  private readonly providerLimits?: string;
  /** Per-role limits (JSON) the step functions and the reaper read. */
  private readonly roleLimits?: string;
  private readonly selfArn: string;

  constructor(scope: Construct, id: string, props: TaskWorkflowProps) {
    super(scope, id);
    const { runtime } = props;
    this.providerLimits = props.providerLimits;
    this.roleLimits = props.roleLimits;
    const environment = { AUTODEV_PROVIDERS: runtime.providers };
    this.prepareFunction = new AutoDevFunction(this, 'Prepare', {
      entry: 'workflow-prepare',
      description: 'AutoDev workflow: start the next attempt',
      environment,
    });
    this.recordFunction = new AutoDevFunction(this, 'Record', {
      entry: 'workflow-record',
      description: 'AutoDev workflow: record an attempt and decide what comes next',
      environment,
    });
    props.store.grantReadWrite(this.prepareFunction);
    props.store.grantReadWrite(this.recordFunction);
    // The state machine's own ARN, built from its name: the step functions resume parked executions
    // (SendTaskSuccess) and Prepare starts the execution a long wait continues in; a reference to
    // the state machine itself would be circular (it invokes these functions).
    const stateMachineName = `${Stack.of(this).stackName}-tasks`;
    const selfArn = Stack.of(this).formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.selfArn = selfArn;
    this.grantResumeParked(this.prepareFunction);
    this.grantResumeParked(this.recordFunction);
    this.prepareFunction.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [selfArn] }),
    );
    this.prepareFunction.addEnvironment('STATE_MACHINE_ARN', selfArn);
    if (props.routingExploration !== undefined)
      this.prepareFunction.addEnvironment('ROUTING_EXPLORATION', String(props.routingExploration));
    // which providers have a key: a provider without one is never chosen nor failed over to
    for (const fn of [this.prepareFunction, this.recordFunction]) {
      runtime.providerSecret.grantRead(fn);
      fn.addEnvironment('PROVIDER_SECRET_ARN', runtime.providerSecret.secretArn);
    }

    const stepRetry = {
      errors: ['States.TaskFailed'],
      interval: Duration.seconds(2),
      maxAttempts: 4,
      backoffRate: 2,
    };
    const prepare = new tasks.LambdaInvoke(this, STATES.prepare, {
      lambdaFunction: this.prepareFunction,
      payload: sfn.TaskInput.fromObject({
        taskId: sfn.JsonPath.stringAt('$.taskId'),
        tenant: sfn.JsonPath.stringAt('$.tenant'),
        executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
        // how many times in a row it waited (prepared.waits), so that a long wait continues anew
        state: sfn.JsonPath.objectAt('$'),
      }),
      payloadResponseOnly: true,
      resultPath: '$.prepared',
    }).addRetry(stepRetry);

    const record = new tasks.LambdaInvoke(this, STATES.record, {
      lambdaFunction: this.recordFunction,
      payload: sfn.TaskInput.fromObject({
        taskId: sfn.JsonPath.stringAt('$.taskId'),
        tenant: sfn.JsonPath.stringAt('$.tenant'),
        executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
        attempt: sfn.JsonPath.numberAt('$.prepared.plan.attempt'),
        failure: sfn.JsonPath.objectAt('$.failure'),
      }),
      payloadResponseOnly: true,
      resultPath: '$.recorded',
    }).addRetry(stepRetry);

    const runWorker = new tasks.EcsRunTask(this, STATES.runWorker, {
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      cluster: runtime.cluster,
      taskDefinition: runtime.taskDefinition,
      launchTarget: new tasks.EcsFargateLaunchTarget({ platformVersion: ecs.FargatePlatformVersion.LATEST }),
      subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [runtime.securityGroup],
      assignPublicIp: false,
      cpu: sfn.JsonPath.stringAt('$.prepared.plan.cpuUnits'),
      memoryMiB: sfn.JsonPath.stringAt('$.prepared.plan.memory'),
      containerOverrides: [
        {
          containerDefinition: runtime.container,
          environment: [
            { name: 'AUTODEV_TASK_ID', value: sfn.JsonPath.stringAt('$.taskId') },
            { name: 'AUTODEV_TENANT', value: sfn.JsonPath.stringAt('$.tenant') },
            {
              name: 'AUTODEV_ATTEMPT',
              value: sfn.JsonPath.format('{}', sfn.JsonPath.stringAt('$.prepared.plan.attempt')),
            },
          ],
        },
      ],
      taskTimeout: sfn.Timeout.duration(Duration.seconds(WORKER_STATE_TIMEOUT_SECONDS)),
      resultPath: sfn.JsonPath.DISCARD,
    });
    // no Fargate capacity or a throttled RunTask: try again at once, then the record step backs off
    runWorker.addRetry({
      errors: ['ECS.AmazonECSException', 'ECS.ServerException'],
      interval: Duration.seconds(10),
      maxAttempts: 3,
      backoffRate: 2,
    });
    runWorker.addCatch(record, { errors: ['States.ALL'], resultPath: '$.failure' });

    const done = new sfn.Succeed(this, STATES.done);
    const startAttempt = new sfn.Pass(this, STATES.startAttempt, {
      result: sfn.Result.fromObject({}),
      resultPath: '$.failure',
    });
    const backOff = new sfn.Wait(this, STATES.backOff, {
      time: sfn.WaitTime.secondsPath('$.recorded.waitSeconds'),
    });
    const waitForProvider = new sfn.Wait(this, STATES.waitForProvider, {
      time: sfn.WaitTime.secondsPath('$.prepared.waitSeconds'),
    });
    const waitForTurn = new sfn.Wait(this, STATES.waitForTurn, {
      time: sfn.WaitTime.secondsPath('$.prepared.startInSeconds'),
    });
    // parked at no cost until a slot frees (the record step resumes it) or, as a safety net, a timeout
    const park = new tasks.LambdaInvoke(this, STATES.park, {
      lambdaFunction: this.prepareFunction,
      integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
      payload: sfn.TaskInput.fromObject({
        step: 'park',
        taskId: sfn.JsonPath.stringAt('$.taskId'),
        tenant: sfn.JsonPath.stringAt('$.tenant'),
        executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
        taskToken: sfn.JsonPath.taskToken,
        providers: sfn.JsonPath.listAt('$.prepared.providers'),
        waiterKey: sfn.JsonPath.stringAt('$.prepared.waiterKey'),
      }),
      resultPath: sfn.JsonPath.DISCARD,
      taskTimeout: sfn.Timeout.duration(Duration.seconds(PARK_TIMEOUT_SECONDS)),
    }).addRetry(stepRetry);
    park.addCatch(prepare, { errors: ['States.Timeout'], resultPath: sfn.JsonPath.DISCARD });
    const continueAsNew = new tasks.LambdaInvoke(this, STATES.continueAsNew, {
      lambdaFunction: this.prepareFunction,
      payload: sfn.TaskInput.fromObject({
        step: 'continue',
        taskId: sfn.JsonPath.stringAt('$.taskId'),
        tenant: sfn.JsonPath.stringAt('$.tenant'),
        executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
      }),
      payloadResponseOnly: true,
      resultPath: '$.continued',
    }).addRetry(stepRetry);
    const attempt = startAttempt
      .next(runWorker)
      .next(record)
      .next(
        new sfn.Choice(this, STATES.retryOrFinish)
          .when(sfn.Condition.stringEquals('$.recorded.next', 'retry'), backOff.next(prepare))
          .otherwise(done),
      );
    const definition = prepare.next(
      new sfn.Choice(this, STATES.runOrStop)
        .when(
          sfn.Condition.and(
            sfn.Condition.stringEquals('$.prepared.action', 'run'),
            sfn.Condition.isPresent('$.prepared.startInSeconds'),
          ),
          waitForTurn.next(startAttempt),
        )
        .when(sfn.Condition.stringEquals('$.prepared.action', 'run'), attempt)
        .when(sfn.Condition.stringEquals('$.prepared.action', 'park'), park.next(prepare))
        .when(sfn.Condition.stringEquals('$.prepared.action', 'wait'), waitForProvider.next(prepare))
        .when(sfn.Condition.stringEquals('$.prepared.action', 'continue'), continueAsNew.next(done))
        .otherwise(done),
    );

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: props.timeout ?? Duration.days(7),
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
  }

  /** Lets `fn` resume executions parked on a full provider or role (SendTaskSuccess on this state machine), with their limits. */
  grantResumeParked(fn: AutoDevFunction): void {
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['states:SendTaskSuccess'], resources: [this.selfArn] }),
    );
    if (this.providerLimits) fn.addEnvironment('PROVIDER_LIMITS', this.providerLimits);
    if (this.roleLimits) fn.addEnvironment('ROLE_LIMITS', this.roleLimits);
  }
}
