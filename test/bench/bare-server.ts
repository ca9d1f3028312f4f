/** The baseline for the API benchmark: node:http, the same JSON parse and the same SQLite insert, nothing else. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SqliteTaskStore } from '../../lib/local/sqlite-store.js';
import { makeTask } from '../support/tasks.js';

const store = new SqliteTaskStore(process.argv[2] ?? ':memory:');
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { repo: string; prompt: string };
    const task = makeTask({ tenant: 'bench', repo: body.repo, prompt: body.prompt });
    void store.create(task).then(() => {
      const out = JSON.stringify(task);
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
