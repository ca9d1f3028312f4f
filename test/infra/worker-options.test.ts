import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { repoRoot } from '../../lib/infra/paths.js';
import { synthStack } from './synth.js';

let template: Template;
beforeAll(() => {
  ({ template } = synthStack());
});

describe('the worker image and its task definition', () => {
  it('runs an init process as PID 1 that reaps orphans (ECS initProcessEnabled)', () => {
    // Assert
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [
        Match.objectLike({
          Name: 'worker',
          ReadonlyRootFilesystem: true,
          LinuxParameters: { InitProcessEnabled: true },
        }),
      ],
    });
  });

  it('builds on a Node version the pinned CLIs accept (22 or later)', () => {
    // Arrange
    const dockerfile = readFileSync(join(repoRoot(), 'containers', 'worker', 'Dockerfile'), 'utf8');
    // Act
    const image = dockerfile.match(/^ARG NODE_IMAGE=node:(\d+)[^\s]*$/m);
    const target = dockerfile.match(/--target=node(\d+)/);
    // Assert
    expect(Number(image?.[1])).toBeGreaterThanOrEqual(22);
    expect(Number(target?.[1])).toBe(Number(image?.[1]));
  });
});
