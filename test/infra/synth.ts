import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { buildApp } from '../../lib/infra/app.js';
import { repoRoot } from '../../lib/infra/paths.js';
import type { AutoDevStack } from '../../lib/infra/stack.js';

export const ISSUER = 'https://id.example.com/';
export const AUDIENCE = 'autodev-client';

/**
 * The context the CLI passes to the app: the feature flags of cdk.json and the cached lookups of
 * cdk.context.json (the availability zones of the example account and region).
 */
export const CLI_CONTEXT: Record<string, unknown> = {
  ...JSON.parse(readFileSync(join(repoRoot(), 'cdk.json'), 'utf8')).context,
  ...JSON.parse(readFileSync(join(repoRoot(), 'cdk.context.json'), 'utf8')),
};

/**
 * Builds the app as `cdk synth -c issuer=... -c audience=...` does, through bin/cdk.ts's buildApp;
 * `processEnv` stands in for the variables the CLI sets (`CDK_DEFAULT_REGION`, `CDK_DEFAULT_ACCOUNT`).
 */
export function synthStack(
  extraContext: Record<string, string> = {},
  processEnv: Record<string, string | undefined> = {},
): {
  stack: AutoDevStack;
  template: Template;
  synth: () => string;
  assembly: () => CloudAssembly;
} {
  const { app, stack } = buildApp(
    { context: { ...CLI_CONTEXT, issuer: ISSUER, audience: AUDIENCE, ...extraContext } },
    processEnv,
  );
  return {
    stack,
    template: Template.fromStack(stack),
    synth: () => app.synth().directory,
    assembly: () => app.synth(),
  };
}

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

/**
 * Resolves a synthesized DefinitionString (an Fn::Join of text and references) to plain ASL,
 * standing each reference in with a readable fake ARN.
 */
export function resolveDefinition(definitionString: Json): Json {
  if (typeof definitionString === 'string') return JSON.parse(definitionString);
  const join = (definitionString as { 'Fn::Join'?: [string, Json[]] })['Fn::Join'];
  if (!join) throw new Error('expected an Fn::Join definition');
  const text = join[1]
    .map((part) => {
      if (typeof part === 'string') return part;
      const obj = part as Record<string, Json>;
      if ('Ref' in obj) return obj.Ref === 'AWS::Partition' ? 'aws' : `ref-${String(obj.Ref)}`;
      if ('Fn::GetAtt' in obj) {
        const [id, attr] = obj['Fn::GetAtt'] as [string, string];
        return attr === 'Arn' ? `arn:aws:lambda:eu-west-1:123456789012:function:${id}` : `${id}-${attr}`;
      }
      throw new Error(`unexpected part ${JSON.stringify(part)}`);
    })
    .join(join[0]);
  return JSON.parse(text);
}
