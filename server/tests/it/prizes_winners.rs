//! Prizes and the winner draw (protocol notes N12): `prize:created`,
//! `prize:updated`, `prize:deleted`, `winner:selected` (+ the winner's
//! `notification:received`), `winner:removed`, the 409 refusals, the
//! moderator's ineligibility and a statistical sanity check of the draw.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testing::*;
use sioclient::Socket;

const PRIZE_KEYS: [&str; 7] = [
    "id",
    "name",
    "description",
    "imageUrl",
    "quantity",
    "quantityRemaining",
    "createdAt",
];

/// The wire form of a prize from the REST form (which also has `roomId`).
fn wire_prize(rest: &Value) -> Value {
    let mut p = serde_json::Map::new();
    for k in PRIZE_KEYS {
        p.insert(k.to_owned(), rest[k].clone());
    }
    Value::Object(p)
}

fn wire_user(u: &TestUser) -> Value {
    json!({"id": u.id, "name": u.name})
}

/// A non-empty string field.
fn text(v: &Value, key: &str) -> String {
    let s = v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"));
    assert!(!s.is_empty(), "{key} is empty in {v}");
    s.to_owned()
}

async fn create_prize(srv: &TestServer, room: &str, name: &str, quantity: u32) -> Value {
    let body = json!({
        "name": name,
        "description": format!("{name}, described"),
        "imageUrl": format!("https://img.example/{}.png", name.replace(' ', "-")),
        "quantity": quantity,
    });
    let (status, prize) = srv
        .admin_call(
            Method::POST,
            &format!("/api/rooms/{room}/prizes"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{prize}");
    assert_eq!(prize["roomId"], json!(room));
    for k in ["name", "description", "imageUrl", "quantity"] {
        assert_eq!(prize[k], body[k], "{k} of {prize}");
    }
    assert_eq!(prize["quantityRemaining"], json!(quantity));
    text(&prize, "id");
    text(&prize, "createdAt");
    prize
}

async fn draw(srv: &TestServer, room: &str, prize: &str, count: u32) -> (StatusCode, Value) {
    srv.admin_call(
        Method::POST,
        &format!("/api/rooms/{room}/prizes/{prize}/draw"),
        Some(json!({"count": count})),
    )
    .await
}

/// Waits for the next event named `name` (skipping others) and checks the
/// envelope: schema, `roomId`, a non-empty `eventId`.
async fn room_event(socket: &mut Socket, name: &str, room: &str) -> Value {
    let ev = next_of(socket, &[name]).await;
    let payload = ev.args.into_iter().next().expect("an argument");
    assert_payload(name, &payload);
    assert_eq!(payload["roomId"], json!(room), "{name}: {payload}");
    text(&payload, "eventId");
    payload
}

/// The next of `winner:selected` / `prize:updated`, which must be `name`.
async fn draw_event(socket: &mut Socket, name: &str, room: &str) -> Value {
    let ev = next_of(
        socket,
        &["winner:selected", "prize:updated", "winner:removed"],
    )
    .await;
    assert_eq!(
        ev.name, name,
        "events out of order: got {} {:?}",
        ev.name, ev.args
    );
    let payload = ev.args.into_iter().next().expect("an argument");
    assert_payload(name, &payload);
    assert_eq!(payload["roomId"], json!(room), "{name}: {payload}");
    text(&payload, "eventId");
    payload
}

fn assert_prize_updated(ev: &Value, prize_rest: &Value, changes: Value) {
    assert_exact_keys(
        ev,
        &[
            "roomId",
            "prizeId",
            "changes",
            "prize",
            "timestamp",
            "eventId",
        ],
    );
    assert_eq!(ev["prizeId"], prize_rest["id"]);
    assert_eq!(ev["changes"], changes, "prize:updated {ev}");
    assert_eq!(ev["prize"], wire_prize(prize_rest), "prize:updated {ev}");
}

#[tokio::test]
async fn prize_created_updated_deleted_reach_both_namespaces() {
    let srv = TestServer::start().await;
    let room = srv.room("Prize room", "public").await;
    let viewer = srv.user("Viewer").await;
    let mut root = srv.subscribed(&viewer.token, &room).await;
    let mut ns = srv.connect(&viewer.token, &format!("/rooms/{room}")).await;
    next_event(&mut ns, "room:subscribed").await;

    // Created: the full prize.
    let prize = create_prize(&srv, &room, "Gold Cup", 3).await;
    let pid = prize["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for s in [&mut root, &mut ns] {
        let ev = room_event(s, "prize:created", &room).await;
        assert_exact_keys(&ev, &["roomId", "prize", "timestamp", "eventId"]);
        assert_exact_keys(&ev["prize"], &PRIZE_KEYS);
        assert_eq!(
            ev["prize"],
            json!({
                "id": pid,
                "name": "Gold Cup",
                "description": "Gold Cup, described",
                "imageUrl": "https://img.example/Gold-Cup.png",
                "quantity": 3,
                "quantityRemaining": 3,
                "createdAt": prize["createdAt"],
            })
        );
        ids.push(ev["eventId"].clone());
    }
    // One event, one id, whichever namespace carried it.
    assert_eq!(ids[0], ids[1]);

    // Updated: the changed fields (a new quantity moves quantityRemaining
    // too) and the whole prize after.
    let updated = srv
        .patch(
            &format!("/api/rooms/{room}/prizes/{pid}"),
            json!({"name": "Silver Cup", "quantity": 5}),
        )
        .await;
    assert_eq!(updated["name"], json!("Silver Cup"));
    assert_eq!(updated["quantity"], json!(5));
    assert_eq!(updated["quantityRemaining"], json!(5));
    assert_eq!(updated["createdAt"], prize["createdAt"]);
    for s in [&mut root, &mut ns] {
        let ev = room_event(s, "prize:updated", &room).await;
        assert_prize_updated(
            &ev,
            &updated,
            json!({"name": "Silver Cup", "quantity": 5, "quantityRemaining": 5}),
        );
        assert_ne!(ev["eventId"], ids[0], "event ids are unique");
        assert_eq!(ev["prize"]["description"], json!("Gold Cup, described"));
    }

    // Deleted.
    let (status, body) = srv
        .admin_call(
            Method::DELETE,
            &format!("/api/rooms/{room}/prizes/{pid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for s in [&mut root, &mut ns] {
        let ev = room_event(s, "prize:deleted", &room).await;
        assert_exact_keys(&ev, &["roomId", "prizeId", "timestamp", "eventId"]);
        assert_eq!(ev["prizeId"], json!(pid));
    }
    let prizes = srv
        .admin(Method::GET, &format!("/api/rooms/{room}/prizes"), None)
        .await;
    assert_eq!(prizes, json!([]));
    srv.stop().await;
}

/// What the test knows about one drawn winner.
struct Won {
    winner_id: String,
    participant: usize,
}

/// Checks a draw's REST answer and its events on the observers and on the
/// users' `/` sockets; returns the winners in draw order.
#[allow(clippy::too_many_arguments)]
async fn check_draw(
    srv: &TestServer,
    room: &str,
    body: &Value,
    prize_before: &Value,
    players: &[(TestUser, String)],
    user_sockets: &mut [Socket],
    observers: &mut [&mut Socket],
) -> (Vec<Won>, Value) {
    let prize_id = prize_before["id"].as_str().unwrap();
    let winners = body["winners"].as_array().expect("winners array").clone();
    let after = body["prize"].clone();
    let n = winners.len() as u64;
    let before_remaining = prize_before["quantityRemaining"].as_u64().unwrap();
    assert_eq!(after["quantityRemaining"], json!(before_remaining - n));
    assert_eq!(after["quantity"], prize_before["quantity"]);

    let mut won = Vec::new();
    for w in &winners {
        let pid = w["participantId"].as_str().expect("participantId");
        let index = players
            .iter()
            .position(|(_, p)| p == pid)
            .unwrap_or_else(|| panic!("winner {w} is not one of the room's participants"));
        let (user, _) = &players[index];
        assert_exact_keys(
            w,
            &[
                "id",
                "participantId",
                "prizeId",
                "participant",
                "prize",
                "createdAt",
            ],
        );
        let expected = json!({
            "id": text(w, "id"),
            "participantId": pid,
            "prizeId": prize_id,
            "participant": {"id": pid, "user": wire_user(user)},
            "prize": {
                "id": prize_id,
                "name": prize_before["name"],
                "imageUrl": prize_before["imageUrl"],
            },
            "createdAt": text(w, "createdAt"),
        });
        assert_eq!(w, &expected);
        assert!(
            won.iter().all(|x: &Won| x.participant != index),
            "one participant drawn twice: {winners:?}"
        );
        won.push(Won {
            winner_id: w["id"].as_str().unwrap().to_owned(),
            participant: index,
        });
    }

    // Every room listener: the winners in draw order, then prize:updated.
    for obs in observers.iter_mut() {
        for w in &winners {
            let ev = draw_event(obs, "winner:selected", room).await;
            assert_exact_keys(&ev, &["roomId", "winner", "timestamp", "eventId"]);
            assert_eq!(&ev["winner"], w);
        }
        let ev = draw_event(obs, "prize:updated", room).await;
        assert_prize_updated(
            &ev,
            &after,
            json!({"quantityRemaining": before_remaining - n}),
        );
    }

    // Each winning user's `/` socket: notification:received, also listed
    // over REST.
    for w in &won {
        let (user, _) = &players[w.participant];
        let socket = &mut user_sockets[w.participant];
        let n = next_event(socket, "notification:received").await;
        assert_payload("notification:received", &n);
        assert_exact_keys(
            &n,
            &[
                "id",
                "type",
                "title",
                "message",
                "data",
                "read",
                "createdAt",
                "timestamp",
                "eventId",
            ],
        );
        assert_eq!(n["type"], json!("winner_selected"));
        text(&n, "title");
        text(&n, "message");
        text(&n, "createdAt");
        assert_eq!(
            n["data"],
            json!({"roomId": room, "winnerId": w.winner_id, "prizeId": prize_id})
        );
        assert_eq!(n["read"], json!(false));
        let (status, list) = srv
            .call(
                Method::GET,
                &format!("/api/users/{}/notifications", user.id),
                Some(&user.token),
                None,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let listed = list
            .as_array()
            .expect("a list")
            .iter()
            .find(|x| x["id"] == n["id"])
            .unwrap_or_else(|| panic!("notification {} not listed in {list}", n["id"]));
        assert_eq!(listed["type"], json!("winner_selected"));
        assert_eq!(listed["data"], n["data"]);
        assert_eq!(listed["read"], json!(false));
        assert_eq!(listed["createdAt"], n["createdAt"]);
    }
    (won, after)
}

#[tokio::test]
async fn draw_selects_participants_only_and_never_oversells() {
    let srv = TestServer::start().await;
    let room = srv.room("Draw room", "public").await;
    let mut players = Vec::new();
    for name in ["Ann", "Bob", "Cid"] {
        let u = srv.user(name).await;
        let p = srv.join(&room, &u.id, "participant").await;
        players.push((u, p));
    }
    let moderator = srv.user("Mod").await;
    srv.join(&room, &moderator.id, "moderator").await;
    let outsider = srv.user("Outsider").await;

    // Room listeners: the moderator on `/` (subscribed), an outsider on the
    // room namespace. Each participant has a `/` socket, not subscribed.
    let mut mod_root = srv.subscribed(&moderator.token, &room).await;
    let mut out_ns = srv
        .connect(&outsider.token, &format!("/rooms/{room}"))
        .await;
    next_event(&mut out_ns, "room:subscribed").await;
    let mut user_sockets = Vec::new();
    for (u, _) in &players {
        user_sockets.push(srv.connect(&u.token, "/").await);
    }

    let prize_a = create_prize(&srv, &room, "Laptop", 3).await;
    let pa = prize_a["id"].as_str().unwrap().to_owned();
    room_event(&mut mod_root, "prize:created", &room).await;
    room_event(&mut out_ns, "prize:created", &room).await;

    // 1. Two of three units to two of the three participants.
    let (status, body) = draw(&srv, &room, &pa, 2).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["winners"].as_array().map(Vec::len), Some(2), "{body}");
    let (first, prize_a) = check_draw(
        &srv,
        &room,
        &body,
        &prize_a,
        &players,
        &mut user_sockets,
        &mut [&mut mod_root, &mut out_ns],
    )
    .await;
    assert_eq!(prize_a["quantityRemaining"], json!(1));
    let loser = (0..3)
        .find(|i| first.iter().all(|w| w.participant != *i))
        .expect("one participant left");
    assert_none_of(&mut user_sockets[loser], &["notification:received"]).await;

    // 2. More than is left: refused whole, nothing changes, no event.
    let (status, body) = draw(&srv, &room, &pa, 2).await;
    assert_rest_error(status, &body, StatusCode::CONFLICT, "CONFLICT");
    assert_none_of(&mut mod_root, &["winner:selected", "prize:updated"]).await;

    // 3. The last unit: the only eligible participant wins.
    let (status, body) = draw(&srv, &room, &pa, 1).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (third, prize_a) = check_draw(
        &srv,
        &room,
        &body,
        &prize_a,
        &players,
        &mut user_sockets,
        &mut [&mut mod_root, &mut out_ns],
    )
    .await;
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].participant, loser);
    assert_eq!(prize_a["quantityRemaining"], json!(0));

    // Nothing left: never below 0.
    let (status, body) = draw(&srv, &room, &pa, 1).await;
    assert_rest_error(status, &body, StatusCode::CONFLICT, "CONFLICT");

    // 4. A new prize, but every participant has won: the moderator is not
    // eligible, so the draw is refused.
    let prize_b = create_prize(&srv, &room, "Phone", 2).await;
    let pb = prize_b["id"].as_str().unwrap().to_owned();
    room_event(&mut mod_root, "prize:created", &room).await;
    room_event(&mut out_ns, "prize:created", &room).await;
    let (status, body) = draw(&srv, &room, &pb, 1).await;
    assert_rest_error(status, &body, StatusCode::CONFLICT, "CONFLICT");
    assert_none_of(&mut out_ns, &["winner:selected", "prize:updated"]).await;

    let prizes = srv
        .admin(Method::GET, &format!("/api/rooms/{room}/prizes"), None)
        .await;
    let remaining: Vec<&Value> = prizes
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["quantityRemaining"])
        .collect();
    assert_eq!(remaining, [&json!(0), &json!(2)], "{prizes}");

    // 5. Removing a winner gives the unit back.
    let removed = &first[0];
    let (status, body) = srv
        .admin_call(
            Method::DELETE,
            &format!("/api/rooms/{room}/winners/{}", removed.winner_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let mut prize_a_back = prize_a.clone();
    prize_a_back["quantityRemaining"] = json!(1);
    for obs in [&mut mod_root, &mut out_ns] {
        let ev = draw_event(obs, "winner:removed", &room).await;
        assert_exact_keys(
            &ev,
            &[
                "roomId",
                "winnerId",
                "participantId",
                "prizeId",
                "timestamp",
                "eventId",
            ],
        );
        assert_eq!(ev["winnerId"], json!(removed.winner_id));
        assert_eq!(ev["participantId"], json!(players[removed.participant].1));
        assert_eq!(ev["prizeId"], json!(pa));
        let ev = draw_event(obs, "prize:updated", &room).await;
        assert_prize_updated(&ev, &prize_a_back, json!({"quantityRemaining": 1}));
    }

    // 6. That participant is eligible again, and the only one: prize B
    // goes to them, never to the moderator.
    let (status, body) = draw(&srv, &room, &pb, 1).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (sixth, _) = check_draw(
        &srv,
        &room,
        &body,
        &prize_b,
        &players,
        &mut user_sockets,
        &mut [&mut mod_root, &mut out_ns],
    )
    .await;
    assert_eq!(sixth[0].participant, removed.participant);
    let (status, body) = draw(&srv, &room, &pb, 1).await;
    assert_rest_error(status, &body, StatusCode::CONFLICT, "CONFLICT");

    // The moderator never got a winner notification.
    assert_none_of(&mut mod_root, &["notification:received", "winner:selected"]).await;
    srv.stop().await;
}

/// 30 independent one-unit draws among the same three users (joined in the
/// same order everywhere): each must win at least once. With a uniform
/// draw, P(some user never wins) <= 3 * (2/3)^30 ~ 1.6e-5.
#[tokio::test]
async fn draw_gives_every_participant_a_chance() {
    const ROOMS: usize = 30;
    let srv = TestServer::start().await;
    let mut users = Vec::new();
    for name in ["One", "Two", "Three"] {
        users.push(srv.user(name).await);
    }
    let users = &users;
    let server = &srv;
    let one_draw = |i: usize| async move {
        let room = server.room(&format!("Lottery {i}"), "public").await;
        let mut participants = Vec::new();
        for u in users {
            participants.push(server.join(&room, &u.id, "participant").await);
        }
        let prize = create_prize(server, &room, "Ticket", 1).await;
        let (status, body) = draw(server, &room, prize["id"].as_str().unwrap(), 1).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let w = &body["winners"][0];
        let index = participants
            .iter()
            .position(|p| w["participantId"] == json!(p))
            .unwrap_or_else(|| panic!("winner {w} is not a participant"));
        assert_eq!(w["participant"]["user"], wire_user(&users[index]));
        index
    };
    let mut wins = [0usize; 3];
    for batch in (0..ROOMS).collect::<Vec<_>>().chunks(10) {
        for index in futures_util::future::join_all(batch.iter().map(|&i| one_draw(i))).await {
            wins[index] += 1;
        }
    }
    assert_eq!(wins.iter().sum::<usize>(), ROOMS);
    assert!(
        wins.iter().all(|&n| n >= 1),
        "someone never won in {ROOMS} draws: {wins:?}"
    );
    srv.stop().await;
}
