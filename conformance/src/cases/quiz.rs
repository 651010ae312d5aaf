//! Quiz: `quiz:question_published`, `quiz:answer_submit` and its ack,
//! `quiz:answer_result`, ranking, refused answers.

use std::time::{Duration, Instant, SystemTime};

use driver::Action;
use protocol::ErrorCode;
use protocol::event as ev;
use protocol::{Role, Visibility};
use serde_json::{Value, json};
use sioclient::Socket;

use super::support::{check_refused_ack, check_time, note_event_id, observer, output_string};
use crate::case;
use crate::case::{Case, Failure};
use crate::ctx::{Ctx, Room, User, vars};

pub const CASES: &[Case] = &[
    case!(
        "quiz.question_published.payload",
        "Publishing a question sends `quiz:question_published` without the answer key",
        "Quiz Example: quiz:question_published {questionId, questionNumber, totalQuestions, question, options, timeLimit, startTime} and timestamp (\"All events include `timestamp`\"); roomId and no answer key: N3; eventId: N6 (non-strict)",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            CreateQuestion,
            PublishQuestion
        ],
        published
    ),
    case!(
        "quiz.answer_submit.ack",
        "A correct first answer is acknowledged with {success: true, correct: true, responseTime, rank: 1}",
        "Quiz Example: quiz:answer_submit's Response {success: true, correct, responseTime (seconds, from startTime), rank}",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreateQuestion,
            PublishQuestion
        ],
        answer_ack
    ),
    case!(
        "quiz.answer_result.payload",
        "An accepted answer is broadcast to the room as `quiz:answer_result`",
        "quiz:answer_result: {questionId, participantId, user: {id, name}, correct, responseTime, rank, timestamp, eventId}, as in the answer's ack",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreateQuestion,
            PublishQuestion
        ],
        answer_result
    ),
    case!(
        "quiz.ranking",
        "Ranks count correct answers in arrival order; a wrong answer has rank null",
        "Quiz Example: every answer's result is broadcast with correct; rank among the correct answers in arrival order, null for a wrong one, is N3",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreateQuestion,
            PublishQuestion
        ],
        ranking
    ),
    case!(
        "quiz.answer_submit.invalid",
        "An answer to an unknown question is refused with INVALID_PAYLOAD",
        "Error codes: an answer to an unknown question is refused (\"Invalid event payload\"); the code INVALID_PAYLOAD is N3",
        [CreateUser, MintToken],
        unknown_question
    ),
    case!(
        "quiz.answer_submit.unpublished",
        "An answer to a question not yet published is refused with INVALID_PAYLOAD",
        "Error codes: an answer to an unpublished question is refused; the code INVALID_PAYLOAD is N3",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreateQuestion
        ],
        unpublished
    ),
    case!(
        "quiz.answer_submit.duplicate",
        "A second answer by the same user is refused with INVALID_PAYLOAD",
        "N3 (the text is silent): one answer per user and question; a second gets INVALID_PAYLOAD",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreateQuestion,
            PublishQuestion
        ],
        duplicate
    ),
    case!(
        "quiz.answer_submit.not_an_option",
        "An answer that is not one of the options is refused with INVALID_PAYLOAD",
        "Error codes: an answer that is not one of the options is refused; INVALID_PAYLOAD, and the refusal using up nothing, are N3",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreateQuestion,
            PublishQuestion
        ],
        not_an_option
    ),
    case!(
        "quiz.answer_submit.late",
        "An answer after timeLimit seconds is refused with INVALID_PAYLOAD",
        "N3 (the text shows timeLimit, no rule): an answer after timeLimit seconds from startTime, without grace, gets INVALID_PAYLOAD",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            AddParticipant,
            CreateQuestion,
            PublishQuestion
        ],
        late
    ),
    case!(
        "quiz.answer_submit.non_participant",
        "An answer from a user who is not a participant of the room is refused with PERMISSION_DENIED",
        "Room authorization: \"Publishing events\" needs permission: a non-participant's answer gets PERMISSION_DENIED",
        [
            CreateUser,
            MintToken,
            CreateRoom,
            CreateQuestion,
            PublishQuestion
        ],
        non_participant
    ),
];

const OPTIONS: [&str; 4] = ["Jupiter", "Mars", "Mercury", "Venus"];
const ANSWER: &str = "Mercury";
const WRONG: &str = "Venus";
const QUESTION: &str = "Which planet has the shortest year?";

