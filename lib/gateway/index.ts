export { guessVendor, WIRES } from './adapters/index.js';
export type { RefusalKind, Vendor } from './adapters/types.js';
export { VENDORS } from './adapters/types.js';
export { type GatewayOptions, ModelGateway } from './server.js';
export {
  GatewaySession,
  type RateLimitEvent,
  type SessionOptions,
  type SessionStatus,
  type TenantBudgetCheck,
} from './session.js';
