// Authentication: tokens signed outside the server (HS256 and RS256),
// every refusal as `Authentication failed: Invalid token`, revocation by jti
// and by user (live sockets too), refresh, token:expired while connected.

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ack, adminCall, adminOk, createRoom, createUser, signToken, sleep, startServer, tokenFor, waitFor } from './helpers.js';

const INVALID = 'Authentication failed: Invalid token';

async function refused(srv, ns, token, auth) {
  await assert.rejects(srv.connect(ns, token, auth ? { auth } : undefined), (err) => {
    assert.equal(err.message, INVALID);
    assert.deepEqual(err.data, { code: 'AUTHENTICATION_FAILED' });
    return true;
  });
}

async function refresh(srv, body) {
  const res = await fetch(`${srv.socket}/api/auth/refresh`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
}

describe('HS256', () => {
  let srv;
  before(async () => (srv = await startServer(['--token-grace', '1'])));
  after(async () => srv.stop());

  test('a token signed with the secret for an existing user connects on both namespaces', async () => {
    const { uid } = await createUser(srv, 'Ann');
    const roomId = await createRoom(srv);
    await srv.connect('/', tokenFor(uid));
    await srv.connect(`/rooms/${roomId}`, tokenFor(uid));
    // Without jti too (jti is optional).
    await srv.connect('/', tokenFor(uid, { jti: null }));
  });

  test('every refusal has the one message of the text', async () => {
    const { uid } = await createUser(srv, 'Ann');
    const roomId = await createRoom(srv);
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      ['wrong secret', tokenFor(uid, { secret: 'other' })],
      ['expired', tokenFor(uid, { ttl: -5 })],
      ['unknown user', tokenFor('u-nobody')],
      ['a refresh token', signToken({ sub: uid, iat: now, exp: now + 60, typ: 'refresh' })],
      [
        'alg none',
        `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: uid, iat: now, exp: now + 60 })).toString('base64url')}.`,
      ],
      ['no exp', signToken({ sub: uid, iat: now })],
      ['iat far ahead', signToken({ sub: uid, iat: now + 3600, exp: now + 7200 })],
      ['garbage', 'not-a-jwt'],
    ];
    for (const [, token] of cases) {
      await refused(srv, '/', token);
      await refused(srv, `/rooms/${roomId}`, token);
    }
    await refused(srv, '/', undefined, {});
    await refused(srv, '/', undefined, { token: 42 });
  });

  test('revoking a jti refuses it and disconnects its live sockets, other tokens stay', async () => {
    const { uid } = await createUser(srv, 'Ann');
    const roomId = await createRoom(srv);
    const revokedToken = tokenFor(uid, { jti: 'jti-revoke-me' });
    const keptToken = tokenFor(uid);
    const root = await srv.connect('/', revokedToken);
    const ns = await srv.connect(`/rooms/${roomId}`, revokedToken);
    const kept = await srv.connect('/', keptToken);
    const gone = [waitFor(root, 'disconnect'), waitFor(ns, 'disconnect')];
    const r = await adminOk(srv, 'POST', '/revocations', { jti: 'jti-revoke-me' }, 201);
    assert.deepEqual(r.body, { revoked: { jti: 'jti-revoke-me' }, disconnected: 2 });
    assert.deepEqual(await Promise.all(gone), ['io server disconnect', 'io server disconnect']);
    await refused(srv, '/', revokedToken);
    assert.ok(kept.connected);
  });

  test('revoking a user ends every token issued up to that second', async () => {
    const { uid } = await createUser(srv, 'Ann');
    const token = tokenFor(uid);
    const s = await srv.connect('/', token);
    const gone = waitFor(s, 'disconnect');
    const r = await adminOk(srv, 'POST', '/revocations', { uid }, 201);
    assert.equal(r.body.disconnected, 1);
    await gone;
    await refused(srv, '/', token);
    await sleep(1100);
    await srv.connect('/', tokenFor(uid));
  });

  test('POST /api/auth/refresh turns a refresh token into {accessToken, refreshToken, expiresIn}', async () => {
    const { uid } = await createUser(srv, 'Ann');
    const now = Math.floor(Date.now() / 1000);
    const r = await refresh(srv, { refreshToken: signToken({ sub: uid, iat: now, exp: now + 600, typ: 'refresh' }) });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), ['accessToken', 'expiresIn', 'refreshToken']);
    assert.equal(r.body.expiresIn, 900);
    await srv.connect('/', r.body.accessToken);
    // The new refresh token works again; an access token is not a refresh token.
    assert.equal((await refresh(srv, { refreshToken: r.body.refreshToken })).status, 200);
    const bad = await refresh(srv, { refreshToken: r.body.accessToken });
    assert.equal(bad.status, 401);
    assert.equal(bad.type, 'application/problem+json');
    assert.equal(bad.body.code, 'AUTHENTICATION_FAILED');
    assert.equal((await refresh(srv, {})).body.code, 'INVALID_PAYLOAD');
  });

  test("the text's own refresh call (fetch with a string body, no Content-Type) works", async () => {
    const { uid } = await createUser(srv, 'Ann');
    const now = Math.floor(Date.now() / 1000);
    const refreshToken = signToken({ sub: uid, iat: now, exp: now + 600, typ: 'refresh' });
    const res = await fetch(`${srv.socket}/api/auth/refresh`, { method: 'POST', body: JSON.stringify({ refreshToken }) });
    assert.equal(res.status, 200);
    const data = await res.json();
    await srv.connect('/', data.accessToken);
    const form = await fetch(`${srv.socket}/api/auth/refresh`, { method: 'POST', body: new URLSearchParams({ refreshToken }) });
    assert.equal(form.status, 400);
  });

  test('a token that expires while connected: token:expired, then AUTHENTICATION_FAILED, then a disconnect after the grace', async () => {
    const { uid } = await createUser(srv, 'Ann');
    const roomId = await createRoom(srv);
    const s = await srv.connect('/', tokenFor(uid, { ttl: 1 }));
    const expired = await waitFor(s, 'token:expired', { timeout: 4000 });
    assert.deepEqual(Object.keys(expired), ['timestamp']);
    const reply = await ack(s, 'room:subscribe', { roomId });
    assert.equal(reply.success, false);
    assert.equal(reply.error.code, 'AUTHENTICATION_FAILED');
    assert.equal(await waitFor(s, 'disconnect', { timeout: 3000 }), 'io server disconnect');
  });
});

