// The admin API's own shapes (ADMIN-API.md) and the command line: the key,
// media types, 422 validation, Location, PUT of the whole room, problem
// documents; seeding users, refusing non-loopback without keys, SIGTERM.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { adminCall, adminOk, connect, createRoom, startServer, tokenFor, waitFor } from './helpers.js';

const SERVER_JS = fileURLToPath(new URL('../server.js', import.meta.url));

describe('admin API', () => {
  let srv;
  before(async () => (srv = await startServer()));
  after(async () => srv.stop());

  test('the key: missing or wrong is 401 with a problem document', async () => {
    for (const key of [null, 'wrong']) {
      const r = await adminCall(srv, 'GET', '/users/u-1', undefined, { key });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('content-type'), 'application/problem+json');
      assert.equal(r.headers.get('www-authenticate'), 'Token');
      assert.deepEqual(r.body, { type: 'about:blank', title: 'Unauthorized', status: 401, code: 'unauthorized', detail: r.body.detail });
    }
    // Bearer is not this API's scheme.
    const res = await fetch(`${srv.admin}/admin/v2/users/u-1`, { headers: { authorization: 'Bearer test-admin-key' } });
    assert.equal(res.status, 401);
  });

  test('users: a form body (JSON is 415), 201 {user: {uid, ...}}, uid given or assigned', async () => {
    assert.equal((await adminCall(srv, 'POST', '/users', { display_name: 'Ann' })).status, 415);
    const r = await adminOk(srv, 'POST', '/users', { display_name: 'Ann', avatar_url: 'https://a.example/a.png' }, 201, { form: true });
    assert.match(r.body.user.uid, /^u-[0-9a-f-]{36}$/);
    assert.equal(r.body.user.display_name, 'Ann');
    assert.equal(r.body.user.avatar_url, 'https://a.example/a.png');
    const given = await adminOk(srv, 'POST', '/users', { display_name: 'Bob', uid: 'idp-bob' }, 201, { form: true });
    assert.equal(given.body.user.uid, 'idp-bob');
    assert.equal((await adminCall(srv, 'POST', '/users', { display_name: 'Bob', uid: 'idp-bob' }, { form: true })).status, 409);
    const missing = await adminCall(srv, 'POST', '/users', { avatar_url: 'x' }, { form: true });
    assert.equal(missing.status, 422);
    assert.equal(missing.body.field, 'display_name');
    assert.equal((await adminOk(srv, 'GET', '/users/idp-bob', undefined, 200)).body.user.display_name, 'Bob');
  });

  test('rooms: 201 with an empty body and Location; GET; PUT needs the whole room', async () => {
    const res = await fetch(`${srv.admin}/admin/v2/rooms`, {
      method: 'POST',
      headers: { authorization: 'Token test-admin-key', 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Lobby', isPrivate: false }),
    });
    assert.equal(res.status, 201);
    assert.equal(await res.text(), '');
    const location = res.headers.get('location');
    assert.match(location, /^\/admin\/v2\/rooms\/r-[0-9a-f-]{36}$/);
    const roomId = location.split('/').pop();
    const got = await adminOk(srv, 'GET', `/rooms/${roomId}`, undefined, 200);
    assert.deepEqual(got.body, {
      id: roomId,
      title: 'Lobby',
      isPrivate: false,
      status: 'draft',
      createdAt: got.body.createdAt,
      memberCount: 0,
    });
    const partial = await adminCall(srv, 'PUT', `/rooms/${roomId}`, { title: 'Lobby', isPrivate: false });
    assert.equal(partial.status, 422);
    assert.equal(partial.body.field, 'status');
    const visibility = await adminCall(srv, 'POST', '/rooms', { title: 'x', visibility: 'private' });
    assert.equal(visibility.status, 422, 'isPrivate is a boolean; visibility means nothing here');
    assert.equal((await adminCall(srv, 'PUT', `/rooms/${roomId}`, { title: 'x', isPrivate: false, status: 'closed' })).status, 422);
    await adminOk(srv, 'DELETE', `/rooms/${roomId}`, undefined, 204);
    assert.equal((await adminCall(srv, 'GET', `/rooms/${roomId}`)).status, 404);
  });

  test('errors: 404 and 405 with Allow, 400 for bad JSON, 413 for a body over 64 KiB', async () => {
    const nf = await adminCall(srv, 'GET', '/nothing');
    assert.equal(nf.status, 404);
    assert.equal(nf.body.code, 'not_found');
    const na = await adminCall(srv, 'PATCH', '/rooms');
    assert.equal(na.status, 405);
    assert.equal(na.headers.get('allow'), 'POST');
    const bad = await fetch(`${srv.admin}/admin/v2/rooms`, {
      method: 'POST',
      headers: { authorization: 'Token test-admin-key', 'content-type': 'application/json' },
      body: '{',
    });
    assert.equal(bad.status, 400);
    const big = await fetch(`${srv.admin}/admin/v2/rooms`, {
      method: 'POST',
      headers: { authorization: 'Token test-admin-key', 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'x'.repeat(70_000), isPrivate: false }),
    });
    assert.equal(big.status, 413);
  });

  test('apps: the id is assigned, the key shown once, scopes kept; deletes answer 204 then 404', async () => {
    const r = await adminOk(srv, 'POST', '/apps', { label: 'My Quiz!', scopes: ['realtime:publish'] }, 201);
    assert.deepEqual(Object.keys(r.body).sort(), ['apiKey', 'appId']);
    assert.match(r.body.appId, /^my-quiz-[0-9a-f]{6}$/);
    const got = await adminOk(srv, 'GET', `/apps/${r.body.appId}`, undefined, 200);
    assert.deepEqual(got.body.scopes, ['realtime:publish']);
    assert.equal(got.body.apiKey, undefined);
    await adminOk(srv, 'DELETE', `/apps/${r.body.appId}`, undefined, 204);
    assert.equal((await adminCall(srv, 'DELETE', `/apps/${r.body.appId}`)).status, 404);
    const roomId = await createRoom(srv);
    await adminOk(srv, 'DELETE', `/rooms/${roomId}`, undefined, 204);
    const u = await adminOk(srv, 'POST', '/users', { display_name: 'Tmp' }, 201, { form: true });
    await adminOk(srv, 'DELETE', `/users/${u.body.user.uid}`, undefined, 204);
  });
});

