//! Application events (`{appId}:*`, published over REST): delivery, the
//! `realtime:publish` permission, the `{appId}:` prefix, and the
//! application rate limits.

use std::time::{Duration, Instant};

use driver::Action;
use protocol::ErrorCode;
use protocol::Visibility;
use protocol::event as ev;
use protocol::limits;
use serde_json::{Value, json};

use super::support::{
    check_rest_refusal, check_time, first_arg, namespace_subscribed, output_string, room_sentinel,
};
use crate::case;
use crate::case::{Case, Failure};
use crate::ctx::{Ctx, Room, vars};
use crate::profile::Vars;

pub const CASES: &[Case] = &[
    case!(
        "apps.custom.delivered",
        "An application event reaches the room's subscribers on `/` with its data exactly as sent",
        "Custom events: \"Payload (as sent by app)\": the first argument is `data` exactly as the application sent it; a non-object `data` (N6) and the second argument {eventId, appId, roomId, timestamp} (N6, non-strict) are decisions",
        [
            CreateApp,
            PublishAppEvent,
            CreateUser,
            MintToken,
            CreateRoom
        ],
        delivered
    ),
    case!(
        "apps.custom.room_namespace",
        "An application event reaches sockets connected to `/rooms/:roomId`",
        "Namespaces: room-specific events reach /rooms/:roomId; its room:subscribed on connect is N5",
        [
            CreateApp,
            PublishAppEvent,
            CreateUser,
            MintToken,
            CreateRoom
        ],
        room_namespace
    ),
    case!(
        "apps.permission.realtime_publish",
        "An application without `realtime:publish` is refused with 403 APP_PERMISSION_DENIED and nothing is delivered",
        "\"App must have `realtime:publish` permission\"; otherwise APP_PERMISSION_DENIED (403 and the error envelope: N1)",
        [
            CreateApp,
            PublishAppEvent,
            CreateUser,
            MintToken,
            CreateRoom,
            UpdateRoom
        ],
        permission
    ),
    case!(
        "apps.event_prefix",
        "Event names outside `{appId}:<action>` are refused with 403 APP_PERMISSION_DENIED and nothing is delivered",
        "\"Event name must start with `{appId}:`\"; a wrong prefix is APP_PERMISSION_DENIED; refusing `{appId}:` alone is N16, 403 and the envelope N1",
        [
            CreateApp,
            PublishAppEvent,
            CreateUser,
            MintToken,
            CreateRoom,
            UpdateRoom
        ],
        prefix
    ),
    case!(
        "rules.app_rate.room_per_second",
        "One room accepts at most 10 application events in a second; the rest get 429 RATE_LIMIT_EXCEEDED",
        "\"Maximum 10 events per second per room\": beyond, RATE_LIMIT_EXCEEDED and not delivered; exactly 10 of a sub-second burst (any 1-second window) is N8, 429 and the envelope N1",
        [
            CreateApp,
            PublishAppEvent,
            CreateUser,
            MintToken,
            CreateRoom,
            UpdateRoom
        ],
        room_per_second
    ),
    case!(
        "rules.app_rate.app_per_minute",
        "One application publishes at most 600 events a minute; the rest get 429 RATE_LIMIT_EXCEEDED",
        "\"App events: 600/minute\": beyond, RATE_LIMIT_EXCEEDED; counting per application in any 60-second window, refused requests not counted, is N8",
        [CreateApp, PublishAppEvent, CreateRoom],
        app_per_minute
    ),
];

/// A registered application.
pub(super) struct App {
    pub id: String,
    pub token: String,
}

pub(super) async fn new_app(cx: &mut Ctx, permissions: &[&str]) -> Result<App, Failure> {
    let id = cx.unique("app_");
    let out = cx
        .act(
            Action::CreateApp,
            vars(&[("appId", json!(id)), ("permissions", json!(permissions))]),
        )
        .await?;
    let token = output_string(&out, "appToken")?;
    // The target may assign the id (it is the event prefix): use its own.
    let id = match out.get("appId") {
        Some(_) => output_string(&out, "appId")?,
        None => id,
    };
    Ok(App { id, token })
}