describe('RS256', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dir = mkdtempSync(join(tmpdir(), 'altserver-rs256-'));
  const pubFile = join(dir, 'pub.pem');
  const privFile = join(dir, 'priv.pem');
  writeFileSync(pubFile, publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(privFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const rs = (claims) => signToken(claims, { alg: 'RS256', privateKey });
  after(() => rmSync(dir, { recursive: true }));

  test('with the public key only: RS256 tokens connect, HS256 ones do not, refresh is 501', async () => {
    const srv = await startServer(['--jwt-public-key', pubFile, '--admin-key', 'k'], { keys: false });
    try {
      const r = await adminOk(srv, 'POST', '/users', { display_name: 'Ann' }, 201, { form: true, key: 'k' });
      const uid = r.body.user.uid;
      const now = Math.floor(Date.now() / 1000);
      await srv.connect('/', rs({ sub: uid, iat: now, exp: now + 60 }));
      await refused(
        srv,
        '/',
        signToken({ sub: uid, iat: now, exp: now + 60 }, { secret: publicKey.export({ type: 'spki', format: 'pem' }) }),
      );
      const res = await refresh(srv, { refreshToken: rs({ sub: uid, iat: now, exp: now + 60, typ: 'refresh' }) });
      assert.equal(res.status, 501);
    } finally {
      await srv.stop();
    }
  });

  test('with the private key: refresh signs RS256 tokens that connect', async () => {
    const srv = await startServer(['--jwt-private-key', privFile, '--admin-key', 'k'], { keys: false });
    try {
      // The identity provider's subject is the uid; it must fit the id alphabet.
      const bad = await adminCall(srv, 'POST', '/users', { display_name: 'Ann', uid: 'idp|ann' }, { form: true, key: 'k' });
      assert.equal(bad.status, 422);
      assert.equal(bad.body.field, 'uid');
      const r = await adminOk(srv, 'POST', '/users', { display_name: 'Ann', uid: 'idp:ann' }, 201, { form: true, key: 'k' });
      assert.equal(r.body.user.uid, 'idp:ann');
      const now = Math.floor(Date.now() / 1000);
      const res = await refresh(srv, { refreshToken: rs({ sub: 'idp:ann', iat: now, exp: now + 60, typ: 'refresh' }) });
      assert.equal(res.status, 200);
      const header = JSON.parse(Buffer.from(res.body.accessToken.split('.')[0], 'base64url'));
      assert.equal(header.alg, 'RS256');
      await srv.connect('/', res.body.accessToken);
    } finally {
      await srv.stop();
    }
  });
});
