import { z } from 'zod';
import { authorize, type Principal } from './access.js';
import { NotFoundError, ValidationError } from './errors.js';
import type { AgentRole } from './roles.js';
import { describeIssues } from './schemas.js';

/**
 * Full-access mode: an agent role whose tasks' agents get the machine's network beyond the
 * sandbox (sandbox.ts). It exists only as this per-tenant, per-role setting, off until an admin of
 * the tenant turns it on (`PUT /v1/roles/{role}/full-access`); every change and every refusal is in
 * the audit trail.
 */
export interface RoleSetting {
  tenant: string;
  role: string;
  fullAccess: boolean;
  /** Who changed it last, and when (ISO time). */
  updatedBy: string;
  updatedAt: string;
}

/** Where the settings live (a table locally). */
export interface RoleSettingsStore {
  get(tenant: string, role: string): Promise<RoleSetting | undefined>;
  put(setting: RoleSetting): Promise<void>;
}

export const FullAccessChange = z.object({ enabled: z.boolean() }).strict();

/** The body of a full-access change, or 400 naming the field. */
export function parseFullAccessChange(body: unknown): boolean {
  const parsed = FullAccessChange.safeParse(body);
  if (!parsed.success) {
    throw new ValidationError('The body must be {"enabled": true|false}.', describeIssues(parsed.error));
  }
  return parsed.data.enabled;
}

export class RoleSettingsService {
  constructor(
    private readonly store: RoleSettingsStore,
    private readonly roles: () => Readonly<Record<string, AgentRole>>,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private known(role: string): void {
    if (!Object.hasOwn(this.roles(), role)) throw new NotFoundError(`No agent role ${role}.`);
  }

  /** The tenant's setting for `role` (default: no full access). */
  async read(principal: Principal, role: string): Promise<RoleSetting> {
    authorize(principal, 'task:read');
    this.known(role);
    return (
      (await this.store.get(principal.tenant, role)) ?? {
        tenant: principal.tenant,
        role,
        fullAccess: false,
        updatedBy: '',
        updatedAt: '',
      }
    );
  }

  /** Turns full access on or off for the tenant's tasks of `role`: admins only (403 otherwise). */
  async setFullAccess(principal: Principal, role: string, enabled: boolean): Promise<RoleSetting> {
    authorize(principal, 'role:manage');
    this.known(role);
    const setting: RoleSetting = {
      tenant: principal.tenant,
      role,
      fullAccess: enabled,
      updatedBy: principal.subject,
      updatedAt: this.now().toISOString(),
    };
    await this.store.put(setting);
    return setting;
  }

  /** Whether the tasks of `tenant` and `role` run with full access (what the executor asks). */
  async fullAccess(tenant: string, role: string): Promise<boolean> {
    return (await this.store.get(tenant, role))?.fullAccess === true;
  }
}