/// Creates a question (answer key `ANSWER`) in `room`; returns its id.
pub(super) async fn create_question(
    cx: &mut Ctx,
    room: &Room,
    time_limit: u32,
) -> Result<String, Failure> {
    let out = cx
        .act(
            Action::CreateQuestion,
            vars(&[
                ("roomId", json!(room.id)),
                ("question", json!(QUESTION)),
                ("options", json!(OPTIONS)),
                ("answer", json!(ANSWER)),
                // For a target that keys the answer by its position.
                (
                    "answerIndex",
                    json!(OPTIONS.iter().position(|o| *o == ANSWER)),
                ),
                ("timeLimit", json!(time_limit)),
            ]),
        )
        .await?;
    output_string(&out, "questionId")
}

pub(super) async fn publish(cx: &mut Ctx, room: &Room, question_id: &str) -> Result<(), Failure> {
    cx.act(
        Action::PublishQuestion,
        vars(&[
            ("roomId", json!(room.id)),
            ("questionId", json!(question_id)),
        ]),
    )
    .await?;
    Ok(())
}

/// A participant of `room` connected on `/`; returns the user, their
/// participant id and the socket.
async fn participant(
    cx: &mut Ctx,
    room: &Room,
    label: &str,
) -> Result<(User, String, Socket), Failure> {
    let u = cx.user(label).await?;
    let pid = cx.join(room, &u, Role::Participant).await?;
    let s = cx.connect(&u.token, "/").await?;
    Ok((u, pid, s))
}

fn client_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn submit(
    cx: &mut Ctx,
    s: &Socket,
    question_id: &str,
    answer: &str,
) -> Result<Value, Failure> {
    let ack = cx
        .ack(
            s,
            ev::QUIZ_ANSWER_SUBMIT,
            json!({ "questionId": question_id, "answer": answer, "timestamp": client_now_ms() }),
        )
        .await?;
    cx.check_ack(ev::QUIZ_ANSWER_SUBMIT, &ack)?;
    Ok(ack)
}

/// Submits an answer that must be accepted; returns the ack.
async fn submit_ok(
    cx: &mut Ctx,
    s: &Socket,
    question_id: &str,
    answer: &str,
) -> Result<Value, Failure> {
    let ack = submit(cx, s, question_id, answer).await?;
    cx.expect_eq(
        &format!("answer {answer:?}: ack success"),
        &json!(true),
        &ack["success"],
    )?;
    Ok(ack)
}

/// Submits an answer that must be refused with `code`.
async fn submit_refused(
    cx: &mut Ctx,
    s: &Socket,
    question_id: &str,
    answer: &str,
    code: ErrorCode,
) -> Result<(), Failure> {
    let ack = submit_raw(cx, s, question_id, answer).await?;
    cx.check_error_ack(ev::QUIZ_ANSWER_SUBMIT, &ack, code)
}

/// Submits an answer the text requires refused, with the code `code` that
/// `decision` chose: a failed ack of any code meets the text.
async fn submit_refused_per(
    cx: &mut Ctx,
    s: &Socket,
    question_id: &str,
    answer: &str,
    code: ErrorCode,
    decision: &'static str,
) -> Result<(), Failure> {
    let ack = submit_raw(cx, s, question_id, answer).await?;
    check_refused_ack(cx, ev::QUIZ_ANSWER_SUBMIT, &ack, code, decision)
}

async fn submit_raw(
    cx: &mut Ctx,
    s: &Socket,
    question_id: &str,
    answer: &str,
) -> Result<Value, Failure> {
    cx.ack(
        s,
        ev::QUIZ_ANSWER_SUBMIT,
        json!({ "questionId": question_id, "answer": answer, "timestamp": client_now_ms() }),
    )
    .await
}

/// No field of the published question may carry the answer key.
fn no_answer_key(p: &Value) -> Result<(), Failure> {
    let Some(obj) = p.as_object() else {
        return Ok(());
    };
    for (k, v) in obj {
        let lk = k.to_ascii_lowercase();
        let named = lk.contains("answer") || lk.contains("correct") || lk.contains("solution");
        let carries = k != "options" && k != "question" && v.as_str() == Some(ANSWER);
        if named || carries {
            return Err(Failure::fail(
                "quiz:question_published without the answer key (N3)",
                format!("field {k} = {v}"),
            ));
        }
    }
    Ok(())
}

