import { AuthError, api, onUnauthorized, session } from './api.js';
import { boardView } from './board.js';
import { h, replace } from './dom.js';
import { beginSignIn, completeSignIn, loadOidcConfig } from './oidc.js';
import { providersView } from './providers.js';
import { schedulesView } from './schedules.js';
import { statsView } from './stats.js';
import { taskView } from './task.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

/** The view on screen: stopped (its timers and streams) before the next one starts. */
let current = { stop() {} };
/** The caller: `{ tenant, role, subject, actions }` from GET /v1/me. */
let me;
/** The identity provider to sign in with (`/config.json`), or undefined: a token is pasted. */
let oidc;

function stopCurrent() {
  current.stop();
  current = { stop() {} };
}

function signInView(message) {
  stopCurrent();
  me = undefined;
  nav.hidden = true;
  replace(who);
  const input = h('textarea', {
    id: 'token',
    name: 'token',
    rows: 4,
    required: true,
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'eyJhbGciOi…',
  });
  const form = h(
    'form',
    { id: 'signin', class: 'card narrow' },
    h('h1', {}, 'Sign in'),
    message ? h('p', { class: 'error', role: 'alert', 'data-testid': 'signin-message' }, message) : null,
    oidc ? providerButton() : null,
    h('label', { for: 'token' }, 'Token'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
    h(
      'p',
      { class: 'muted' },
      'Paste a token of this platform. On the machine that runs it: ',
      h('code', {}, 'npx autodev token --tenant acme --role viewer --ttl 8h'),
      '. The token is kept in this tab only (sessionStorage) and sent only in the Authorization header.',
    ),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    session.signIn(input.value.trim());
    await start();
  });
  replace(main, form);
  input.focus();
}

/** "Sign in with <issuer host>": the authorization code flow with PKCE (oidc.js). */
function providerButton() {
  const button = h(
    'button',
    { type: 'button', id: 'signin-oidc' },
    `Sign in with ${new URL(oidc.issuer).host}`,
  );
  button.addEventListener('click', () =>
    beginSignIn(oidc).catch((err) => signInView(`Sign-in failed: ${err.message}`)),
  );
  return h('p', {}, button, h('span', { class: 'muted' }, ' or paste a token below.'));
}

/** Reads `/config.json` and, when the provider sent the browser back here, redeems its code. */
async function boot() {
  oidc = await loadOidcConfig();
  try {
    const token = await completeSignIn(oidc);
    if (token) session.signIn(token);
  } catch (err) {
    return signInView(`Sign-in failed: ${err.message}`);
  }
  return start();
}

async function start() {
  if (!session.token()) return signInView();
  try {
    me = await api('/v1/me');
  } catch (err) {
    if (!(err instanceof AuthError)) signInView(err.message);
    return;
  }
  nav.hidden = false;
  const out = h('button', { type: 'button', class: 'link', id: 'signout' }, 'Sign out');
  out.addEventListener('click', () => {
    session.signOut();
    signInView();
  });
  replace(who, h('span', { 'data-testid': 'whoami' }, `${me.subject} · ${me.role} · ${me.tenant}`), ' ', out);
  route();
}

function route() {
  if (!me) return;
  stopCurrent();
  const hash = location.hash.replace(/^#/, '') || '/';
  const task = hash.match(/^\/tasks\/([^/]+)$/);
  for (const a of nav.querySelectorAll('a')) {
    a.classList.toggle('active', a.getAttribute('href') === `#${hash}`);
  }
  const ctx = { me, can: (action) => me.actions.includes(action) };
  if (task) current = taskView(main, ctx, decodeURIComponent(task[1]));
  else if (hash === '/stats') current = statsView(main, ctx);
  else if (hash === '/providers') current = providersView(main, ctx);
  else if (hash === '/schedules') current = schedulesView(main, ctx);
  else current = boardView(main, ctx);
}

onUnauthorized((message) => signInView(`Token refused: ${message} Sign in with a valid token.`));
window.addEventListener('hashchange', route);
boot();
