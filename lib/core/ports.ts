import type { Principal } from './access.js';
import type { AuditEntry, AuditQuery, NewAuditEntry } from './audit.js';
import type { ProviderErrorClass } from './errors.js';
import type { Task, TaskStatus, Usage } from './schemas.js';

// ---------------------------------------------------------------- store

export interface IdempotencyClaim {
  key: string;
  /** Hash of the request body; the same key with another body is a conflict. */
  bodyHash: string;
  ttlSeconds: number;
}

export interface ListQuery {
  status?: TaskStatus;
  role?: string;
  /** Tasks that ran last on this provider, or asked for it. */
  provider?: string;
  /** Tasks that carry this label. */
  label?: string;
  limit: number;
  cursor?: string;
}

export interface LogLine {
  seq: number;
  at: string;
  text: string;
}

/**
 * Where tasks live. Every change is a conditional write on `version`: `put` fails with
 * VersionConflictError when the stored version is not `expectedVersion`.
 */
export interface TaskStore {
  /** Inserts a new task. With an idempotency claim, returns the earlier task for a repeated key. */
  create(task: Task, idempotency?: IdempotencyClaim): Promise<{ task: Task; created: boolean }>;
  /**
   * Inserts up to 100 new tasks all together or none (one transaction). With an idempotency claim,
   * returns the earlier batch's tasks for a repeated key and body; ConflictError for another body.
   */
  createBatch(tasks: Task[], idempotency?: IdempotencyClaim): Promise<{ tasks: Task[]; created: boolean }>;
  /** The task, or undefined when it does not exist or belongs to another tenant. */
  get(tenant: string, id: string): Promise<Task | undefined>;
  list(tenant: string, query: ListQuery): Promise<{ items: Task[]; nextCursor?: string }>;
  /** Stores `task` (whose version must be expectedVersion + 1) if the stored version is expectedVersion. */
  put(task: Task, expectedVersion: number): Promise<void>;
  appendLogs(taskId: string, lines: string[], now: Date): Promise<void>;
  readLogs(taskId: string, afterSeq: number, limit: number): Promise<{ lines: LogLine[]; lastSeq: number }>;
  countByStatus(): Promise<Record<TaskStatus, number>>;
}

/** What erasing one tenant's tasks removed (see TenantErasure in erasure.ts). */
export interface TaskErasure {
  /** Task records erased. */
  tasks: number;
  /** Log lines of those tasks. */
  logLines: number;
  /** Idempotency keys that named those tasks (or the tenant). */
  idempotencyKeys: number;
  /** Branch records (`branch`, `commit`, `pullRequest`) the erased tasks carried. */
  branches: number;
}

/** A task store that can erase one tenant's finished tasks, for `DELETE /v1/tenants/{tenant}/data`. */
export interface ErasableTaskStore extends TaskStore {
  /**
   * Deletes the tenant's finished tasks (succeeded, failed, cancelled) with their logs, attempt
   * reports and idempotency keys. A task not finished is never deleted, whatever happens meanwhile.
   */
  eraseTenant(tenant: string): Promise<TaskErasure>;
}

/** A store that is also the local queue: ready tasks are claimed from it under a lease. */
export interface ClaimableTaskStore extends TaskStore {
  /**
   * Atomically moves the most urgent ready task (queued, or retrying whose notBefore has passed)
   * to running under a lease held by `owner`; undefined when none is ready.
   */
  claimNext(owner: string, leaseMs: number, now: Date): Promise<Task | undefined>;
  /** A task of any tenant, for the executor's own steps (the API reads through `get`). */
  getById(id: string): Promise<Task | undefined>;
  /**
   * The head of every ready queue: each tenant's oldest queued task of each agent role and
   * priority (index-backed, cheap however many are queued), and retrying tasks now due.
   */
  readyHeads(now: Date): Promise<Task[]>;
  /** Atomically moves the task `id` to running under a lease if it is still ready; undefined otherwise. */
  claim(id: string, owner: string, leaseMs: number, now: Date): Promise<Task | undefined>;
  /** Tasks in `running` across all tenants (for lease checks on start and by the reaper). */
  listRunning(): Promise<Task[]>;
  /** Blocked tasks across all tenants (to release them when their dependencies finish). */
  listBlocked(): Promise<Task[]>;
  /** Time of the earliest retrying task's notBefore, to know when to wake up. */
  nextWakeAt(): Promise<number | undefined>;
}

