// Quiz: a question created with its answer, then published
// (quiz:question_published); quiz:answer_submit with its ack; rank over all
// answers in arrival order; quiz:answer_result; the refusals.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ack,
  addMember,
  adminOk,
  collectUntilNotified,
  createRoom,
  isRecentIso,
  sleep,
  startServer,
  userWithToken,
  waitFor,
} from './helpers.js';

let srv;
before(async () => (srv = await startServer()));
after(async () => srv.stop());

const OPTIONS = ['London', 'Berlin', 'Paris', 'Madrid'];

async function quizRoom(players = ['Ann', 'Bob']) {
  const roomId = await createRoom(srv, { title: 'Quiz' });
  const out = [];
  for (const name of players) {
    const u = await userWithToken(srv, name);
    const m = await addMember(srv, roomId, u.uid);
    const s = await srv.connect('/', u.token);
    await ack(s, 'room:subscribe', { roomId });
    out.push({ ...u, memberId: m.memberId, s });
  }
  return { roomId, players: out };
}

async function question(roomId, seconds = 30) {
  const r = await adminOk(
    srv,
    'POST',
    `/rooms/${roomId}/quiz`,
    { prompt: 'What is the capital of France?', choices: OPTIONS, correct: 2, seconds },
    201,
  );
  return r.body.qid;
}

const answer = (s, questionId, a) => ack(s, 'quiz:answer_submit', { questionId, answer: a, timestamp: Date.now() });

test('publishing sends quiz:question_published with the text fields, without the answer', async () => {
  const { roomId, players } = await quizRoom(['Ann']);
  await question(roomId);
  const qid = await question(roomId);
  const published = waitFor(players[0].s, 'quiz:question_published');
  const r = await adminOk(srv, 'POST', `/quiz/${qid}/publish`, undefined, 200);
  const ev = await published;
  assert.deepEqual(ev, {
    questionId: qid,
    questionNumber: 1,
    totalQuestions: 2,
    question: 'What is the capital of France?',
    options: OPTIONS,
    timeLimit: 30,
    startTime: r.body.startTime.replace('.000Z', 'Z'),
    timestamp: ev.timestamp,
  });
  assert.ok(isRecentIso(ev.startTime));
});

test('answers: the ack {success, correct, responseTime, rank}, rank counts every answer, quiz:answer_result to the room', async () => {
  const { roomId, players } = await quizRoom(['Ann', 'Bob']);
  const [ann, bob] = players;
  const qid = await question(roomId);
  await adminOk(srv, 'POST', `/quiz/${qid}/publish`, undefined, 200);
  let wrong;
  let right;
  const got = await collectUntilNotified(srv, bob.uid, bob.s, 'quiz:answer_result', async () => {
    wrong = await answer(ann.s, qid, 'Berlin');
    right = await answer(bob.s, qid, 'Paris');
  });
  assert.deepEqual(Object.keys(wrong), ['success', 'correct', 'responseTime', 'rank']);
  assert.equal(wrong.success, true);
  assert.equal(wrong.correct, false);
  assert.equal(wrong.rank, 1);
  assert.ok(wrong.responseTime >= 0 && wrong.responseTime < 2, wrong.responseTime);
  assert.equal(right.correct, true);
  assert.equal(right.rank, 2, 'the wrong answer before it counts');
  assert.equal(got.length, 2);
  assert.deepEqual(got[1], {
    questionId: qid,
    participantId: bob.memberId,
    user: { id: bob.uid, name: 'Bob' },
    correct: true,
    responseTime: right.responseTime,
    rank: 2,
    timestamp: got[1].timestamp,
  });
});

test('a second answer gets the first one result again and broadcasts nothing', async () => {
  const { roomId, players } = await quizRoom(['Ann']);
  const [ann] = players;
  const qid = await question(roomId);
  await adminOk(srv, 'POST', `/quiz/${qid}/publish`, undefined, 200);
  const first = await answer(ann.s, qid, 'Paris');
  const results = await collectUntilNotified(srv, ann.uid, ann.s, 'quiz:answer_result', async () => {
    assert.deepEqual(await answer(ann.s, qid, 'London'), first);
  });
  assert.deepEqual(results, []);
});

test('refusals: unknown or unpublished question, not an option, not a member, too late', async () => {
  const { roomId, players } = await quizRoom(['Ann']);
  const [ann] = players;
  const qid = await question(roomId, 1);
  assert.equal((await answer(ann.s, 'q-nope', 'Paris')).error.code, 'INVALID_PAYLOAD');
  assert.equal((await answer(ann.s, qid, 'Paris')).error.code, 'INVALID_PAYLOAD', 'not published yet');
  await adminOk(srv, 'POST', `/quiz/${qid}/publish`, undefined, 200);
  assert.equal((await answer(ann.s, qid, 'Rome')).error.code, 'INVALID_PAYLOAD');
  const stranger = await userWithToken(srv, 'Eve');
  const es = await srv.connect('/', stranger.token);
  const denied = await answer(es, qid, 'Paris');
  assert.equal(denied.error.code, 'PERMISSION_DENIED');
  // timeLimit 1 s, startTime cut to the second, 1 s of grace: 3.1 s is late.
  await sleep(3100);
  assert.equal((await answer(ann.s, qid, 'Paris')).error.code, 'INVALID_PAYLOAD');
});
