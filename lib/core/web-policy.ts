// The dashboard's page policy and sign-in settings: the same for the local server and CloudFront.

/**
 * What the dashboard's pages may do: scripts, styles and calls from this origin only (calls also to
 * `connect`, the identity provider's origins when it signs in there), no inline script or style,
 * no plugins, not framed, forms post nowhere else. The same policy is the CloudFront distribution's.
 */
export function dashboardCsp(connect: readonly string[] = []): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    ["connect-src 'self'", ...connect].join(' '),
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
  ].join('; ');
}

export const DASHBOARD_CSP = dashboardCsp();

/** The dashboard's sign-in through an OIDC issuer (authorization code + PKCE, a public client). */
export interface WebSignIn {
  issuer: string;
  clientId: string;
  scope: string;
}

/** `/config.json`: what web/js/oidc.js reads to offer the provider's sign-in. */
export function webConfig(signIn: WebSignIn): { oidc: WebSignIn } {
  return { oidc: { issuer: signIn.issuer, clientId: signIn.clientId, scope: signIn.scope } };
}
