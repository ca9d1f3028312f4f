import { ForbiddenError } from './errors.js';
import type { AccessRole } from './schemas.js';

/** Who called: the tenant and access role come from verified token claims, never from the body. */
export interface Principal {
  tenant: string;
  role: AccessRole;
  subject: string;
}

export type Action =
  | 'task:create'
  | 'task:read'
  | 'task:cancel'
  | 'task:retry'
  | 'metrics:read'
  | 'schedule:read'
  | 'schedule:manage';

const POLICY: Record<AccessRole, readonly Action[]> = {
  admin: [
    'task:create',
    'task:read',
    'task:cancel',
    'task:retry',
    'metrics:read',
    'schedule:read',
    'schedule:manage',
  ],
  operator: [
    'task:create',
    'task:read',
    'task:cancel',
    'task:retry',
    'metrics:read',
    'schedule:read',
    'schedule:manage',
  ],
  submitter: ['task:create', 'task:read', 'task:cancel', 'schedule:read'],
  viewer: ['task:read', 'schedule:read'],
};

export function can(principal: Principal, action: Action): boolean {
  return POLICY[principal.role].includes(action);
}

export function authorize(principal: Principal, action: Action): void {
  if (!can(principal, action)) {
    throw new ForbiddenError(`Access role "${principal.role}" may not perform ${action}.`);
  }
}
