//! Every payload type serializes to the protocol's field names (camelCase,
//! `type` for a notification's kind, ...) and decodes back to the same value.

use std::fmt::Debug;

use protocol::ErrorCode;
use protocol::payload::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// `value` serializes to exactly `expected`, and `expected` decodes to `value`.
#[track_caller]
fn round_trip<T>(value: &T, expected: Value)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let actual = serde_json::to_value(value).expect("serializes");
    assert_eq!(
        actual, expected,
        "\nserialized:\n{actual:#}\nexpected:\n{expected:#}"
    );
    let back: T = serde_json::from_value(expected).expect("decodes");
    assert_eq!(&back, value);
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

const TS: &str = "2025-04-11T08:00:00.000Z";

fn room() -> RoomInfo {
    RoomInfo {
        id: "room_p5".into(),
        name: "Office Quiz".into(),
        status: "active".into(),
    }
}

fn user() -> UserInfo {
    UserInfo {
        id: "usr_7".into(),
        name: "Lale Demir".into(),
        avatar: Some("https://img.example.test/u/7.png".into()),
    }
}

fn user_json() -> Value {
    json!({ "id": "usr_7", "name": "Lale Demir", "avatar": "https://img.example.test/u/7.png" })
}

fn prize() -> Prize {
    Prize {
        id: "prize_mug".into(),
        name: "Team mug".into(),
        description: "Ceramic, 350 ml".into(),
        image_url: "https://img.example.test/mug.png".into(),
        quantity: 10,
        quantity_remaining: 7,
        created_at: TS.into(),
    }
}

fn prize_json() -> Value {
    json!({
        "id": "prize_mug",
        "name": "Team mug",
        "description": "Ceramic, 350 ml",
        "imageUrl": "https://img.example.test/mug.png",
        "quantity": 10,
        "quantityRemaining": 7,
        "createdAt": TS
    })
}

#[test]
fn shared_objects() {
    round_trip(
        &room(),
        json!({ "id": "room_p5", "name": "Office Quiz", "status": "active" }),
    );
    round_trip(&user(), user_json());
    // No avatar: the field is left out, not null.
    round_trip(
        &UserInfo {
            avatar: None,
            ..user()
        },
        json!({ "id": "usr_7", "name": "Lale Demir" }),
    );
    round_trip(&prize(), prize_json());
    round_trip(
        &OnlineUser {
            id: "usr_7".into(),
            name: "Lale Demir".into(),
            avatar: None,
            connected_at: TS.into(),
        },
        json!({ "id": "usr_7", "name": "Lale Demir", "connectedAt": TS }),
    );
}

#[test]
fn client_events() {
    round_trip(
        &RoomRef {
            room_id: "room_p5".into(),
        },
        json!({ "roomId": "room_p5" }),
    );
    round_trip(
        &AnswerSubmit {
            question_id: "qst_1".into(),
            answer: "Oslo".into(),
            timestamp: 1_744_358_400_000.0,
        },
        json!({ "questionId": "qst_1", "answer": "Oslo", "timestamp": 1_744_358_400_000.0 }),
    );
    // `Date.now()` is an integer on the wire; it decodes too.
    let from_js: AnswerSubmit = serde_json::from_value(
        json!({ "questionId": "qst_1", "answer": "Oslo", "timestamp": 1_744_358_400_000_u64 }),
    )
    .unwrap();
    assert_eq!(from_js.timestamp, 1_744_358_400_000.0);
    round_trip(
        &MarkRead {
            notification_id: "ntf_3".into(),
        },
        json!({ "notificationId": "ntf_3" }),
    );
}

