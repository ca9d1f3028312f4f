import { anthropicWire } from './anthropic.js';
import { geminiWire } from './gemini.js';
import { openaiWire } from './openai.js';
import type { Vendor, VendorWire } from './types.js';

export const WIRES: Readonly<Record<Vendor, VendorWire>> = {
  anthropic: anthropicWire,
  openai: openaiWire,
  gemini: geminiWire,
};

/** The vendor whose error format suits a request no session claims, from its path and headers. */
export function guessVendor(path: string, headers: Record<string, unknown>): Vendor {
  if (/:(stream)?[gG]enerateContent$/.test(path) || headers['x-goog-api-key'] !== undefined) return 'gemini';
  if (path.startsWith('/v1/messages') || headers['x-api-key'] !== undefined) return 'anthropic';
  return 'openai';
}