fn publish_vars(app: &App, room_id: &str, event: &str, data: &Value) -> Vars {
    vars(&[
        ("appId", json!(app.id)),
        ("appToken", json!(app.token)),
        ("roomId", json!(room_id)),
        ("event", json!(event)),
        ("data", data.clone()),
    ])
}

/// Publishes; the request must be accepted (it is what the case checks,
/// so a refusal fails). Returns the answer's body.
pub(super) async fn publish_ok(
    cx: &mut Ctx,
    app: &App,
    room: &Room,
    event: &str,
    data: &Value,
) -> Result<Value, Failure> {
    let (status, body) = cx
        .act_raw(
            Action::PublishAppEvent,
            publish_vars(app, &room.id, event, data),
        )
        .await?;
    cx.ensure(
        (200..300).contains(&status),
        format!("publishing `{event}` accepted (2xx)"),
        format!("HTTP {status} {body}"),
    )?;
    Ok(body)
}

/// The second argument (N6), checked non-strictly: other targets may not
/// send it, so what is missing or wrong becomes a note.
fn check_meta(cx: &mut Ctx, event: &str, args: &[Value], app: &App, room: &Room, answer: &Value) {
    let Some(meta) = args.get(1) else {
        cx.notes.push(format!(
            "`{event}`: no second argument {{eventId, appId, roomId, timestamp}} (N6)"
        ));
        return;
    };
    for e in protocol::validate::app_event_meta_errors(meta) {
        cx.notes.push(format!("`{event}` metadata {e}"));
    }
    let mut differs = |field: &str, want: Value| {
        if meta.get(field) != Some(&want) {
            cx.notes.push(format!(
                "`{event}` metadata {field} = {}, expected {want}",
                meta.get(field).unwrap_or(&Value::Null)
            ));
        }
    };
    differs("appId", json!(app.id));
    differs("roomId", json!(room.id));
    if let Some(id) = answer.get("eventId").filter(|v| v.is_string()) {
        differs("eventId", id.clone());
    }
    if check_time(cx, "metadata timestamp", &meta["timestamp"]).is_err() {
        cx.notes.push(format!(
            "`{event}` metadata timestamp {} is not a recent ISO-8601 UTC time",
            meta["timestamp"]
        ));
    }
}

/// §6: a successful publish answers with a body naming the eventId.
fn note_answer(cx: &mut Ctx, body: &Value) {
    if !body.get("eventId").is_some_and(Value::is_string) {
        cx.notes
            .push(format!("the publish answer names no eventId: {body}"));
    }
}

async fn delivered(cx: &mut Ctx) -> Result<(), Failure> {
    let app = new_app(cx, &[ev::PERMISSION_REALTIME_PUBLISH]).await?;
    let room = cx.room(Visibility::Public).await?;
    let u = cx.user("appsub").await?;
    let mut s = cx.connect(&u.token, "/").await?;
    cx.subscribe(&s, &room.id).await?;

    // An object with every JSON type, then a non-object value.
    let sent = [
        (
            format!("{}:draw_started", app.id),
            json!({
                "round": 2,
                "secondsLeft": 30,
                "ratio": 0.25,
                "label": "Spring draw ✓ \"quoted\"",
                "tags": ["a", "b"],
                "nested": { "ok": true, "none": null, "deep": [1, { "x": -7 }] }
            }),
        ),
        (format!("{}:tally", app.id), json!(["x", 1, null, false])),
    ];
    for (event, data) in &sent {
        let passed = publish_and_receive(cx, &mut s, &app, &room, event, data).await;
        if data.is_object() {
            passed?;
        } else {
            // The text shows an object; any JSON value is N6.
            cx.decided("N6", passed)?;
        }
    }
    s.disconnect().await;
    Ok(())
}