#[test]
fn acks() {
    round_trip(
        &AckFailure::new(ErrorCode::PermissionDenied, "Private room"),
        json!({ "success": false, "error": { "code": "PERMISSION_DENIED", "message": "Private room" } }),
    );
    round_trip(
        &SubscribeAck {
            success: true,
            room: room(),
        },
        json!({ "success": true, "room": { "id": "room_p5", "name": "Office Quiz", "status": "active" } }),
    );
    let unsubscribe: UnsubscribeAck = ok_data(RoomRef {
        room_id: "room_p5".into(),
    });
    round_trip(
        &unsubscribe,
        json!({ "success": true, "data": { "roomId": "room_p5" } }),
    );
    let mark: MarkReadAck = ok_data(MarkReadData {
        notification_id: "ntf_3".into(),
        read: true,
    });
    round_trip(
        &mark,
        json!({ "success": true, "data": { "notificationId": "ntf_3", "read": true } }),
    );
    round_trip(
        &AnswerAck {
            success: true,
            correct: true,
            response_time: 1.25,
            rank: Some(1),
        },
        json!({ "success": true, "correct": true, "responseTime": 1.25, "rank": 1 }),
    );
    // A wrong answer's rank is null, and present.
    round_trip(
        &AnswerAck {
            success: true,
            correct: false,
            response_time: 3.5,
            rank: None,
        },
        json!({ "success": true, "correct": false, "responseTime": 3.5, "rank": null }),
    );
    round_trip(
        &PresenceListAck {
            success: true,
            room_id: "room_p5".into(),
            users: vec![OnlineUser {
                id: "usr_7".into(),
                name: "Lale Demir".into(),
                avatar: Some("https://img.example.test/u/7.png".into()),
                connected_at: TS.into(),
            }],
            count: 1,
        },
        json!({
            "success": true,
            "roomId": "room_p5",
            "users": [{ "id": "usr_7", "name": "Lale Demir", "avatar": "https://img.example.test/u/7.png", "connectedAt": TS }],
            "count": 1
        }),
    );
}

#[test]
fn room_events() {
    round_trip(
        &RoomSubscription {
            room_id: "room_p5".into(),
            timestamp: TS.into(),
        },
        json!({ "roomId": "room_p5", "timestamp": TS }),
    );
    round_trip(
        &RoomUpdated {
            room_id: "room_p5".into(),
            changes: obj(json!({ "name": "Office Quiz II" })),
            room: RoomInfo {
                name: "Office Quiz II".into(),
                ..room()
            },
            timestamp: TS.into(),
            event_id: Some("evt_1".into()),
        },
        json!({
            "roomId": "room_p5",
            "changes": { "name": "Office Quiz II" },
            "room": { "id": "room_p5", "name": "Office Quiz II", "status": "active" },
            "timestamp": TS,
            "eventId": "evt_1"
        }),
    );
    round_trip(
        &RoomStatusChanged {
            room_id: "room_p5".into(),
            old_status: "draft".into(),
            new_status: "active".into(),
            timestamp: TS.into(),
            event_id: Some("evt_2".into()),
        },
        json!({ "roomId": "room_p5", "oldStatus": "draft", "newStatus": "active", "timestamp": TS, "eventId": "evt_2" }),
    );
    // Without an event id, `eventId` is left out.
    round_trip(
        &RoomDeleted {
            room_id: "room_p5".into(),
            timestamp: TS.into(),
            event_id: None,
        },
        json!({ "roomId": "room_p5", "timestamp": TS }),
    );
}

#[test]
fn participant_events() {
    let participant = Participant {
        id: "part_4".into(),
        user_id: "usr_7".into(),
        role: "participant".into(),
        user: user(),
        joined_at: Some(TS.into()),
    };
    round_trip(
        &ParticipantJoined {
            room_id: "room_p5".into(),
            participant: participant.clone(),
            timestamp: TS.into(),
            event_id: Some("evt_3".into()),
        },
        json!({
            "roomId": "room_p5",
            "participant": {
                "id": "part_4",
                "userId": "usr_7",
                "role": "participant",
                "user": user_json(),
                "joinedAt": TS
            },
            "timestamp": TS,
            "eventId": "evt_3"
        }),
    );
    round_trip(
        &ParticipantLeft {
            room_id: "room_p5".into(),
            participant_id: "part_4".into(),
            user_id: "usr_7".into(),
            timestamp: TS.into(),
            event_id: Some("evt_4".into()),
        },
        json!({ "roomId": "room_p5", "participantId": "part_4", "userId": "usr_7", "timestamp": TS, "eventId": "evt_4" }),
    );
    round_trip(
        &ParticipantUpdated {
            room_id: "room_p5".into(),
            participant_id: "part_4".into(),
            changes: obj(json!({ "role": "moderator" })),
            participant: Participant {
                role: "moderator".into(),
                user: UserInfo {
                    avatar: None,
                    ..user()
                },
                joined_at: None,
                ..participant
            },
            timestamp: TS.into(),
            event_id: Some("evt_5".into()),
        },
        json!({
            "roomId": "room_p5",
            "participantId": "part_4",
            "changes": { "role": "moderator" },
            "participant": {
                "id": "part_4",
                "userId": "usr_7",
                "role": "moderator",
                "user": { "id": "usr_7", "name": "Lale Demir" }
            },
            "timestamp": TS,
            "eventId": "evt_5"
        }),
    );
}

