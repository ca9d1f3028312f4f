// Sign-in through the identity provider: authorization code with PKCE (RFC 7636, S256) for a
// public client. The verifier and state stay in this tab's sessionStorage until the provider sends
// the browser back; the token comes from the token endpoint (a POST), never through a URL. The
// token kept is the ID token: its `aud` is the client id, which the API accepts as an audience.

const PENDING = 'autodev.oidc.pending';

const base64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');

const random = () => base64url(crypto.getRandomValues(new Uint8Array(32)));

/** The dashboard's address: where the provider sends the browser back (register it there). */
const redirectUri = () => `${location.origin}/`;

/** `/config.json`'s `oidc` ({ issuer, clientId, scope }), or undefined: then a token is pasted. */
export async function loadOidcConfig() {
  try {
    const res = await fetch('/config.json', { cache: 'no-store' });
    if (!res.ok) return undefined;
    const oidc = (await res.json())?.oidc;
    if (typeof oidc?.issuer !== 'string' || typeof oidc?.clientId !== 'string') return undefined;
    return {
      issuer: oidc.issuer.replace(/\/+$/, ''),
      clientId: oidc.clientId,
      scope: oidc.scope || 'openid',
    };
  } catch {
    return undefined;
  }
}

/** The provider's endpoints from its discovery document, which must name the configured issuer. */
async function discover(oidc) {
  const res = await fetch(`${oidc.issuer}/.well-known/openid-configuration`, { cache: 'no-store' });
  if (!res.ok) throw new Error(`The identity provider's discovery document answered HTTP ${res.status}.`);
  const doc = await res.json();
  if (String(doc.issuer ?? '').replace(/\/+$/, '') !== oidc.issuer) {
    throw new Error('The discovery document names another issuer.');
  }
  if (typeof doc.authorization_endpoint !== 'string' || typeof doc.token_endpoint !== 'string') {
    throw new Error('The discovery document has no authorization or token endpoint.');
  }
  return doc;
}

/** Sends the browser to the provider's authorization endpoint. */
export async function beginSignIn(oidc) {
  const doc = await discover(oidc);
  const verifier = random();
  const state = random();
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({ state, verifier }));
  const url = new URL(doc.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: oidc.clientId,
    redirect_uri: redirectUri(),
    scope: oidc.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

/**
 * On the way back (`?code=&state=` or `?error=`): checks the state against the one this tab sent,
 * redeems the code with the verifier and returns the ID token; the query is removed from the
 * address first. Returns undefined when the page was not opened by the provider.
 */
export async function completeSignIn(oidc) {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return undefined;
  history.replaceState(null, '', `${location.pathname}${location.hash}`);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? 'null');
  sessionStorage.removeItem(PENDING);
  if (params.has('error')) {
    throw new Error(`The identity provider refused the sign-in: ${params.get('error')}.`);
  }
  if (!oidc || !pending || params.get('state') !== pending.state) {
    throw new Error('This answer does not belong to a sign-in started in this tab (state). Sign in again.');
  }
  const doc = await discover(oidc);
  const res = await fetch(doc.token_endpoint, {
    method: 'POST',
    cache: 'no-store',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code') ?? '',
      code_verifier: pending.verifier,
      client_id: oidc.clientId,
      redirect_uri: redirectUri(),
    }),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    throw new Error(`The identity provider did not issue a token: ${data?.error ?? `HTTP ${res.status}`}.`);
  }
  if (typeof data?.id_token !== 'string') throw new Error('The identity provider sent no ID token.');
  return data.id_token;
}
