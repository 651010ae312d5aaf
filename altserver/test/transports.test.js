// Transports: polling and WebSocket by default (with upgrade), WebSocket
// only with --transports websocket (long-polling refused).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ack, createRoom, startServer, userWithToken } from './helpers.js';

const handshake = (srv) => fetch(`${srv.socket}/socket.io/?EIO=4&transport=polling`);

test('default: long-polling works, and polling upgrades to WebSocket', async () => {
  const srv = await startServer();
  try {
    const res = await handshake(srv);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^0\{"sid":/);
    const u = await userWithToken(srv, 'Ann');
    const roomId = await createRoom(srv);
    const polling = await srv.connect('/', u.token, { transports: ['polling'] });
    assert.equal(polling.io.engine.transport.name, 'polling');
    assert.equal((await ack(polling, 'room:subscribe', { roomId })).success, true);
    const upgrading = await srv.connect('/', u.token, { transports: ['polling', 'websocket'] });
    // The upgrade may be done by the time the connect resolves.
    if (upgrading.io.engine.transport.name !== 'websocket') {
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no upgrade in 3 s')), 3000);
        upgrading.io.engine.once('upgrade', () => (clearTimeout(t), resolve()));
      });
    }
    assert.equal(upgrading.io.engine.transport.name, 'websocket');
  } finally {
    await srv.stop();
  }
});

test('--transports websocket: WebSocket only, the polling handshake is refused', async () => {
  const srv = await startServer(['--transports', 'websocket']);
  try {
    const res = await handshake(srv);
    assert.equal(res.status, 400);
    await res.text();
    const u = await userWithToken(srv, 'Ann');
    const roomId = await createRoom(srv);
    await assert.rejects(srv.connect('/', u.token, { transports: ['polling'] }));
    const ws = await srv.connect('/', u.token, { transports: ['websocket'] });
    assert.equal((await ack(ws, 'room:subscribe', { roomId })).success, true);
  } finally {
    await srv.stop();
  }
});
