import type { Context, SQSEvent } from 'aws-lambda';
import type { ApiEvent } from '../../../lib/api/handler.js';
import { messageGroupOf, type TaskMessage } from '../../../lib/aws/task-messages.js';

/** A Lambda context as the runtime passes it. */
export function lambdaContext(name = 'autodev-test'): Context {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${name}`,
    memoryLimitInMB: '512',
    awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: '2026/11/25/[$LATEST]abcdef',
    getRemainingTimeInMillis: () => 30_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** An API Gateway HTTP API (payload v2) event after the JWT authorizer accepted the token. */
export function apiEvent(opts: {
  method: string;
  path: string;
  body?: unknown;
  claims?: Record<string, unknown>;
  headers?: Record<string, string>;
  query?: Record<string, string>;
}): ApiEvent {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: opts.path,
    rawQueryString: new URLSearchParams(opts.query ?? {}).toString(),
    headers: { 'content-type': 'application/json', ...opts.headers },
    queryStringParameters: opts.query,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: {
        method: opts.method,
        path: opts.path,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.9',
        userAgent: 'curl/8',
      },
      requestId: 'req-1',
      routeKey: '$default',
      stage: '$default',
      time: '25/Nov/2026:01:00:00 +0000',
      timeEpoch: 1_795_568_400_000,
      authorizer: opts.claims ? { jwt: { claims: opts.claims } } : undefined,
    },
  } as ApiEvent;
}

/** An SQS FIFO event as the event source mapping delivers it. */
export function sqsFifoEvent(messages: (TaskMessage | string)[]): SQSEvent {
  return {
    Records: messages.map((m, i) => {
      const body = typeof m === 'string' ? m : JSON.stringify(m);
      const group = typeof m === 'string' ? 'malformed' : messageGroupOf(m);
      return {
        messageId: `msg-${i}`,
        receiptHandle: `rh-${i}`,
        body,
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: '1795568400000',
          SenderId: 'AROAEXAMPLE',
          ApproximateFirstReceiveTimestamp: '1795568400001',
          SequenceNumber: String(18_849_496_460_467_696_000 + i),
          MessageGroupId: group,
          MessageDeduplicationId: typeof m === 'string' ? `bad-${i}` : `${m.taskId}-${m.version}`,
        },
        messageAttributes: {},
        md5OfBody: 'x',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:autodev-tasks.fifo',
        awsRegion: 'eu-west-1',
      };
    }),
  };
}
