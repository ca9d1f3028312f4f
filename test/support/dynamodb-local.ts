import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';

const PACKAGE = 'amplify-dynamodb-simulator@2.9.30';
const CACHE = resolve('.cache/dynamodb-local');
const EMULATOR = join(CACHE, 'package', 'emulator');

export interface DynamoDbLocal {
  endpoint: string;
  client: DynamoDBClient;
  stop(): Promise<void>;
}

/** Fetches DynamoDB Local (AWS's emulator, shipped inside an npm package) into .cache once. */
export function ensureDynamoDbLocalJar(): string {
  const jar = join(EMULATOR, 'DynamoDBLocal.jar');
  if (existsSync(jar)) return EMULATOR;
  mkdirSync(CACHE, { recursive: true });
  let tgz = readdirSync(CACHE).find((f) => f.endsWith('.tgz'));
  if (!tgz) {
    execFileSync('npm', ['pack', PACKAGE, '--silent'], { cwd: CACHE, stdio: 'pipe' });
    tgz = readdirSync(CACHE).find((f) => f.endsWith('.tgz'));
  }
  if (!tgz) throw new Error(`npm pack ${PACKAGE} produced no archive in ${CACHE}`);
  execFileSync('tar', ['xzf', tgz, 'package/emulator'], { cwd: CACHE, stdio: 'pipe' });
  if (!existsSync(jar)) throw new Error(`${jar} is missing after unpacking ${tgz}`);
  return EMULATOR;
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

export function localClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
}

/** Starts DynamoDB Local in memory on a free port and waits until it answers. */
export async function startDynamoDbLocal(): Promise<DynamoDbLocal> {
  const dir = ensureDynamoDbLocalJar();
  const port = await freePort();
  const proc: ChildProcess = spawn(
    'java',
    [
      '-Djava.library.path=./DynamoDBLocal_lib',
      '-jar',
      'DynamoDBLocal.jar',
      '-inMemory',
      '-sharedDb',
      '-port',
      String(port),
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  let spawnError: Error | undefined;
  proc.on('error', (err) => {
    spawnError = err;
  });
  proc.stdout?.on('data', (d) => {
    output += String(d);
  });
  proc.stderr?.on('data', (d) => {
    output += String(d);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = localClient(endpoint);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (spawnError) throw new Error(`DynamoDB Local needs Java 17 or later on PATH: ${spawnError.message}`);
    if (proc.exitCode !== null) throw new Error(`DynamoDB Local exited: ${output}`);
    try {
      await client.send(new ListTablesCommand({}));
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`DynamoDB Local did not start in 30 s: ${String(err)}\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  return {
    endpoint,
    client,
    async stop() {
      client.destroy();
      if (proc.exitCode !== null) return;
      await new Promise<void>((r) => {
        proc.once('exit', () => r());
        proc.kill('SIGTERM');
      });
    },
  };
}
