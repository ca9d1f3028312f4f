import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LocalSecretsManager {
  /** For `AWS_ENDPOINT_URL_SECRETS_MANAGER`. */
  endpoint: string;
  /** Secret ids asked for. */
  asked: string[];
  close(): Promise<void>;
}

/**
 * Secrets Manager's GetSecretValue on 127.0.0.1 (the AWS JSON 1.1 protocol the SDK speaks), answering
 * each secret id with its JSON string: enough for a worker process to read its provider secret.
 */
export async function startSecretsManager(
  secrets: Record<string, Record<string, string>>,
): Promise<LocalSecretsManager> {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += String(c);
    });
    req.on('end', () => {
      const { SecretId } = JSON.parse(body || '{}') as { SecretId?: string };
      asked.push(String(SecretId));
      const value = SecretId === undefined ? undefined : secrets[SecretId];
      const headers = { 'content-type': 'application/x-amz-json-1.1' };
      if (req.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue' || !value) {
        res.writeHead(400, headers);
        res.end(JSON.stringify({ __type: 'ResourceNotFoundException', message: 'no such secret' }));
        return;
      }
      res.writeHead(200, headers);
      res.end(
        JSON.stringify({
          ARN: SecretId,
          Name: 'provider-keys',
          VersionId: 'v1',
          SecretString: JSON.stringify(value),
          CreatedDate: Date.now() / 1000,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    asked,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