describe('command line', () => {
  const run = (args, env = {}) =>
    spawnSync(process.execPath, [SERVER_JS, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 10_000 });

  test('beyond loopback needs an explicit admin key and JWT key', () => {
    const r = run(['--listen', '0.0.0.0:0']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /beyond loopback/);
    assert.equal(run(['--admin-listen', '0.0.0.0:0', '--jwt-secret', 's']).status, 2);
  });

  test('an unknown bug, flag or transport is a usage error (exit 2)', () => {
    assert.equal(run(['--bug', 'no-such-bug']).status, 2);
    assert.equal(run([], { ALTSERVER_BUGS: 'nope' }).status, 2);
    assert.equal(run(['--frobnicate']).status, 2);
    assert.equal(run(['--transports', 'carrier-pigeon']).status, 2);
    assert.match(run(['--help']).stdout, /^Usage: node server\.js/);
  });

  test('--users seeds users; the secret may come from the environment; SIGTERM closes sockets and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'altserver-users-'));
    const file = join(dir, 'users.json');
    writeFileSync(
      file,
      JSON.stringify([
        { id: 'seed-ann', name: 'Ann', avatar: 'https://a.example/a.png' },
        { id: 'seed-bob', name: 'Bob' },
      ]),
    );
    const srv = await startServer(['--users', file, '--admin-key', 'k'], { keys: false, env: { ALTSERVER_JWT_SECRET: 'from-env' } });
    try {
      assert.equal((await adminOk(srv, 'GET', '/users/seed-bob', undefined, 200, { key: 'k' })).body.user.display_name, 'Bob');
      // Not through srv.connect: stop() would close it before the SIGTERM.
      const s = await connect(`${srv.socket}/`, tokenFor('seed-ann', { secret: 'from-env' }));
      const gone = waitFor(s, 'disconnect');
      assert.equal(await srv.stop(), 0);
      await gone;
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