// ---------------------------------------------------------------- auth

export interface Authenticator {
  /** Returns the caller, or throws UnauthorizedError. */
  authenticate(
    headers: Record<string, string | undefined>,
    claims?: Record<string, unknown>,
  ): Promise<Principal>;
}

// ---------------------------------------------------------------- providers

export interface DriverInput {
  prompt: string;
  /** The workspace (git worktree) the agent edits. */
  workdir: string;
  /** A private, writable directory used as HOME / config dir for this run only. */
  homeDir: string;
  model?: string;
  maxTurns?: number;
  maxBudgetUsd?: number;
  systemPrompt?: string;
  /**
   * The attempt's model gateway session: the CLI is pointed at `baseUrl` with `credential` as its
   * key, and the real key is kept out of its environment. Absent: the CLI talks to its provider.
   */
  gateway?: { baseUrl: string; credential: string };
}

export interface CommandLine {
  args: string[];
  /** Variables the CLI needs on top of the base environment (config dirs, non-interactive switches). */
  env: Record<string, string>;
  /** Text written to stdin before it is closed; stdin is closed at once when absent. */
  stdin?: string;
}

export interface ProcessOutput {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

export interface ParsedOutput {
  /** The agent's final message. */
  text?: string;
  sessionId?: string;
  usage?: Partial<Usage>;
  /** True when the CLI itself reported an error (even with exit code 0). */
  reportedError?: boolean;
  /** A message from the CLI about the error, for people. */
  errorMessage?: string;
  /**
   * The CLI stopped the run itself for a reason no retry mends, though it may exit 0 (Gemini CLI's
   * own loop detection): the task fails with this `error.code`.
   */
  fatalCode?: 'loop_detected';
}

/** One provider CLI: how to call it headless, how to read what it printed, how to classify failures. */
export interface ProviderDriver {
  /** Driver id, e.g. `claude`. */
  readonly name: string;
  /** The binary's standard name on PATH. */
  readonly bin: string;
  /** Environment variables that carry credentials for this CLI (any one suffices). */
  readonly credentialEnv: readonly string[];
  command(input: DriverInput): CommandLine;
  /** Reads what the CLI printed; `input` is what `command` was given (the model, for pricing). */
  parse(output: ProcessOutput, input?: DriverInput): ParsedOutput;
  /** undefined when the run succeeded. */
  classify(output: ProcessOutput, parsed: ParsedOutput): ProviderErrorClass | undefined;
}

// ---------------------------------------------------------------- audit

/** The audit trail: append-only; an adapter offers no way to change or remove an entry. */
export interface AuditLog {
  append(entry: NewAuditEntry): Promise<void>;
  /** One tenant's entries, newest first, filtered; `nextCursor` when there are more. */
  list(tenant: string, query: AuditQuery): Promise<{ items: AuditEntry[]; nextCursor?: string }>;
}

/** Whether a task passes a list's provider and label filters (for stores that filter after reading). */
export function matchesListFilters(task: Task, q: Pick<ListQuery, 'provider' | 'label'>): boolean {
  if (q.provider && task.provider !== q.provider && task.requestedProvider !== q.provider) return false;
  if (q.label && !task.labels.includes(q.label)) return false;
  return true;
}

/**
 * The one way entries leave the audit trail: a tenant's erasure, for entries older than the legal
 * hold (`before`, an ISO time). Returns how many were removed.
 */
export interface ErasableAuditLog extends AuditLog {
  eraseBefore(tenant: string, before: string): Promise<number>;
}