/// Publishes `data` as `event` and checks the subscriber receives it
/// exactly as sent.
async fn publish_and_receive(
    cx: &mut Ctx,
    s: &mut sioclient::Socket,
    app: &App,
    room: &Room,
    event: &str,
    data: &Value,
) -> Result<(), Failure> {
    let body = publish_ok(cx, app, room, event, data).await?;
    note_answer(cx, &body);
    let args = cx.expect_args(s, event).await?;
    let first = args.first().cloned().unwrap_or(Value::Null);
    cx.check_payload(ev::APP_EVENT, &first)?;
    cx.expect_eq(&format!("`{event}` data"), data, &first)?;
    check_meta(cx, event, &args, app, room, &body);
    Ok(())
}

async fn room_namespace(cx: &mut Ctx) -> Result<(), Failure> {
    let app = new_app(cx, &[ev::PERMISSION_REALTIME_PUBLISH]).await?;
    let room = cx.room(Visibility::Public).await?;
    let u = cx.user("appns").await?;
    let mut s = cx.connect(&u.token, &ev::room_namespace(&room.id)).await?;
    // Connecting subscribes (N5): wait for the confirmation before
    // publishing.
    namespace_subscribed(cx, &mut s, &room.id).await?;

    let event = format!("{}:countdown_started", app.id);
    let data = json!({ "round": 1, "secondsLeft": 10 });
    let body = publish_ok(cx, &app, &room, &event, &data).await?;
    let args = cx.expect_args(&mut s, &event).await?;
    let first = args.first().cloned().unwrap_or(Value::Null);
    cx.check_payload(ev::APP_EVENT, &first)?;
    cx.expect_eq(&format!("`{event}` data on /rooms/:roomId"), &data, &first)?;
    check_meta(cx, &event, &args, &app, &room, &body);
    s.disconnect().await;
    Ok(())
}

/// Fails if one of `names` is among the events read up to the sentinel.
async fn nothing_delivered(
    cx: &mut Ctx,
    s: &mut sioclient::Socket,
    room: &Room,
    names: &[String],
) -> Result<(), Failure> {
    let seen = room_sentinel(cx, s, room).await?;
    if let Some(e) = seen.iter().find(|e| names.contains(&e.name)) {
        return Err(Failure::fail(
            format!(
                "no refused event delivered before the sentinel `{}`",
                ev::ROOM_UPDATED
            ),
            format!("`{}` {}", e.name, Value::Array(e.args.clone())),
        ));
    }
    Ok(())
}

async fn permission(cx: &mut Ctx) -> Result<(), Failure> {
    let app = new_app(cx, &[]).await?;
    let room = cx.room(Visibility::Public).await?;
    let u = cx.user("appsub").await?;
    let mut s = cx.connect(&u.token, "/").await?;
    cx.subscribe(&s, &room.id).await?;

    let event = format!("{}:draw_started", app.id);
    let (status, body) = cx
        .act_raw(
            Action::PublishAppEvent,
            publish_vars(&app, &room.id, &event, &json!({ "round": 1 })),
        )
        .await?;
    check_rest_refusal(
        cx,
        "publishing without realtime:publish",
        status,
        &body,
        ErrorCode::AppPermissionDenied,
    )?;
    nothing_delivered(cx, &mut s, &room, &[event]).await?;
    s.disconnect().await;
    Ok(())
}