async fn published(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let mut s = observer(cx, &room).await?;
    let qid = create_question(cx, &room, 30).await?;
    publish(cx, &room, &qid).await?;
    let p = cx.expect_event(&mut s, ev::QUIZ_QUESTION_PUBLISHED).await?;
    cx.check_payload(ev::QUIZ_QUESTION_PUBLISHED, &p)?;
    cx.expect_eq("questionId", &json!(qid), &p["questionId"])?;
    cx.expect_eq(
        "questionNumber (the room's first question)",
        &json!(1),
        &p["questionNumber"],
    )?;
    let total = p["totalQuestions"].as_u64().unwrap_or(0);
    cx.ensure(
        total >= 1,
        "totalQuestions >= questionNumber",
        format!("totalQuestions = {}", p["totalQuestions"]),
    )?;
    cx.expect_eq("question", &json!(QUESTION), &p["question"])?;
    cx.expect_eq("options", &json!(OPTIONS), &p["options"])?;
    cx.expect_eq("timeLimit", &json!(30), &p["timeLimit"])?;
    check_time(cx, "startTime", &p["startTime"])?;
    // The text's payload has no room id, and says nothing of the key.
    let room_id = cx.expect_eq("roomId", &json!(room.id), &p["roomId"]);
    cx.decided("N3", room_id)?;
    cx.decided("N3", no_answer_key(&p))?;
    note_event_id(cx, ev::QUIZ_QUESTION_PUBLISHED, &p);
    s.disconnect().await;
    Ok(())
}

async fn answer_ack(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let (_u, _pid, s) = participant(cx, &room, "answerer").await?;
    let qid = create_question(cx, &room, 30).await?;
    let before_publish = Instant::now();
    publish(cx, &room, &qid).await?;
    let ack = submit_ok(cx, &s, &qid, ANSWER).await?;
    let elapsed = before_publish.elapsed().as_secs_f64();
    cx.expect_eq("ack correct", &json!(true), &ack["correct"])?;
    cx.expect_eq(
        "ack rank (the first correct answer)",
        &json!(1),
        &ack["rank"],
    )?;
    let rt = ack["responseTime"].as_f64();
    // The server's interval lies inside the runner's (publish request sent
    // → ack received); 5 ms of slack for millisecond rounding.
    cx.ensure(
        rt.is_some_and(|t| (0.0..=elapsed + 0.005).contains(&t)),
        format!("ack responseTime: seconds, between 0 and {elapsed:.3} (publish → ack as the runner saw it)"),
        format!("responseTime = {}", ack["responseTime"]),
    )?;
    s.disconnect().await;
    Ok(())
}

async fn answer_result(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let mut obs = observer(cx, &room).await?;
    let (u, pid, s) = participant(cx, &room, "answerer").await?;
    let qid = create_question(cx, &room, 30).await?;
    publish(cx, &room, &qid).await?;
    let ack = submit_ok(cx, &s, &qid, ANSWER).await?;

    let p = cx.expect_event(&mut obs, ev::QUIZ_ANSWER_RESULT).await?;
    cx.check_payload(ev::QUIZ_ANSWER_RESULT, &p)?;
    cx.expect_eq("questionId", &json!(qid), &p["questionId"])?;
    cx.expect_eq("participantId", &json!(pid), &p["participantId"])?;
    cx.expect_eq("user.id", &json!(u.id), &p["user"]["id"])?;
    cx.expect_eq("user.name", &json!(u.name), &p["user"]["name"])?;
    cx.expect_eq("correct", &json!(true), &p["correct"])?;
    cx.expect_eq("rank", &json!(1), &p["rank"])?;
    cx.expect_eq(
        "responseTime (as in the ack)",
        &ack["responseTime"],
        &p["responseTime"],
    )?;
    if let Some(r) = p.get("roomId") {
        cx.expect_eq("roomId", &json!(room.id), r)?;
    }
    note_event_id(cx, ev::QUIZ_ANSWER_RESULT, &p);
    obs.disconnect().await;
    s.disconnect().await;
    Ok(())
}

