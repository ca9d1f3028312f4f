import { describe, expect, it } from '@jest/globals';
import { SseParser } from '../../../lib/gateway/sse.js';

const STREAM =
  'event: message_start\r\ndata: {"a":1}\r\n\r\n: a comment\n\nevent: message_delta\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n';

describe('SseParser', () => {
  it('reads events whole, whatever the chunk boundaries', () => {
    const bytes = new TextEncoder().encode(STREAM);
    for (const size of [1, 2, 3, 7, bytes.length]) {
      const parser = new SseParser();
      const events = [];
      for (let i = 0; i < bytes.length; i += size) events.push(...parser.feed(bytes.subarray(i, i + size)));
      expect(events).toEqual([
        { event: 'message_start', data: '{"a":1}' },
        { event: 'message_delta', data: 'line one\nline two' },
        { data: '[DONE]' },
      ]);
    }
  });

  it('decodes multi-byte characters split across chunks', () => {
    const bytes = new TextEncoder().encode('data: héllo ✓\n\n');
    const parser = new SseParser();
    const events = [...parser.feed(bytes.subarray(0, 8)), ...parser.feed(bytes.subarray(8))];
    expect(events).toEqual([{ data: 'héllo ✓' }]);
  });
});
