import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import {
  ALLOW_MARKER,
  describeFindings,
  diffForScan,
  scanDiff,
  scanLine,
  shannonEntropy,
} from '../../../lib/worker/secret-scan.js';
import { gitIn, tempDir } from '../../support/local-platform.js';

/** Deterministic random-looking text, so that no real-looking key is written in this file. */
function noise(length: number, alphabet: string, seed: number): string {
  // mulberry32
  let a = seed >>> 0;
  let out = '';
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out += alphabet[((t ^ (t >>> 14)) >>> 0) % alphabet.length];
  }
  return out;
}
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const ALNUM = `${UPPER}abcdefghijklmnopqrstuvwxyz0123456789`;

const fakes = {
  aws: `AKIA${noise(16, `${UPPER}234567`, 1)}`,
  github: `ghp_${noise(36, ALNUM, 2)}`,
  githubFineGrained: `github_pat_${noise(22, ALNUM, 3)}_${noise(59, ALNUM, 4)}`,
  slack: `xoxb-${noise(12, '0123456789', 5)}-${noise(24, ALNUM, 6)}`,
  anthropic: `sk-ant-api03-${noise(40, ALNUM, 7)}`,
  openai: `sk-proj-${noise(48, ALNUM, 8)}`,
  random: noise(40, `${ALNUM}+/`, 9),
};

function diffAdding(file: string, lines: string[], startLine = 1): string {
  return [
    `diff --git a/${file} b/${file}`,
    `--- a/${file}`,
    `+++ b/${file}`,
    `@@ -0,0 +${startLine},${lines.length} @@`,
    ...lines.map((l) => `+${l}`),
  ].join('\n');
}

describe('scanDiff: known key formats', () => {
  it.each([
    ['aws_access_key_id', `const id = "${fakes.aws}";`],
    ['github_token', `token = ${fakes.github}`],
    ['github_token', `GH_TOKEN=${fakes.githubFineGrained}`],
    ['slack_token', `slack: '${fakes.slack}'`],
    ['private_key', '-----BEGIN RSA PRIVATE KEY-----'],
    ['private_key', '-----BEGIN OPENSSH PRIVATE KEY-----'],
    ['private_key', '-----BEGIN PRIVATE KEY-----'],
    ['anthropic_api_key', `ANTHROPIC_API_KEY=${fakes.anthropic}`],
    ['openai_api_key', `OPENAI_API_KEY=${fakes.openai}`],
  ])('finds %s', (rule, line) => {
    // Arrange
    const diff = diffAdding('config/settings.env', ['# settings', line], 7);

    // Act
    const findings = scanDiff(diff);

    // Assert
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ file: 'config/settings.env', line: 8, rule });
  });

  it('tells an Anthropic key from an OpenAI key', () => {
    const findings = scanLine('a.env', 1, `A=${fakes.anthropic} B=${fakes.openai}`);
    expect(findings.map((f) => f.rule)).toEqual(['anthropic_api_key', 'openai_api_key']);
  });

  it('never shows the secret itself', () => {
    const findings = scanDiff(diffAdding('a.ts', [`const t = "${fakes.github}";`]));
    const text = JSON.stringify(findings) + describeFindings(findings);
    expect(findings).toHaveLength(1);
    expect(text).not.toContain(fakes.github);
    expect(text).not.toContain(fakes.github.slice(8));
    expect(describeFindings(findings)).toContain('a.ts:1 (github_token');
  });
});