async fn ranking(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let mut obs = observer(cx, &room).await?;
    let qid = create_question(cx, &room, 30).await?;
    let mut answerers = Vec::new();
    for label in ["first", "second", "third"] {
        answerers.push(participant(cx, &room, label).await?);
    }
    publish(cx, &room, &qid).await?;
    let plan = [
        (ANSWER, true, json!(1)),
        (WRONG, false, Value::Null),
        (ANSWER, true, json!(2)),
    ];
    let mut expected = Vec::new();
    for ((_, pid, s), (answer, correct, rank)) in answerers.iter().zip(plan) {
        // One at a time: arrival order is the order sent.
        let ack = submit_ok(cx, s, &qid, answer).await?;
        cx.expect_eq(
            &format!("answer {answer:?}: ack correct"),
            &json!(correct),
            &ack["correct"],
        )?;
        // Ranks among the correct answers only, null for a wrong one: N3.
        let ranked = cx.expect_eq(&format!("answer {answer:?}: ack rank"), &rank, &ack["rank"]);
        cx.decided("N3", ranked)?;
        expected.push((json!([pid, correct]), rank));
    }
    let mut results = Vec::new();
    for _ in 0..3 {
        let p = cx.expect_event(&mut obs, ev::QUIZ_ANSWER_RESULT).await?;
        cx.check_payload(ev::QUIZ_ANSWER_RESULT, &p)?;
        results.push((json!([p["participantId"], p["correct"]]), p["rank"].clone()));
    }
    let (who, ranks): (Vec<Value>, Vec<Value>) = expected.into_iter().unzip();
    let (got_who, got_ranks): (Vec<Value>, Vec<Value>) = results.into_iter().unzip();
    cx.expect_eq(
        "quiz:answer_result (participantId, correct) in arrival order",
        &json!(who),
        &json!(got_who),
    )?;
    let ranked = cx.expect_eq(
        "quiz:answer_result rank in arrival order",
        &json!(ranks),
        &json!(got_ranks),
    );
    cx.decided("N3", ranked)?;
    obs.disconnect().await;
    for (_, _, s) in answerers {
        s.disconnect().await;
    }
    Ok(())
}

async fn unknown_question(cx: &mut Ctx) -> Result<(), Failure> {
    let u = cx.user("answerer").await?;
    let s = cx.connect(&u.token, "/").await?;
    let qid = cx.unique("q_missing_");
    submit_refused_per(cx, &s, &qid, ANSWER, ErrorCode::InvalidPayload, "N3").await?;
    s.disconnect().await;
    Ok(())
}

async fn unpublished(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let (_u, _pid, s) = participant(cx, &room, "answerer").await?;
    let qid = create_question(cx, &room, 30).await?;
    submit_refused_per(cx, &s, &qid, ANSWER, ErrorCode::InvalidPayload, "N3").await?;
    s.disconnect().await;
    Ok(())
}

async fn duplicate(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let (_u, _pid, s) = participant(cx, &room, "answerer").await?;
    let qid = create_question(cx, &room, 30).await?;
    publish(cx, &room, &qid).await?;
    submit_ok(cx, &s, &qid, WRONG).await?;
    // The text allows one answer or several; refusing the second is N3.
    let refused = submit_refused(cx, &s, &qid, ANSWER, ErrorCode::InvalidPayload).await;
    cx.decided("N3", refused)?;
    s.disconnect().await;
    Ok(())
}

async fn not_an_option(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let (_u, _pid, s) = participant(cx, &room, "answerer").await?;
    let qid = create_question(cx, &room, 30).await?;
    publish(cx, &room, &qid).await?;
    submit_refused_per(cx, &s, &qid, "Pluto", ErrorCode::InvalidPayload, "N3").await?;
    // The refusal used nothing up: a valid answer is still accepted (N3:
    // one answer per user).
    let after = submit_ok(cx, &s, &qid, ANSWER).await;
    let after =
        after.and_then(|ack| cx.expect_eq("the valid answer's rank", &json!(1), &ack["rank"]));
    cx.decided("N3", after)?;
    s.disconnect().await;
    Ok(())
}

async fn late(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let (_u, _pid, s) = participant(cx, &room, "answerer").await?;
    let qid = create_question(cx, &room, 1).await?;
    publish(cx, &room, &qid).await?;
    // The rule needs time: timeLimit is 1 s.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // The text shows timeLimit but no rule for late answers: N3, no grace.
    let refused = submit_refused(cx, &s, &qid, ANSWER, ErrorCode::InvalidPayload).await;
    cx.decided("N3", refused)?;
    s.disconnect().await;
    Ok(())
}

async fn non_participant(cx: &mut Ctx) -> Result<(), Failure> {
    let room = cx.room(Visibility::Public).await?;
    let u = cx.user("outsider").await?;
    let s = cx.connect(&u.token, "/").await?;
    let qid = create_question(cx, &room, 30).await?;
    publish(cx, &room, &qid).await?;
    submit_refused(cx, &s, &qid, ANSWER, ErrorCode::PermissionDenied).await?;
    s.disconnect().await;
    Ok(())
}
