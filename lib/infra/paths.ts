import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the folder holding cdk.json), whether the app runs from source or a bundle. */
export function repoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'cdk.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`No cdk.json above ${from}`);
  }
}

/** A Lambda entry point under lambdas/. */
export const lambdaEntry = (name: string): string => join(repoRoot(), 'lambdas', `${name}.ts`);