async fn prefix(cx: &mut Ctx) -> Result<(), Failure> {
    let app = new_app(cx, &[ev::PERMISSION_REALTIME_PUBLISH]).await?;
    let room = cx.room(Visibility::Public).await?;
    let u = cx.user("appsub").await?;
    let mut s = cx.connect(&u.token, "/").await?;
    cx.subscribe(&s, &room.id).await?;

    // Each name, and the decision its refusal rests on (none: the text).
    let names = [
        // Another application's prefix.
        (format!("x{}:draw_started", app.id), None),
        // The id followed by more characters, then the colon.
        (format!("{}x:draw_started", app.id), None),
        // The prefix with nothing after the colon: it does start with
        // `{appId}:`; refusing it is N16.
        (format!("{}:", app.id), Some("N16")),
        // No colon at all.
        (format!("{}draw_started", app.id), None),
    ];
    for (name, decision) in &names {
        let (status, body) = cx
            .act_raw(
                Action::PublishAppEvent,
                publish_vars(&app, &room.id, name, &json!({ "round": 1 })),
            )
            .await?;
        let refused = check_rest_refusal(
            cx,
            &format!("publishing `{name}` as {}", app.id),
            status,
            &body,
            ErrorCode::AppPermissionDenied,
        );
        match decision {
            Some(n) => cx.decided(n, refused)?,
            None => refused?,
        }
    }
    let seen = room_sentinel(cx, &mut s, &room).await?;
    for (name, decision) in &names {
        let delivered = match seen.iter().find(|e| &e.name == name) {
            Some(e) => Err(Failure::fail(
                format!("`{name}` refused, not delivered before the sentinel"),
                format!("`{}` {}", e.name, Value::Array(e.args.clone())),
            )),
            None => Ok(()),
        };
        match decision {
            Some(n) => cx.decided(n, delivered)?,
            None => delivered?,
        }
    }
    s.disconnect().await;
    Ok(())
}

/// One publish of a concurrent batch.
struct Shot {
    index: usize,
    status: u16,
    body: Value,
    sent: Instant,
    answered: Instant,
}

/// Publishes every `(roomId, data)` at once, each through its own driver
/// context (the case's `Ctx` runs one request at a time). Their requests
/// are not in the case's transcript; the verdict reports the answers.
async fn publish_concurrently(
    cx: &Ctx,
    app: &App,
    event: &str,
    calls: Vec<(String, Value)>,
    first_index: usize,
) -> Result<Vec<Shot>, Failure> {
    let futures = calls.into_iter().enumerate().map(|(i, (room_id, data))| {
        let mut sub = cx.fork();
        let v = publish_vars(app, &room_id, event, &data);
        async move {
            let sent = Instant::now();
            let r = sub.act_raw(Action::PublishAppEvent, v).await;
            r.map(|(status, body)| Shot {
                index: first_index + i,
                status,
                body,
                sent,
                answered: Instant::now(),
            })
        }
    });
    futures_util::future::join_all(futures)
        .await
        .into_iter()
        .collect()
}

