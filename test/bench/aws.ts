/**
 * `npm run bench:aws`: what the AWS workflow costs per task, measured on the synthesized state
 * machine run by aws-local-stepfunctions with simulated time. Every Task state is overridden by the
 * real lib/aws steps over lib/core, against an in-memory tasks table that bills each request in
 * DynamoDB's on-demand units; workers are simulated (they sleep in simulated time, beat their lease
 * and store their report). Tasks arrive at a steady rate, spread over the providers, each provider
 * limited by its token bucket and its concurrency, so that most of them wait for a slot.
 *
 * Flags (all optional): --tasks 10000 --providers 4 --rate 2 --burst 10 --concurrency 50
 * --arrival 2 (tasks/s) --attempt-minutes 10 --fail 0.03 (share of attempts that crash)
 * --log-lines 100 (agent log lines the worker stores per attempt) --lambda-ms 100 --seed 1
 */
import { parseArgs } from 'node:util';
import { transition } from '../../lib/core/lifecycle.js';
import type { ProviderLimits } from '../../lib/core/provider-slots.js';
import type { Task } from '../../lib/core/schemas.js';
import { STATES } from '../../lib/infra/workflow.js';
import { resolveDefinition, synthStack } from '../infra/synth.js';
import { makeTask } from '../support/tasks.js';
import { VirtualClock } from '../support/virtual-clock.js';
import { type Definition, SimStore, type WorkerBehaviour, WorkflowSim } from '../support/workflow-sim.js';

/**
 * List prices, us-east-1, on-demand, as published on each service's pricing page (read 2026-12-02;
 * check them before relying on the result).
 */
const PRICES = {
  /** https://aws.amazon.com/step-functions/pricing/ Standard workflows: $0.025 per 1,000 state transitions */
  sfnTransition: 0.025 / 1000,
  /** https://aws.amazon.com/lambda/pricing/ $0.20 per 1M requests */
  lambdaRequest: 0.2 / 1e6,
  /** https://aws.amazon.com/lambda/pricing/ Arm: $0.0000133334 per GB-second (first 7.5 billion GB-s a month) */
  lambdaGbSecond: 0.0000133334,
  /** https://aws.amazon.com/sqs/pricing/ FIFO queues: $0.50 per 1M requests (64 KB chunks) */
  sqsFifoRequest: 0.5 / 1e6,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ $0.625 per million write request units */
  ddbWriteUnit: 0.625 / 1e6,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ $0.125 per million read request units */
  ddbReadUnit: 0.125 / 1e6,
} as const;

/** The Lambda functions' memory (lib/infra/autodev-function.ts). */
const LAMBDA_GB = 512 / 1024;
/** Per task outside the state machine: the API Lambda that creates it and the dispatcher that admits it. */
const LAMBDAS_OUTSIDE = 2;
/** SendMessage by the API, ReceiveMessage and DeleteMessage by the event source mapping. */
const SQS_REQUESTS = 3;

