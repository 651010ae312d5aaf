// The client rate limit: 100 events per connection per 60 s window (fixed),
// the 101st refused with RATE_LIMIT_EXCEEDED and not processed; another
// connection of the same user has its own budget; the window ends.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ack, collectUntilNotified, createRoom, sleep, startServer, userWithToken, waitFor } from './helpers.js';

describe('defaults', () => {
  let srv;
  before(async () => (srv = await startServer()));
  after(async () => srv.stop());

  test('100 events are answered, the 101st is RATE_LIMIT_EXCEEDED (ack and error) and not processed', async () => {
    const u = await userWithToken(srv, 'Ann');
    const roomId = await createRoom(srv);
    const s = await srv.connect('/', u.token);
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => ack(s, i % 2 ? 'presence:get_online' : 'room:explode', { roomId })),
    );
    assert.ok(
      replies.every((r) => r.error?.code !== 'RATE_LIMIT_EXCEEDED'),
      'every event counts, unknown ones too, but none is limited',
    );
    const error = waitFor(s, 'error');
    const subscribed = await collectUntilNotified(srv, u.uid, s, 'room:subscribed', async () => {
      const over = await ack(s, 'room:subscribe', { roomId });
      assert.equal(over.success, false);
      assert.equal(over.error.code, 'RATE_LIMIT_EXCEEDED');
    });
    assert.equal((await error).code, 'RATE_LIMIT_EXCEEDED');
    assert.deepEqual(subscribed, [], 'refused, so not subscribed');
    const second = await srv.connect('/', u.token);
    assert.equal((await ack(second, 'presence:get_online', { roomId })).count, 0);
  });
});

describe('a short window (--client-rate-limit 5 --client-rate-window-ms 600)', () => {
  let srv;
  before(async () => (srv = await startServer(['--client-rate-limit', '5', '--client-rate-window-ms', '600'])));
  after(async () => srv.stop());

  test('the window ends and the budget is back', async () => {
    const u = await userWithToken(srv, 'Ann');
    const roomId = await createRoom(srv);
    const s = await srv.connect('/', u.token);
    const codes = async (n) => {
      const out = [];
      for (let i = 0; i < n; i++) out.push((await ack(s, 'presence:get_online', { roomId })).error?.code ?? 'ok');
      return out;
    };
    assert.deepEqual(await codes(6), ['ok', 'ok', 'ok', 'ok', 'ok', 'RATE_LIMIT_EXCEEDED']);
    await sleep(700);
    assert.deepEqual(await codes(1), ['ok']);
  });
});
