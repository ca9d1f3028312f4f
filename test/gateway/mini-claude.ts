/**
 * A minimal agent CLI for gateway tests, standing in for Claude Code where the fakes of test/fakes
 * cannot help (they make no HTTP calls): `claude -p --output-format json ... -- PROMPT` that talks
 * Anthropic Messages to ANTHROPIC_BASE_URL with ANTHROPIC_API_KEY, runs the tool calls it is given
 * (`write_file {path, text}` writes into the workspace), and prints Claude Code's result object.
 * Like the real CLI (2.1.332) it retries 429, 5xx and 401 answers (every 200 ms here) and stops on
 * other errors. `[envdump=FILE]` in the prompt: copy /proc/self/environ to FILE (`~/` is HOME)
 * first; as a review agent (the prompt opens with the review prompt's first line), to FILE.review.
 */
export const MINI_CLAUDE = `#!/usr/bin/env node
const fs = require('node:fs');
const path = require('node:path');
if (process.argv[2] === '--version') { process.stdout.write('2.1.332 (Claude Code)\\n'); process.exit(0); }
const argv = process.argv.slice(2);
// the prompt: after \`--\` (as the driver passes it), else right after -p
const prompt = argv.includes('--') ? argv[argv.indexOf('--') + 1] : argv[argv.indexOf('-p') + 1] || '';
const dump = prompt.match(/\\[envdump=([^\\]]+)\\]/);
const reviewing = prompt.startsWith('Review the change below');
if (dump) fs.writeFileSync(dump[1].replace(/^~(?=\\/)/, process.env.HOME) + (reviewing ? '.review' : ''), fs.readFileSync('/proc/self/environ'));
const base = process.env.ANTHROPIC_BASE_URL || 'https://api.anthropic.com';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function result(fields, code) {
  process.stdout.write(JSON.stringify({ type: 'result', subtype: 'success', is_error: false, num_turns: 1,
    session_id: 's-1', total_cost_usd: 0, usage: { input_tokens: 0, output_tokens: 0 }, ...fields }) + '\\n');
  process.exit(code);
}
(async () => {
  const messages = [{ role: 'user', content: prompt }];
  for (let turn = 0; turn < 50; turn++) {
    const res = await fetch(base + '/v1/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': process.env.ANTHROPIC_API_KEY || '',
        'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5-20250929', max_tokens: 1024, messages, stream: true }),
    });
    const text = await res.text();
    if (res.status === 429 || res.status === 401 || res.status >= 500) { await sleep(200); turn--; continue; }
    if (res.status !== 200) result({ is_error: true, api_error_status: res.status, result: 'API Error: ' + res.status + ' ' + text }, 1);
    const events = text.split('\\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
    const start = events.find((e) => e.type === 'content_block_start');
    const delta = events.find((e) => e.type === 'content_block_delta');
    if (start && start.content_block.type === 'tool_use') {
      const input = JSON.parse(delta.delta.partial_json);
      if (start.content_block.name === 'write_file') fs.writeFileSync(path.join(process.cwd(), input.path), input.text);
      messages.push({ role: 'assistant', content: [{ type: 'tool_use', id: 't' + turn, name: start.content_block.name, input }] });
      messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't' + turn, content: 'ok' }] });
      continue;
    }
    result({ result: delta ? delta.delta.text : '' }, 0);
  }
  result({ subtype: 'error_max_turns', is_error: true }, 1);
})();
`;