#[test]
fn prize_events() {
    round_trip(
        &PrizeCreated {
            room_id: "room_p5".into(),
            prize: prize(),
            timestamp: TS.into(),
            event_id: Some("evt_6".into()),
        },
        json!({ "roomId": "room_p5", "prize": prize_json(), "timestamp": TS, "eventId": "evt_6" }),
    );
    round_trip(
        &PrizeUpdated {
            room_id: "room_p5".into(),
            prize_id: "prize_mug".into(),
            changes: obj(json!({ "quantityRemaining": 7 })),
            prize: prize(),
            timestamp: TS.into(),
            event_id: Some("evt_7".into()),
        },
        json!({
            "roomId": "room_p5",
            "prizeId": "prize_mug",
            "changes": { "quantityRemaining": 7 },
            "prize": prize_json(),
            "timestamp": TS,
            "eventId": "evt_7"
        }),
    );
    round_trip(
        &PrizeDeleted {
            room_id: "room_p5".into(),
            prize_id: "prize_mug".into(),
            timestamp: TS.into(),
            event_id: Some("evt_8".into()),
        },
        json!({ "roomId": "room_p5", "prizeId": "prize_mug", "timestamp": TS, "eventId": "evt_8" }),
    );
}

#[test]
fn winner_events() {
    round_trip(
        &WinnerSelected {
            room_id: "room_p5".into(),
            winner: Winner {
                id: "win_2".into(),
                participant_id: "part_4".into(),
                prize_id: "prize_mug".into(),
                participant: WinnerParticipant {
                    id: "part_4".into(),
                    user: user(),
                },
                prize: WinnerPrize {
                    id: "prize_mug".into(),
                    name: "Team mug".into(),
                    image_url: "https://img.example.test/mug.png".into(),
                },
                created_at: TS.into(),
            },
            timestamp: TS.into(),
            event_id: Some("evt_9".into()),
        },
        json!({
            "roomId": "room_p5",
            "winner": {
                "id": "win_2",
                "participantId": "part_4",
                "prizeId": "prize_mug",
                "participant": { "id": "part_4", "user": user_json() },
                "prize": { "id": "prize_mug", "name": "Team mug", "imageUrl": "https://img.example.test/mug.png" },
                "createdAt": TS
            },
            "timestamp": TS,
            "eventId": "evt_9"
        }),
    );
    round_trip(
        &WinnerRemoved {
            room_id: "room_p5".into(),
            winner_id: "win_2".into(),
            participant_id: "part_4".into(),
            prize_id: "prize_mug".into(),
            timestamp: TS.into(),
            event_id: Some("evt_10".into()),
        },
        json!({
            "roomId": "room_p5",
            "winnerId": "win_2",
            "participantId": "part_4",
            "prizeId": "prize_mug",
            "timestamp": TS,
            "eventId": "evt_10"
        }),
    );
}