describe('scanDiff: random-looking strings', () => {
  it('finds a high-entropy string with its file and line', () => {
    const diff = diffAdding(
      'src/client.ts',
      ['export const client = {', `  secret: '${fakes.random}',`, '};'],
      20,
    );
    expect(scanDiff(diff)).toEqual([
      expect.objectContaining({ file: 'src/client.ts', line: 21, rule: 'high_entropy' }),
    ]);
  });

  it.each([
    ['a commit id', 'const commit = "3f9a2b7c1d8e4f6a0b5c9d2e7f1a4b8c3d6e9f0a";'],
    ['a sha256 checksum', `sha256: ${noise(64, '0123456789abcdef', 11)}`],
    ['a UUID', 'id: 550e8400-e29b-41d4-a716-446655440000'],
    [
      'an import path',
      'import { createPullRequestReviewComment } from "./github/pull-request-review-comments.js";',
    ],
    ['a constant name', 'export const MAX_REVIEW_DIFF_CHARS_FOR_MODEL_2024 = 1;'],
    ['a camelCase name', 'function getUserProfile2FactorAuthSettings() {}'],
    ['a URL path', 'fetch("https://example.com/api/v3/repos/octo-org/hello-world/pulls/42/reviews")'],
    ['a subresource integrity hash', `<script integrity="sha384-${noise(64, `${ALNUM}+/`, 12)}">`],
    ['an inline image', `src="data:image/png;base64,${noise(60, `${ALNUM}+/`, 13)}"`],
    ['a short token', `id = "${noise(16, ALNUM, 14)}"`],
    ['a documented example key', 'aws_access_key_id = AKIAIOSFODNN7EXAMPLE'],
    ['a temporary folder path', `marker: /tmp/autodev-e2e-${noise(30, ALNUM, 17)}/fail-once`],
  ])('does not flag %s', (_what, line) => {
    expect(scanDiff(diffAdding('src/x.ts', [line]))).toEqual([]);
  });

  it('still finds random keys next to a path, and known keys inside one', () => {
    const line = `cp /srv/build/out.tar "${fakes.random}" /opt/${fakes.github}/x`;
    expect(scanDiff(diffAdding('deploy.sh', [line])).map((f) => f.rule)).toEqual([
      'github_token',
      'high_entropy',
    ]);
  });

  it('does not look for entropy in lock files, but still finds known keys there', () => {
    const lock = `"integrity": "sha512-${noise(86, `${ALNUM}+/`, 15)}==", "x": "${noise(40, ALNUM, 16)}"`;
    expect(scanDiff(diffAdding('package-lock.json', [lock]))).toEqual([]);
    expect(scanDiff(diffAdding('yarn.lock', [`token ${fakes.github}`]))).toHaveLength(1);
  });

  it('Shannon entropy: 0 for one repeated character, log2(n) for n distinct ones', () => {
    expect(shannonEntropy('aaaaaaaa')).toBe(0);
    expect(shannonEntropy('abcdefgh')).toBeCloseTo(3, 10);
    expect(shannonEntropy('')).toBe(0);
  });
});

describe('scanDiff: reading the diff', () => {
  it('looks at added lines only, and counts lines through context and removals', () => {
    // Arrange
    const diff = [
      'diff --git a/app.py b/app.py',
      '--- a/app.py',
      '+++ b/app.py',
      '@@ -10,4 +10,4 @@ def main():',
      ' keep = 1',
      `-old = "${fakes.github}"`,
      `+new = "${fakes.aws}"`,
      ` context = "${fakes.slack}"`,
      `+later = "${fakes.openai}"`,
      '@@ -40 +40,2 @@',
      `+far = "${fakes.anthropic}"`,
      '\\ No newline at end of file',
    ].join('\n');

    // Act
    const findings = scanDiff(diff);

    // Assert
    expect(findings.map((f) => [f.line, f.rule])).toEqual([
      [11, 'aws_access_key_id'],
      [13, 'openai_api_key'],
      [40, 'anthropic_api_key'],
    ]);
  });

  it('skips deleted files and lines marked as reviewed', () => {
    const deleted = ['--- a/old.env', '+++ /dev/null', '@@ -1 +0,0 @@', `-${fakes.github}`].join('\n');
    expect(scanDiff(deleted)).toEqual([]);
    expect(scanDiff(diffAdding('t.ts', [`const fixture = "${fakes.github}"; // ${ALLOW_MARKER}`]))).toEqual(
      [],
    );
  });

  it('scans what the commits on top of the base add, in a real repository', () => {
    // Arrange
    const dir = tempDir('autodev-scan-');
    gitIn(dir, ['init', '--quiet', '--initial-branch=main']);
    writeFileSync(join(dir, 'README.md'), '# demo\n');
    gitIn(dir, ['add', '.']);
    gitIn(dir, ['commit', '--quiet', '-m', 'base']);
    const base = gitIn(dir, ['rev-parse', 'HEAD']).trim();
    writeFileSync(join(dir, 'README.md'), `# demo\n\nSee the docs.\n`);
    writeFileSync(join(dir, 'deploy.sh'), `#!/bin/sh\nexport AWS_ACCESS_KEY_ID=${fakes.aws}\n`);
    gitIn(dir, ['add', '.']);
    gitIn(dir, ['commit', '--quiet', '-m', 'change']);

    // Act
    return diffForScan(dir, base).then((diff) => {
      // Assert
      expect(scanDiff(diff)).toEqual([
        expect.objectContaining({ file: 'deploy.sh', line: 2, rule: 'aws_access_key_id' }),
      ]);
    });
  });
});