fn summary(shots: &[Shot]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for s in shots {
        let code = s
            .body
            .pointer("/error/code")
            .and_then(Value::as_str)
            .unwrap_or("");
        *counts
            .entry(format!("{} {code}", s.status).trim().to_owned())
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n}× {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn room_per_second(cx: &mut Ctx) -> Result<(), Failure> {
    let limit = limits::APP_EVENTS_PER_ROOM_PER_SECOND as usize;
    let app = new_app(cx, &[ev::PERMISSION_REALTIME_PUBLISH]).await?;
    let u = cx.user("appsub").await?;
    let event = format!("{}:tick", app.id);
    // The limit shows only if the burst fits in one second; a busy machine
    // may stretch one, so up to three bursts, each into a fresh room
    // watched by a fresh connection (nothing of an earlier burst reaches it).
    let mut attempt = 1;
    let (room, mut s, shots) = loop {
        let room = cx.room(Visibility::Public).await?;
        let s = cx.connect(&u.token, "/").await?;
        cx.subscribe(&s, &room.id).await?;
        let calls = (0..=limit)
            .map(|i| (room.id.clone(), json!({ "seq": i })))
            .collect();
        let shots = publish_concurrently(cx, &app, &event, calls, 0).await?;
        let start = shots.iter().map(|s| s.sent).min().expect("11 shots");
        let end = shots.iter().map(|s| s.answered).max().expect("11 shots");
        let took = end.duration_since(start);
        if took < Duration::from_secs(1) {
            break (room, s, shots);
        }
        s.disconnect().await;
        if attempt == 3 {
            return Err(Failure::Error(format!(
                "could not publish {} events within one second in 3 tries (the last took {took:?}): \
                 the limit cannot be observed",
                limit + 1
            )));
        }
        attempt += 1;
    };
    let accepted: Vec<&Shot> = shots
        .iter()
        .filter(|s| (200..300).contains(&s.status))
        .collect();
    // A fixed window may open inside the burst; at most 10 per second
    // holds for any window only under N8's sliding window.
    let exact = cx.ensure(
        accepted.len() == limit,
        format!(
            "{limit} of {} events published into one room within one second accepted, the rest 429",
            limit + 1
        ),
        summary(&shots),
    );
    cx.decided("N8", exact)?;
    for shot in shots.iter().filter(|s| !(200..300).contains(&s.status)) {
        check_rest_refusal(
            cx,
            &format!("event {} of {}", shot.index + 1, limit + 1),
            shot.status,
            &shot.body,
            ErrorCode::RateLimitExceeded,
        )?;
    }

    // Exactly the accepted events are delivered, each once.
    let seen = room_sentinel(cx, &mut s, &room).await?;
    let mut got: Vec<Value> = Vec::new();
    for e in seen.iter().filter(|e| e.name == event) {
        let data = first_arg(e);
        cx.check_payload(ev::APP_EVENT, &data)?;
        got.push(data["seq"].clone());
    }
    let mut want: Vec<Value> = accepted.iter().map(|s| json!(s.index)).collect();
    let key = |v: &Value| v.as_u64().unwrap_or(u64::MAX);
    got.sort_by_key(key);
    want.sort_by_key(key);
    cx.expect_eq(
        &format!("seq of the delivered `{event}` events"),
        &json!(want),
        &json!(got),
    )?;
    s.disconnect().await;
    Ok(())
}

async fn app_per_minute(cx: &mut Ctx) -> Result<(), Failure> {
    let per_room = limits::APP_EVENTS_PER_ROOM_PER_SECOND as usize;
    let limit = limits::APP_EVENTS_PER_APP_PER_MINUTE as usize;
    // Enough rooms that no room sees more than its own limit.
    let rooms_n = limit / per_room + 1;
    let total = rooms_n * per_room;
    let app = new_app(cx, &[ev::PERMISSION_REALTIME_PUBLISH]).await?;
    let mut rooms = Vec::with_capacity(rooms_n);
    for _ in 0..rooms_n {
        rooms.push(cx.room(Visibility::Public).await?.id);
    }
    let event = format!("{}:tick", app.id);
    let started = Instant::now();
    // Round r publishes one event into every room at once.
    let mut shots: Vec<Shot> = Vec::with_capacity(total);
    for round in 0..per_room {
        let calls = rooms
            .iter()
            .map(|r| (r.clone(), json!({ "round": round })))
            .collect();
        let batch = publish_concurrently(cx, &app, &event, calls, round * rooms_n).await?;
        shots.extend(batch);
    }
    let took = started.elapsed();
    if took >= Duration::from_secs(50) {
        return Err(Failure::Error(format!(
            "publishing {total} events took {took:?}: too close to the 60-second window to judge"
        )));
    }
    let accepted = shots
        .iter()
        .filter(|s| (200..300).contains(&s.status))
        .count();
    // The text lists 600/minute per connection; per application, in any
    // 60-second window, is N8.
    let exact = cx.ensure(
        accepted == limit,
        format!("exactly {limit} of {total} events of one application accepted within a minute"),
        format!("{accepted} accepted: {}", summary(&shots)),
    );
    cx.decided("N8", exact)?;
    // Every round but the last fits in the budget, so it is all accepted.
    let early_refusal = shots
        .iter()
        .find(|s| s.index < total - rooms_n && !(200..300).contains(&s.status));
    if let Some(shot) = early_refusal {
        return Err(Failure::per(
            Failure::fail(
                format!(
                    "the first {} events (under the limit) accepted",
                    total - rooms_n
                ),
                format!(
                    "event {} answered HTTP {} {}",
                    shot.index + 1,
                    shot.status,
                    shot.body
                ),
            ),
            "N8",
        ));
    }
    for shot in shots.iter().filter(|s| !(200..300).contains(&s.status)) {
        check_rest_refusal(
            cx,
            &format!("event {} of {total}", shot.index + 1),
            shot.status,
            &shot.body,
            ErrorCode::RateLimitExceeded,
        )?;
    }
    Ok(())
}
