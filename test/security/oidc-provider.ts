import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
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

/** A code the authorization endpoint handed out, bound to its PKCE challenge; redeemable once. */
interface IssuedCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  used: boolean;
}

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

/**
 * An OIDC identity provider on 127.0.0.1: discovery document, JWKS (counted), keys that can be
 * rotated, tokens signed with the current key; and a sign-in for browsers: an authorization
 * endpoint that sends the browser straight back with a one-time code bound to its S256 challenge
 * (the user is `signInClaims`), and a token endpoint that redeems a code once, with its verifier.
 */
export class TestOidcProvider {
  /** How often the JWKS was fetched. */
  jwksFetches = 0;
  published: SigningKey[] = [];
  /** Who signs in at the authorization endpoint (claims added to iss, aud = client id, iat, exp). */
  signInClaims: JWTPayload = { sub: 'oidc-user', tenant: 'acme', role: 'viewer' };
  /** What the token endpoint answered, in order: 'issued' or the error it gave. */
  readonly tokenAnswers: string[] = [];
  private readonly codes = new Map<string, IssuedCode>();

  private constructor(
    private readonly server: Server,
    readonly issuer: string,
  ) {}

  static async start(): Promise<TestOidcProvider> {
    let provider: TestOidcProvider | undefined;
    const server = createServer((req, res) => {
      const p = provider as TestOidcProvider;
      res.setHeader('content-type', 'application/json');
      // a browser page on another origin reads discovery and posts to the token endpoint
      res.setHeader('access-control-allow-origin', '*');
      const path = new URL(req.url ?? '/', p.issuer).pathname;
      if (req.method === 'OPTIONS') {
        res.setHeader('access-control-allow-headers', 'content-type, accept');
        res.setHeader('access-control-allow-methods', 'GET, POST');
        res.statusCode = 204;
        res.end();
      } else if (req.url === '/.well-known/openid-configuration') {
        res.end(
          JSON.stringify({
            issuer: p.issuer,
            jwks_uri: `${p.issuer}/jwks`,
            authorization_endpoint: `${p.issuer}/authorize`,
            token_endpoint: `${p.issuer}/token`,
            code_challenge_methods_supported: ['S256'],
            id_token_signing_alg_values_supported: ['RS256'],
          }),
        );
      } else if (path === '/authorize') {
        p.authorize(req, res);
      } else if (path === '/token' && req.method === 'POST') {
        p.token(req, res).catch(() => res.destroy());
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

  /** Sends the browser back to `redirect_uri` with a new code and the `state` it was given. */
  private authorize(req: IncomingMessage, res: ServerResponse): void {
    const q = new URL(req.url ?? '/', this.issuer).searchParams;
    const redirectUri = q.get('redirect_uri') ?? '';
    const challenge = q.get('code_challenge') ?? '';
    if (q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !challenge) {
      res.statusCode = 400;
      res.end(JSON.stringify({ error: 'invalid_request' }));
      return;
    }
    const code = randomBytes(16).toString('base64url');
    this.codes.set(code, { clientId: q.get('client_id') ?? '', redirectUri, challenge, used: false });
    const back = new URL(redirectUri);
    back.searchParams.set('code', code);
    back.searchParams.set('state', q.get('state') ?? '');
    res.writeHead(302, { location: back.toString() });
    res.end();
  }

  /** Redeems a code once, for the client and redirect URI it was issued to, with its verifier. */
  private async token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readForm(req);
    const issued = this.codes.get(form.get('code') ?? '');
    const error =
      form.get('grant_type') !== 'authorization_code' || !issued || issued.used
        ? 'invalid_grant'
        : issued.clientId !== form.get('client_id') || issued.redirectUri !== form.get('redirect_uri')
          ? 'invalid_client'
          : s256(form.get('code_verifier') ?? '') !== issued.challenge
            ? 'invalid_grant'
            : undefined;
    if (issued) issued.used = true;
    this.tokenAnswers.push(error ?? 'issued');
    if (error || !issued) {
      res.statusCode = 400;
      res.end(JSON.stringify({ error: error ?? 'invalid_grant' }));
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const idToken = await this.sign({
      ...this.signInClaims,
      iss: this.issuer,
      aud: issued.clientId,
      iat: now,
      exp: now + 600,
    });
    res.end(JSON.stringify({ id_token: idToken, token_type: 'Bearer', expires_in: 600 }));
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
