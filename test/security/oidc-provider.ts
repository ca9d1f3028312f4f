import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

export interface SigningKey {
  kid: string;
  privateKey: KeyPair['privateKey'];
  publicKey: KeyPair['publicKey'];
  publicJwk: JWK;
  /** The public key as PEM (SPKI): what an attacker can read from the JWKS. */
  publicPem: string;
}

export async function newSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateKey, publicKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

/**
 * An OIDC identity provider on 127.0.0.1: discovery document, JWKS (counted), keys that can be
 * rotated, tokens signed with the current key.
 */
export class TestOidcProvider {
  /** How often the JWKS was fetched. */
  jwksFetches = 0;
  published: SigningKey[] = [];

  private constructor(
    private readonly server: Server,
    readonly issuer: string,
  ) {}

  static async start(): Promise<TestOidcProvider> {
    let provider: TestOidcProvider | undefined;
    const server = createServer((req, res) => {
      const p = provider as TestOidcProvider;
      res.setHeader('content-type', 'application/json');
      if (req.url === '/.well-known/openid-configuration') {
        res.end(
          JSON.stringify({
            issuer: p.issuer,
            jwks_uri: `${p.issuer}/jwks`,
            id_token_signing_alg_values_supported: ['RS256'],
          }),
        );
      } else if (req.url === '/jwks') {
        p.jwksFetches++;
        res.end(JSON.stringify({ keys: p.published.map((k) => k.publicJwk) }));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    provider = new TestOidcProvider(server, `http://127.0.0.1:${port}`);
    provider.published.push(await newSigningKey('key-1'));
    return provider;
  }

  get current(): SigningKey {
    return this.published[this.published.length - 1] as SigningKey;
  }

  /** A new key replaces the old ones in the JWKS; tokens are signed with it from now on. */
  async rotate(kid: string): Promise<SigningKey> {
    const key = await newSigningKey(kid);
    this.published = [key];
    return key;
  }

  /** A token with these claims (no defaults added), signed RS256 with `key` (default: the current key). */
  sign(claims: JWTPayload, key: SigningKey = this.current): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
      .sign(key.privateKey);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
