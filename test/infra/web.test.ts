import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { dashboardCsp } from '../../lib/core/web-policy.js';
import { AUDIENCE, ISSUER, synthStack } from './synth.js';

/** CloudFront's managed policies the API behaviour uses. */
const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';
const ALL_VIEWER_EXCEPT_HOST_HEADER = 'b689b0a8-53d0-40ab-baf2-68738e2966ac';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

let template: Template;
beforeAll(() => {
  ({ template } = synthStack());
});

/** The `config.json` files the synthesized assets hold. */
function configFiles(outdir: string): unknown[] {
  return readdirSync(outdir)
    .map((d) => join(outdir, d, 'config.json'))
    .filter((f) => existsSync(f))
    .map((f) => JSON.parse(readFileSync(f, 'utf8')));
}

describe('the dashboard on AWS', () => {
  it('keeps web/ in private, encrypted, SSL-only buckets, readable by the distribution only', () => {
    const buckets = Object.values(template.findResources('AWS::S3::Bucket') as Resources);
    expect(buckets.length).toBeGreaterThanOrEqual(2);
    for (const b of buckets) {
      expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(b.Properties.BucketEncryption).toBeDefined();
    }
    const policies = Object.values(template.findResources('AWS::S3::BucketPolicy') as Resources);
    const statements = policies.flatMap(
      (p) => (p.Properties.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement,
    );
    expect(statements.filter((s) => s.Principal === '*' && s.Effect === 'Allow')).toEqual([]);
    expect(
      statements.filter(
        (s) => s.Effect === 'Deny' && JSON.stringify(s.Condition).includes('aws:SecureTransport'),
      ),
    ).toHaveLength(policies.length);
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudfront.amazonaws.com' },
            Action: 's3:GetObject',
            Condition: { StringEquals: { 'AWS:SourceArn': Match.anyValue() } },
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::CloudFront::OriginAccessControl', {
      OriginAccessControlConfig: { OriginAccessControlOriginType: 's3', SigningBehavior: 'always' },
    });
  });

  it('routes /v1/* and /openapi.json to the HTTP API uncached, with every viewer header but Host', () => {
    const [distribution] = Object.values(
      template.findResources('AWS::CloudFront::Distribution') as Resources,
    );
    const config = distribution?.Properties.DistributionConfig as {
      DefaultRootObject: string;
      Logging: unknown;
      CacheBehaviors: Array<Record<string, unknown>>;
      Origins: Array<{ Id: string; DomainName: unknown; CustomOriginConfig?: Record<string, unknown> }>;
      DefaultCacheBehavior: Record<string, unknown>;
    };
    expect(config.DefaultRootObject).toBe('index.html');
    expect(config.Logging).toBeDefined();
    expect(config.DefaultCacheBehavior.ViewerProtocolPolicy).toBe('redirect-to-https');
    expect(config.CacheBehaviors.map((b) => b.PathPattern).sort()).toEqual(['/openapi.json', '/v1/*']);
    for (const b of config.CacheBehaviors) {
      expect(b).toMatchObject({
        CachePolicyId: CACHING_DISABLED,
        OriginRequestPolicyId: ALL_VIEWER_EXCEPT_HOST_HEADER,
        AllowedMethods: expect.arrayContaining(['GET', 'POST', 'DELETE', 'OPTIONS']),
        ViewerProtocolPolicy: 'https-only',
      });
      const origin = config.Origins.find((o) => o.Id === b.TargetOriginId);
      expect(JSON.stringify(origin?.DomainName)).toMatch(/HttpApi.*execute-api/);
      expect(origin?.CustomOriginConfig).toMatchObject({
        OriginProtocolPolicy: 'https-only',
        OriginSSLProtocols: ['TLSv1.2'],
      });
    }
  });

  it('serves the pages with the local server’s CSP and security headers', () => {
    template.hasResourceProperties('AWS::CloudFront::ResponseHeadersPolicy', {
      ResponseHeadersPolicyConfig: {
        SecurityHeadersConfig: {
          ContentSecurityPolicy: { ContentSecurityPolicy: dashboardCsp(), Override: true },
          ContentTypeOptions: { Override: true },
          FrameOptions: { FrameOption: 'DENY', Override: true },
          ReferrerPolicy: { ReferrerPolicy: 'no-referrer', Override: true },
          StrictTransportSecurity: Match.objectLike({ Override: true }),
        },
      },
    });
    template.hasOutput('DashboardUrl', {
      Value: { 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [Match.anyValue(), 'DomainName'] }, '/']] },
    });
  });

  it('has no config.json without -c webClientId: the page asks for a pasted token', () => {
    const { synth } = synthStack();
    expect(configFiles(synth())).toEqual([]);
  });

  it('names the identity provider in config.json with -c webClientId, and lets the page call its origin', () => {
    // Act
    const web = synthStack({
      audience: `${AUDIENCE},autodev-web`,
      webClientId: 'autodev-web',
      webConnectOrigins: 'https://login.example.com/oauth2',
    });
    // Assert
    expect(configFiles(web.synth())).toEqual([
      { oidc: { issuer: ISSUER, clientId: 'autodev-web', scope: 'openid' } },
    ]);
    web.template.hasResourceProperties('AWS::CloudFront::ResponseHeadersPolicy', {
      ResponseHeadersPolicyConfig: {
        SecurityHeadersConfig: {
          ContentSecurityPolicy: {
            ContentSecurityPolicy: dashboardCsp(['https://id.example.com', 'https://login.example.com']),
            Override: true,
          },
        },
      },
    });
  });

  it('refuses a web client id the API would not accept as an audience', () => {
    expect(() => synthStack({ webClientId: 'autodev-web' })).toThrow(
      /webClientId: must also be one of -c audience/,
    );
  });
});
