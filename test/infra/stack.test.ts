import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { App, Validations } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { AutoDevStack } from '../../lib/infra/stack.js';
import { AUDIENCE, ISSUER, synthStack } from './synth.js';

/** Replaces asset hashes (Lambda bundles, the worker image) so the snapshot only changes with the design. */
function redactAssets(template: unknown): unknown {
  return JSON.parse(JSON.stringify(template).replace(/[0-9a-f]{64}/g, '<asset-hash>'));
}

describe('AutoDev stack', () => {
  let template: Template;
  let synth: () => string;
  let outdir = '';
  beforeAll(() => {
    ({ template, synth } = synthStack());
  });

  it('synthesizes with cdk-nag AwsSolutionsChecks and no unacknowledged finding', () => {
    expect(() => {
      outdir = synth();
    }).not.toThrow();
  });

  it('fails synthesis on cdk-nag findings when they are not acknowledged', () => {
    // Arrange: the same stack without AutoDev's acknowledgments
    const app = new App({ context: { '@aws-cdk/aws-stepfunctions-tasks:fixRunEcsTaskPolicy': true } });
    new AutoDevStack(app, 'Bare', { issuer: ISSUER, audience: [AUDIENCE] });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    // Act + Assert
    expect(() => app.synth()).toThrow(/AwsSolutions-SMG4/);
  });

  it('bundles each Lambda function under 1 MB', () => {
    const dir = outdir || synth();
    const bundles = readdirSync(dir)
      .map((d) => join(dir, d, 'index.mjs'))
      .filter((f) => existsSync(f));
    expect(bundles).toHaveLength(7);
    for (const f of bundles) expect({ f, small: statSync(f).size < 1_000_000 }).toEqual({ f, small: true });
  });

  it('matches the whole-stack snapshot (asset hashes redacted)', () => {
    expect(redactAssets(template.toJSON())).toMatchSnapshot();
  });
});
