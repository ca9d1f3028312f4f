import { describe, expect, it } from '@jest/globals';
import { checkPlan, epicChildren, epicEnded, extractPlan, planned } from '../../../lib/core/epics.js';
import { transition } from '../../../lib/core/lifecycle.js';
import { makeTask } from '../../support/tasks.js';

const ROLES = ['backend', 'frontend', 'docs'];

describe('epics', () => {
  it("reads the plan from the plan file first, else the answer's last json block, else the whole answer", () => {
    const plan = { tasks: [{ key: 'a', prompt: 'A' }] };
    const block = (p: unknown) => `Thinking.\n\n\`\`\`json\n${JSON.stringify(p)}\n\`\`\`\n`;
    expect(extractPlan('no json here', JSON.stringify(plan))).toEqual(plan);
    expect(extractPlan(`${block({ draft: 1 })}Better:\n${block(plan)}`, undefined)).toEqual(plan);
    expect(extractPlan(JSON.stringify(plan), undefined)).toEqual(plan);
    expect(extractPlan('just prose', undefined)).toBeUndefined();
    expect(extractPlan(`${'x'.repeat(200_001)}`, undefined)).toBeUndefined();
  });

  it('refuses a plan with a clear message: shape, duplicate or unknown keys, unknown roles, cycles', () => {
    const bad = (raw: unknown) => {
      const out = checkPlan(raw, ROLES);
      return out.ok ? 'ok' : out.message;
    };
    expect(bad(undefined)).toMatch(/gave no plan/);
    expect(bad({ tasks: [] })).toMatch(/^The plan is not valid: tasks: /);
    expect(bad({ tasks: [{ key: 'a', prompt: 'A', extra: 1 }] })).toMatch(/tasks\.0: Unrecognized key/);
    expect(
      bad({
        tasks: [
          { key: 'a', prompt: 'A' },
          { key: 'a', prompt: 'B' },
        ],
      }),
    ).toMatch(/tasks\.1\.key "a" is used twice/);
    expect(bad({ tasks: [{ key: 'a', prompt: 'A', dependsOn: ['zz'] }] })).toMatch(/names "zz", no task/);
    expect(bad({ tasks: [{ key: 'a', prompt: 'A', role: 'wizard' }] })).toMatch(
      /role "wizard" is no agent role/,
    );
    expect(
      bad({
        tasks: [
          { key: 'a', prompt: 'A', dependsOn: ['b'] },
          { key: 'b', prompt: 'B', dependsOn: ['a'] },
        ],
      }),
    ).toMatch(/cycle: a → b → a/);
    expect(bad({ tasks: [{ key: 'a', prompt: 'A', role: 'docs' }] })).toBe('ok');
  });

  it("makes sub-tasks under the epic from its plan, with the epic's repository and keys resolved to ids", () => {
    // Arrange
    const epic = makeTask({
      decompose: true,
      epic: { stage: 'planning' },
      status: 'running',
      labels: ['q3'],
    });
    const plan = checkPlan(
      {
        tasks: [
          { key: 'b', prompt: 'B', dependsOn: ['a'], role: 'docs' },
          { key: 'a', prompt: 'A' },
        ],
      },
      ROLES,
    );
    if (!plan.ok) throw new Error(plan.message);
    // Act
    const waiting = planned(epic, plan.plan, {}, new Date());
    const children = epicChildren(waiting, new Date());
    // Assert
    expect(waiting).toMatchObject({ status: 'blocked', epic: { stage: 'planned' } });
    expect(children.map((c) => [c.key, c.status, c.role, c.parent, c.repo])).toEqual([
      ['b', 'blocked', 'docs', epic.id, epic.repo],
      ['a', 'queued', 'backend', epic.id, epic.repo],
    ]);
    expect(children[0]?.dependsOn).toEqual([children[1]?.id]);
    expect(children[0]?.labels).toEqual(['q3']);
  });

  it('ends an epic as its sub-tasks ended: all succeeded, or the first that failed', () => {
    const epic = makeTask({ status: 'blocked', epic: { stage: 'running', children: [] } });
    const ok = makeTask({ status: 'succeeded', key: 'ok' });
    const running = makeTask({ status: 'running', key: 'slow' });
    const broken = transition(makeTask({ key: 'broken' }), 'cancelled', {}, new Date());
    expect(epicEnded(epic, [ok, running], new Date())).toBeUndefined();
    expect(epicEnded(epic, [ok, ok], new Date())?.status).toBe('succeeded');
    expect(epicEnded(epic, [ok, broken, running], new Date())?.error).toEqual({
      code: 'subtask_failed',
      message: `Sub-task broken (${broken.id}) ended cancelled`,
    });
  });
});
