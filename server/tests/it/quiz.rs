//! Quiz (protocol notes N3): questions created over REST with their answer
//! key, `quiz:question_published` without it, `quiz:answer_submit` acks
//! with `correct`, `responseTime` and `rank`, `quiz:answer_result`
//! broadcasts, and every refusal.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testing::*;
use sioclient::Socket;

const PUBLISHED_KEYS: [&str; 10] = [
    "questionId",
    "questionNumber",
    "totalQuestions",
    "question",
    "options",
    "timeLimit",
    "startTime",
    "roomId",
    "timestamp",
    "eventId",
];

async fn create_question(srv: &TestServer, room: &str, time_limit: u32) -> String {
    let body = json!({
        "question": "How much is 2 + 2?",
        "options": ["3", "4", "5"],
        "answer": "4",
        "timeLimit": time_limit,
    });
    let (status, q) = srv
        .admin_call(
            Method::POST,
            &format!("/api/rooms/{room}/quiz/questions"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{q}");
    // The creator gets the key back; clients never do.
    assert_eq!(q["answer"], json!("4"));
    assert_eq!(q["roomId"], json!(room));
    assert_eq!(q["options"], json!(["3", "4", "5"]));
    assert_eq!(q["timeLimit"], json!(time_limit));
    assert_eq!(q["startTime"], Value::Null);
    q["id"].as_str().expect("question id").to_owned()
}

/// Publishes; returns the REST answer (the event's payload).
async fn publish(srv: &TestServer, room: &str, question: &str) -> Value {
    let body = srv
        .post(
            &format!("/api/rooms/{room}/quiz/questions/{question}/publish"),
            json!({}),
        )
        .await;
    assert!(
        body.get("answer").is_none(),
        "publish answer leaks the key: {body}"
    );
    body
}

/// Checks `quiz:question_published` on one socket.
async fn published(socket: &mut Socket, rest: &Value, room: &str, question: &str, number: u32) {
    let ev = next_event(socket, "quiz:question_published").await;
    assert_payload("quiz:question_published", &ev);
    assert!(ev.get("answer").is_none(), "the answer key leaked: {ev}");
    assert_exact_keys(&ev, &PUBLISHED_KEYS);
    assert_eq!(ev["questionId"], json!(question));
    assert_eq!(ev["questionNumber"], json!(number));
    assert_eq!(ev["totalQuestions"], json!(number));
    assert_eq!(ev["question"], json!("How much is 2 + 2?"));
    assert_eq!(ev["options"], json!(["3", "4", "5"]));
    assert_eq!(ev["roomId"], json!(room));
    assert_eq!(ev["startTime"], rest["startTime"]);
    assert_eq!(ev["eventId"], rest["eventId"]);
    assert_recent("startTime", ev["startTime"].as_str().expect("startTime"));
}

async fn submit(socket: &Socket, question: &str, answer: &str) -> Value {
    let ack = ack(
        socket,
        "quiz:answer_submit",
        json!({"questionId": question, "answer": answer, "timestamp": 1_700_000_000_000u64}),
    )
    .await;
    assert_ack_schema("quiz:answer_submit", &ack);
    ack
}

async fn refused(socket: &Socket, payload: Value, code: &str) {
    let ack = ack(socket, "quiz:answer_submit", payload).await;
    assert_ack_schema("quiz:answer_submit", &ack);
    assert_ack_error(&ack, code);
}

/// Checks a success ack; returns its `responseTime`.
fn answered(ack: &Value, correct: bool, rank: Value, time_limit: f64) -> f64 {
    assert_exact_keys(ack, &["success", "correct", "responseTime", "rank"]);
    assert_eq!(ack["success"], json!(true), "{ack}");
    assert_eq!(ack["correct"], json!(correct), "{ack}");
    assert_eq!(ack["rank"], rank, "{ack}");
    let rt = ack["responseTime"]
        .as_f64()
        .expect("responseTime is a number");
    assert!((0.0..=time_limit).contains(&rt), "responseTime {rt}");
    rt
}

#[tokio::test]
async fn answers_are_ranked_and_broadcast_without_the_key() {
    let srv = TestServer::start().await;
    let room = srv.room("Quiz room", "public").await;
    let ann = srv.user("Ann").await;
    let bob = srv.user("Bob").await;
    let cid = srv.user("Cid").await;
    let dee = srv.user("Dee").await; // not a participant
    let mut pids = Vec::new();
    for u in [&ann, &bob, &cid] {
        pids.push(srv.join(&room, &u.id, "participant").await);
    }
    // Ann, Bob and Dee subscribe on `/`; Cid answers from the room
    // namespace.
    let mut a = srv.subscribed(&ann.token, &room).await;
    let mut b = srv.subscribed(&bob.token, &room).await;
    let mut d = srv.subscribed(&dee.token, &room).await;
    let mut c = srv.connect(&cid.token, &format!("/rooms/{room}")).await;
    next_event(&mut c, "room:subscribed").await;

    let q = create_question(&srv, &room, 30).await;

    // Unpublished and unknown questions.
    refused(
        &a,
        json!({"questionId": q, "answer": "4", "timestamp": 1}),
        "INVALID_PAYLOAD",
    )
    .await;
    refused(
        &a,
        json!({"questionId": "q_unknown", "answer": "4", "timestamp": 1}),
        "INVALID_PAYLOAD",
    )
    .await;

    let rest = publish(&srv, &room, &q).await;
    for s in [&mut a, &mut b, &mut c, &mut d] {
        published(s, &rest, &room, &q, 1).await;
    }

    // Malformed answers: no timestamp, a non-numeric one, no answer.
    refused(
        &a,
        json!({"questionId": q, "answer": "4"}),
        "INVALID_PAYLOAD",
    )
    .await;
    refused(
        &a,
        json!({"questionId": q, "answer": "4", "timestamp": "now"}),
        "INVALID_PAYLOAD",
    )
    .await;
    refused(
        &a,
        json!({"questionId": q, "timestamp": 1}),
        "INVALID_PAYLOAD",
    )
    .await;

    // A subscriber who is not a participant may not answer.
    refused(
        &d,
        json!({"questionId": q, "answer": "4", "timestamp": 1}),
        "PERMISSION_DENIED",
    )
    .await;

    // Correct (rank 1), wrong (rank null), not an option (refused, and it
    // does not use the one answer), correct (rank 2).
    let rt_a = answered(&submit(&a, &q, "4").await, true, json!(1), 30.0);
    let rt_b = answered(&submit(&b, &q, "3").await, false, Value::Null, 30.0);
    refused(
        &c,
        json!({"questionId": q, "answer": "42", "timestamp": 1}),
        "INVALID_PAYLOAD",
    )
    .await;
    let rt_c = answered(&submit(&c, &q, "4").await, true, json!(2), 30.0);
    assert!(rt_a <= rt_b && rt_b <= rt_c, "{rt_a} {rt_b} {rt_c}");

    // Everyone subscribed sees every result, in arrival order.
    let expected = [
        (&ann, &pids[0], true, rt_a, json!(1)),
        (&bob, &pids[1], false, rt_b, Value::Null),
        (&cid, &pids[2], true, rt_c, json!(2)),
    ];
    for s in [&mut a, &mut b, &mut c, &mut d] {
        for (user, pid, correct, rt, rank) in &expected {
            let ev = next_event(s, "quiz:answer_result").await;
            assert_payload("quiz:answer_result", &ev);
            assert_exact_keys(
                &ev,
                &[
                    "questionId",
                    "participantId",
                    "user",
                    "correct",
                    "responseTime",
                    "rank",
                    "roomId",
                    "timestamp",
                    "eventId",
                ],
            );
            assert_eq!(ev["questionId"], json!(q));
            assert_eq!(ev["participantId"], json!(pid));
            assert_eq!(ev["user"], json!({"id": user.id, "name": user.name}));
            assert_eq!(ev["correct"], json!(correct));
            assert_eq!(ev["responseTime"].as_f64(), Some(*rt));
            assert_eq!(ev["rank"], *rank);
            assert_eq!(ev["roomId"], json!(room));
        }
    }

    // One answer per user per question, right or wrong.
    refused(
        &a,
        json!({"questionId": q, "answer": "5", "timestamp": 1}),
        "INVALID_PAYLOAD",
    )
    .await;
    refused(
        &b,
        json!({"questionId": q, "answer": "4", "timestamp": 1}),
        "INVALID_PAYLOAD",
    )
    .await;

    // No refusal produced a result.
    assert_none_of(&mut d, &["quiz:answer_result"]).await;
    srv.stop().await;
}

#[tokio::test]
async fn an_answer_after_the_time_limit_is_refused() {
    let srv = TestServer::start().await;
    let room = srv.room("Fast quiz", "public").await;
    let ann = srv.user("Ann").await;
    srv.join(&room, &ann.id, "participant").await;
    let mut a = srv.subscribed(&ann.token, &room).await;

    let q = create_question(&srv, &room, 1).await;
    let rest = publish(&srv, &room, &q).await;
    assert_eq!(rest["timeLimit"], json!(1));
    published(&mut a, &rest, &room, &q, 1).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    refused(
        &a,
        json!({"questionId": q, "answer": "4", "timestamp": 1}),
        "INVALID_PAYLOAD",
    )
    .await;
    assert_none_of(&mut a, &["quiz:answer_result"]).await;
    srv.stop().await;
}