#[test]
fn quiz_events() {
    round_trip(
        &QuestionPublished {
            question_id: "qst_1".into(),
            question_number: 1,
            total_questions: 5,
            question: "Capital of Norway?".into(),
            options: vec!["Oslo".into(), "Bergen".into(), "Tromsø".into()],
            time_limit: 20,
            start_time: TS.into(),
            room_id: "room_p5".into(),
            timestamp: TS.into(),
            event_id: Some("evt_11".into()),
        },
        json!({
            "questionId": "qst_1",
            "questionNumber": 1,
            "totalQuestions": 5,
            "question": "Capital of Norway?",
            "options": ["Oslo", "Bergen", "Tromsø"],
            "timeLimit": 20,
            "startTime": TS,
            "roomId": "room_p5",
            "timestamp": TS,
            "eventId": "evt_11"
        }),
    );
    let result = AnswerResult {
        question_id: "qst_1".into(),
        participant_id: "part_4".into(),
        user: AnswerUser {
            id: "usr_7".into(),
            name: "Lale Demir".into(),
        },
        correct: true,
        response_time: 1.25,
        rank: Some(1),
        room_id: "room_p5".into(),
        timestamp: TS.into(),
        event_id: Some("evt_12".into()),
    };
    round_trip(
        &result,
        json!({
            "questionId": "qst_1",
            "participantId": "part_4",
            "user": { "id": "usr_7", "name": "Lale Demir" },
            "correct": true,
            "responseTime": 1.25,
            "rank": 1,
            "roomId": "room_p5",
            "timestamp": TS,
            "eventId": "evt_12"
        }),
    );
    // As the protocol shows it: no roomId, no eventId; a wrong answer has
    // rank null.
    round_trip(
        &AnswerResult {
            correct: false,
            rank: None,
            room_id: String::new(),
            event_id: None,
            ..result
        },
        json!({
            "questionId": "qst_1",
            "participantId": "part_4",
            "user": { "id": "usr_7", "name": "Lale Demir" },
            "correct": false,
            "responseTime": 1.25,
            "rank": null,
            "timestamp": TS
        }),
    );
}

#[test]
fn notification_events() {
    round_trip(
        &NotificationReceived {
            id: "ntf_3".into(),
            kind: "winner_selected".into(),
            title: "Winner!".into(),
            message: "You won a Team mug".into(),
            data: obj(json!({ "roomId": "room_p5", "winnerId": "win_2", "prizeId": "prize_mug" })),
            read: false,
            created_at: TS.into(),
            timestamp: TS.into(),
            event_id: Some("evt_13".into()),
        },
        json!({
            "id": "ntf_3",
            "type": "winner_selected",
            "title": "Winner!",
            "message": "You won a Team mug",
            "data": { "roomId": "room_p5", "winnerId": "win_2", "prizeId": "prize_mug" },
            "read": false,
            "createdAt": TS,
            "timestamp": TS,
            "eventId": "evt_13"
        }),
    );
}

#[test]
fn presence_events() {
    round_trip(
        &UserOnline {
            room_id: "room_p5".into(),
            user_id: "usr_7".into(),
            user: user(),
            timestamp: TS.into(),
            event_id: Some("evt_14".into()),
        },
        json!({ "roomId": "room_p5", "userId": "usr_7", "user": user_json(), "timestamp": TS, "eventId": "evt_14" }),
    );
    round_trip(
        &UserOffline {
            room_id: "room_p5".into(),
            user_id: "usr_7".into(),
            timestamp: TS.into(),
            event_id: Some("evt_15".into()),
        },
        json!({ "roomId": "room_p5", "userId": "usr_7", "timestamp": TS, "eventId": "evt_15" }),
    );
}

#[test]
fn errors_session_and_app_events() {
    round_trip(
        &ErrorEvent {
            code: ErrorCode::InvalidPayload,
            message: "roomId must be a string".into(),
            details: obj(json!({ "event": "room:subscribe" })),
            timestamp: TS.into(),
        },
        json!({
            "code": "INVALID_PAYLOAD",
            "message": "roomId must be a string",
            "details": { "event": "room:subscribe" },
            "timestamp": TS
        }),
    );
    round_trip(
        &TokenExpired {
            timestamp: TS.into(),
            disconnect_at: Some("2025-04-11T08:00:30.000Z".into()),
        },
        json!({ "timestamp": TS, "disconnectAt": "2025-04-11T08:00:30.000Z" }),
    );
    round_trip(
        &AppEventMeta {
            event_id: "evt_16".into(),
            app_id: "lottery".into(),
            room_id: "room_p5".into(),
            timestamp: TS.into(),
        },
        json!({ "eventId": "evt_16", "appId": "lottery", "roomId": "room_p5", "timestamp": TS }),
    );
    round_trip(
        &ConnectErrorBody {
            message: "Authentication failed: Token expired".into(),
        },
        json!({ "message": "Authentication failed: Token expired" }),
    );
}

#[test]
fn unknown_fields_are_accepted_when_decoding() {
    let decoded: RoomDeleted = serde_json::from_value(
        json!({ "roomId": "room_p5", "timestamp": TS, "eventId": "evt_1", "shard": 3 }),
    )
    .unwrap();
    assert_eq!(decoded.event_id.as_deref(), Some("evt_1"));
}
