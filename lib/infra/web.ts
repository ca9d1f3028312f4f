import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import { dashboardCsp, webConfig } from '../core/web-policy.js';
import { repoRoot } from './paths.js';

export interface WebDashboardProps {
  /** The HTTP API the page calls, same-origin, under `/v1/*` and `/openapi.json`. */
  readonly httpApi: apigw.IHttpApi;
  /** The OIDC issuer the API trusts (the page signs in there when `clientId` is set). */
  readonly issuer: string;
  /** The public client (authorization code + PKCE) the page signs in as. @default none: a token is pasted */
  readonly clientId?: string;
  /** Scopes asked for at sign-in. @default 'openid' */
  readonly scope?: string;
  /** Origins the page may call beside the issuer's, e.g. a token endpoint on another host. @default none */
  readonly connectOrigins?: readonly string[];
}

/**
 * The dashboard on AWS: web/ in a private S3 bucket behind CloudFront (origin access control), with
 * the local server's Content-Security-Policy and security headers, and the task API behind the same
 * distribution (`/v1/*`, `/openapi.json`: not cached, the Authorization header forwarded), so the
 * page calls it same-origin, without CORS. `config.json` names the identity provider when a web
 * client id is given; without one the page asks for a pasted token.
 */
export class WebDashboard extends Construct {
  public readonly bucket: s3.Bucket;
  public readonly logs: s3.Bucket;
  public readonly distribution: cloudfront.Distribution;
  public readonly deployment: s3deploy.BucketDeployment;

  constructor(scope: Construct, id: string, props: WebDashboardProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.logs = new s3.Bucket(this, 'Logs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      // CloudFront standard logs are written with an ACL
      objectOwnership: s3.ObjectOwnership.OBJECT_WRITER,
      lifecycleRules: [{ expiration: Duration.days(90) }],
    });
    this.bucket = new s3.Bucket(this, 'Site', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.logs,
      serverAccessLogsPrefix: 's3/',
    });
    const connect = props.clientId
      ? [new URL(props.issuer).origin, ...(props.connectOrigins ?? []).map((o) => new URL(o).origin)]
      : [];
    const headers = new cloudfront.ResponseHeadersPolicy(this, 'Headers', {
      comment: 'AutoDev dashboard: the same policy as the local server',
      securityHeadersBehavior: {
        contentSecurityPolicy: { contentSecurityPolicy: dashboardCsp(connect), override: true },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER, override: true },
        strictTransportSecurity: {
          accessControlMaxAge: Duration.days(365),
          includeSubdomains: true,
          override: true,
        },
      },
      customHeadersBehavior: {
        customHeaders: [{ header: 'Cross-Origin-Opener-Policy', value: 'same-origin', override: true }],
      },
    });
    const api = new origins.HttpOrigin(
      `${props.httpApi.apiId}.execute-api.${stack.region}.${stack.urlSuffix}`,
      {
        protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
        originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      },
    );
    const apiBehavior: cloudfront.BehaviorOptions = {
      origin: api,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
      cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
      // every viewer header but Host: the Authorization header reaches the API's JWT authorizer
      originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
    };
    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'AutoDev dashboard',
      defaultRootObject: 'index.html',
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      enableLogging: true,
      logBucket: this.logs,
      logFilePrefix: 'cloudfront/',
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: headers,
      },
      additionalBehaviors: { '/v1/*': apiBehavior, '/openapi.json': apiBehavior },
    });
    const sources = [s3deploy.Source.asset(join(repoRoot(), 'web'))];
    if (props.clientId) {
      sources.push(
        s3deploy.Source.jsonData(
          'config.json',
          webConfig({ issuer: props.issuer, clientId: props.clientId, scope: props.scope ?? 'openid' }),
        ),
      );
    }
    this.deployment = new s3deploy.BucketDeployment(this, 'Deploy', {
      destinationBucket: this.bucket,
      sources,
      // browsers revalidate (ETag); a deployment invalidates CloudFront's copies
      cacheControl: [s3deploy.CacheControl.noCache()],
      distribution: this.distribution,
      distributionPaths: ['/*'],
    });
  }

  /** The dashboard's address: also the redirect URI to register at the identity provider. */
  get url(): string {
    return `https://${this.distribution.distributionDomainName}/`;
  }
}
