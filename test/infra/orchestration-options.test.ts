import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../lib/core/errors.js';
import { synthStack } from './synth.js';

type Resource = { [key: string]: unknown };
type Properties = Record<string, unknown>;

/** The worker container's environment variables, by name. */
function workerEnvironment(resources: Record<string, Resource>): Record<string, unknown> {
  const [definition] = Object.values(resources);
  const containers = ((definition as Resource).Properties as Properties).ContainerDefinitions as {
    Environment?: { Name: string; Value: unknown }[];
  }[];
  return Object.fromEntries((containers[0]?.Environment ?? []).map((e) => [e.Name, e.Value]));
}

/** The functions that have `name` in their environment, by logical id without its hash, with its value. */
function functionsWith(resources: Record<string, Resource>, name: string): [string, unknown][] {
  return Object.entries(resources)
    .map(
      ([id, f]) =>
        [
          id.replace(/[0-9A-F]{8}$/, ''),
          ((f.Properties as Properties).Environment as { Variables?: Record<string, unknown> })?.Variables?.[
            name
          ],
        ] as [string, unknown],
    )
    .filter(([, v]) => v !== undefined);
}

describe('-c mergeTrain and -c routingExploration', () => {
  // not given, they change nothing: the stack's snapshot (stack.test.ts) has neither variable
  it('turn the merge train on in the worker, and set the exploration share of the prepare function only', () => {
    // Act
    const { template } = synthStack({ mergeTrain: 'true', routingExploration: '0.25' });
    // Assert
    expect(workerEnvironment(template.findResources('AWS::ECS::TaskDefinition'))).toMatchObject({
      AUTODEV_MERGE_TRAIN: 'on',
    });
    expect(functionsWith(template.findResources('AWS::Lambda::Function'), 'ROUTING_EXPLORATION')).toEqual([
      [expect.stringMatching(/^WorkflowPrepare/), '0.25'],
    ]);
  });

  it('fail the synth naming the option on a bad value', () => {
    expect(() => synthStack({ mergeTrain: 'yes' })).toThrow(ConfigError);
    expect(() => synthStack({ mergeTrain: 'yes' })).toThrow(/^mergeTrain: /);
    for (const bad of ['1.5', '-0.1', 'often', ''])
      expect(() => synthStack({ routingExploration: bad })).toThrow(/^routingExploration: .* from 0 to 1/);
  });
});