const { values: flags } = parseArgs({
  options: {
    tasks: { type: 'string', default: '10000' },
    providers: { type: 'string', default: '4' },
    rate: { type: 'string', default: '2' },
    burst: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '50' },
    arrival: { type: 'string', default: '2' },
    'attempt-minutes': { type: 'string', default: '10' },
    fail: { type: 'string', default: '0.03' },
    'log-lines': { type: 'string', default: '100' },
    'lambda-ms': { type: 'string', default: '100' },
    seed: { type: 'string', default: '1' },
  },
});
const num = (name: keyof typeof flags) => {
  const v = Number(flags[name]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name}: "${flags[name]}" is not a number`);
  return v;
};
const TASKS = num('tasks');
const PROVIDERS = ['claude', 'codex', 'gemini', 'opencode', 'cursor', 'aider'].slice(0, num('providers'));
const LIMITS: ProviderLimits = {
  ratePerSecond: num('rate'),
  burst: num('burst'),
  concurrency: num('concurrency'),
};
const ARRIVAL = num('arrival');
const ATTEMPT_MS = num('attempt-minutes') * 60_000;
const FAIL = num('fail');
const LOG_LINES = num('log-lines');
const LAMBDA_SECONDS = num('lambda-ms') / 1000;
/** The worker's defaults (lib/aws/worker-task.ts): a heartbeat a minute, a cancel check every 10 s. */
const HEARTBEAT_MS = 60_000;
const CANCEL_POLL_MS = 10_000;
/** The worker flushes its log lines once a second. */
const LOG_FLUSH_MS = 1000;

/** A small seeded generator (mulberry32), so that runs repeat. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
};

async function main() {
  const wall = Date.now();
  // the definition is all it needs: no Lambda bundling
  const { template } = synthStack({ 'aws:cdk:bundling-stacks': [] as unknown as string });
  const simStart = Date.now();
  const resource = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0];
  const definition = resolveDefinition(resource?.Properties.DefinitionString) as unknown as Definition;

  const random = rng(num('seed'));
  const store = new SimStore(false);
  const start = Date.parse('2026-12-01T08:00:00Z');
  const clock = new VirtualClock(start);
  clock.install();
  let workerReads = 0;
  let workerMinutes = 0;
  const sim = new WorkflowSim({
    definition,
    store,
    available: (p) => PROVIDERS.includes(p),
    limits: () => LIMITS,
    now: () => new Date(Date.now()),
    worker: async (taskId) => {
      const ms = ATTEMPT_MS * (0.5 + random());
      await new Promise((r) => setTimeout(r, ms));
      workerMinutes += ms / 60_000;
      // what the worker writes and reads while it runs
      for (let i = 0; i < Math.floor(ms / HEARTBEAT_MS); i++) store.heartbeat(taskId);
      workerReads += Math.floor(ms / CANCEL_POLL_MS) + 1;
      const flushes = Math.min(LOG_LINES, Math.ceil(ms / LOG_FLUSH_MS));
      for (let i = 0; i < flushes; i++) {
        const lines = Math.floor(LOG_LINES / flushes) + (i < LOG_LINES % flushes ? 1 : 0);
        if (lines > 0)
          await store.appendLogs(
            taskId,
            Array.from({ length: lines }, () => 'x'.repeat(120)),
          );
      }
      const behaviour: WorkerBehaviour =
        random() < FAIL
          ? {
              ok: false,
              errorClass: 'crash',
              message: 'exit 1',
              usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
            }
          : { ok: true, summary: 'done', usage: { inputTokens: 50_000, outputTokens: 5_000, costUsd: 0.4 } };
      return behaviour;
    },
  });

  const ids: string[] = [];
  let parkedMax = 0;
  const submit = async (i: number) => {
    const now = new Date(Date.now());
    const task = makeTask({
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      requestedProvider: PROVIDERS[i % PROVIDERS.length],
      // kept to it (a named provider alone is a preference that may move to a free one)
      pin: true,
    });
    // the API creates it (and logs it); the dispatcher admits it under its execution's lease
    await store.create(task);
    await store.appendLogs(task.id, ['created']);
    const name = `${task.id}-1-v1`;
    const admitted = transition(
      task,
      'running',
      { lease: { owner: name, expiresAt: now.getTime() + 900_000 } },
      now,
    );
    await store.getById(task.id);
    await store.put(admitted, task.version);
    await store.appendLogs(task.id, [`admitted; workflow ${name} started`]);
    ids.push(task.id);
    await sim.start(name, { taskId: task.id, tenant: task.tenant });
    parkedMax = Math.max(parkedMax, sim.callbacks.parked.size);
  };
  for (let i = 0; i < TASKS; i++) setTimeout(() => void submit(i), ARRIVAL > 0 ? (i / ARRIVAL) * 1000 : 0);
  const sampler = setInterval(() => {
    parkedMax = Math.max(parkedMax, sim.callbacks.parked.size);
  }, 30_000);

  const finished = () =>
    ids.length === TASKS &&
    [...sim.executions.values()].every((e) => e.done) &&
    sim.callbacks.parked.size === 0;
  const completed = await clock.run(finished);
  clearInterval(sampler);
  const simulatedHours = (clock.time() - start) / 3_600_000;
  clock.uninstall();
  if (!completed) throw new Error('the simulation stalled: executions wait for something that never comes');

  // per task
  const rows = ids.map((id) => {
    const execs = sim.executionsOf(id);
    const entered = execs.flatMap((e) => e.entered);
    const task = store.tasks.get(id) as Task;
    const lambdas =
      LAMBDAS_OUTSIDE +
      entered.filter(
        (s) => s === STATES.prepare || s === STATES.record || s === STATES.park || s === STATES.continueAsNew,
      ).length;
    return {
      task,
      transitions: entered.length,
      lambdas,
      parks: entered.filter((s) => s === STATES.park).length,
      executions: execs.length,
      maxEvents: Math.max(...execs.map((e) => e.events)),
    };
  });
  const single = rows.filter((r) => r.task.attempts.length === 1);
  const statuses: Record<string, number> = {};
  for (const r of rows) statuses[r.task.status] = (statuses[r.task.status] ?? 0) + 1;
  const n = rows.length;
  const transitionsAvg = rows.reduce((s, r) => s + r.transitions, 0) / n;
  const lambdasAvg = rows.reduce((s, r) => s + r.lambdas, 0) / n;
  const u = store.usage;
  const writesPerTask = u.writes / n;
  const wruPerTask = u.writeUnits / n;
  const rruPerTask = (u.readUnits + workerReads) / n;
  const cost = {
    sfn: transitionsAvg * PRICES.sfnTransition,
    lambda: lambdasAvg * (PRICES.lambdaRequest + LAMBDA_GB * LAMBDA_SECONDS * PRICES.lambdaGbSecond),
    sqs: SQS_REQUESTS * PRICES.sqsFifoRequest,
    ddb: wruPerTask * PRICES.ddbWriteUnit + rruPerTask * PRICES.ddbReadUnit,
  };
  const total = cost.sfn + cost.lambda + cost.sqs + cost.ddb;
  const logWru = (LOG_LINES + Math.min(LOG_LINES, Math.ceil(ATTEMPT_MS / LOG_FLUSH_MS))) * (1 + FAIL);
  const $ = (x: number) => `$${x.toFixed(6)}`;
  const line = (k: string, v: string) => console.log(`| ${k.padEnd(58)} | ${v.padStart(22)} |`);

  console.log(
    `\nAWS workflow, simulated: ${n} tasks over ${PROVIDERS.length} providers (each ${LIMITS.ratePerSecond} start/s, burst ${LIMITS.burst}, ${LIMITS.concurrency} at once), arriving ${ARRIVAL}/s, attempts ${ATTEMPT_MS / 60_000} min ±50%, ${FAIL * 100}% crash`,
  );
  console.log(
    `${simulatedHours.toFixed(1)} simulated hours in ${((Date.now() - simStart) / 1000).toFixed(0)} s (+${((simStart - wall) / 1000).toFixed(0)} s synth); tasks ${JSON.stringify(statuses)}; at most ${parkedMax} parked at once\n`,
  );
  console.log(`| ${'per task'.padEnd(58)} | ${'value'.padStart(22)} |`);
  console.log(`| ${'-'.repeat(58)} | ${'-'.repeat(22)} |`);
  line(
    `state transitions, single-attempt tasks (${single.length}) p50 / max`,
    `${pct(
      single.map((r) => r.transitions),
      50,
    )} / ${Math.max(...single.map((r) => r.transitions))}`,
  );
  line(
    'state transitions, all tasks p50 / p99 / max',
    `${pct(
      rows.map((r) => r.transitions),
      50,
    )} / ${pct(
      rows.map((r) => r.transitions),
      99,
    )} / ${Math.max(...rows.map((r) => r.transitions))}`,
  );
  line(
    'parks per task (mean / max)',
    `${(rows.reduce((s, r) => s + r.parks, 0) / n).toFixed(2)} / ${Math.max(...rows.map((r) => r.parks))}`,
  );
  line('executions per task (max; >1 = continued as new)', `${Math.max(...rows.map((r) => r.executions))}`);
  line('largest execution history (events)', `${Math.max(...rows.map((r) => r.maxEvents))}`);
  line('Lambda invocations (mean, API + dispatch included)', lambdasAvg.toFixed(2));
  line('DynamoDB writes / write units (mean)', `${writesPerTask.toFixed(1)} / ${wruPerTask.toFixed(1)}`);
  line(`  of which worker log lines (${LOG_LINES}/attempt), write units`, logWru.toFixed(1));
  line('DynamoDB read units (mean, worker cancel checks included)', rruPerTask.toFixed(1));
  line('SendTaskSuccess calls (mean; free)', (sim.callbacks.calls / n).toFixed(2));
  line('Step Functions', $(cost.sfn));
  line(`Lambda (${LAMBDA_GB * 1024} MB, ${LAMBDA_SECONDS * 1000} ms each, arm64)`, $(cost.lambda));
  line('SQS FIFO', $(cost.sqs));
  line('DynamoDB on-demand', $(cost.ddb));
  line('platform cost per task (target ≤ $0.0005)', $(total));
  line('Fargate worker-minutes per task (not in the platform cost)', (workerMinutes / n).toFixed(1));
}

await main();
