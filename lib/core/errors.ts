/**
 * Typed domain errors. Each carries a stable `code` and maps to one HTTP status in one place
 * (see `httpStatusOf`). Messages are written for people; they never carry stack traces.
 */
export abstract class AutoDevError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly details?: unknown;

  constructor(message: string, details?: unknown) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
}

export class ValidationError extends AutoDevError {
  readonly code = 'validation_failed';
  readonly status = 400;
}

export class UnauthorizedError extends AutoDevError {
  readonly code = 'unauthorized';
  readonly status = 401;
}

export class ForbiddenError extends AutoDevError {
  readonly code = 'forbidden';
  readonly status = 403;
}

export class NotFoundError extends AutoDevError {
  readonly code = 'not_found';
  readonly status = 404;
}

export class ConflictError extends AutoDevError {
  readonly code: string = 'conflict';
  readonly status = 409;
}

/** A conditional write lost: someone else moved the record first. */
export class VersionConflictError extends ConflictError {
  override readonly code = 'version_conflict';
}

export class PayloadTooLargeError extends AutoDevError {
  readonly code = 'payload_too_large';
  readonly status = 413;
}

export class TooManyRequestsError extends AutoDevError {
  readonly code = 'too_many_requests';
  readonly status = 429;
}

/** Configuration is invalid; raised at start so the process fails fast. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * The classes every attempt failure is mapped to (see DESIGN.md). All but `workspace` say
 * something about the provider; `workspace` is a fault of the repository or the machine (the
 * repository is missing, access is denied, the disk is full) and never counts against a provider.
 */
export const PROVIDER_ERROR_CLASSES = [
  'auth',
  'rate_limit',
  'overloaded',
  'context_overflow',
  'timeout',
  'crash',
  'no_changes',
  'not_installed',
  'budget',
  'workspace',
] as const;
export type ProviderErrorClass = (typeof PROVIDER_ERROR_CLASSES)[number];

export class ProviderError extends Error {
  constructor(
    readonly errorClass: ProviderErrorClass,
    message: string,
    readonly provider?: string,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Maps any thrown value to an HTTP status and a body that says nothing about internals. */
export function toHttpError(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof AutoDevError) {
    const body: ErrorBody = { error: { code: err.code, message: err.message } };
    if (err.details !== undefined) body.error.details = err.details;
    return { status: err.status, body };
  }
  return {
    status: 500,
    body: { error: { code: 'internal', message: 'Internal error; the request was not completed.' } },
  };
}
