//! Several nodes as one deployment (`--redis`, shared PostgreSQL): every
//! behaviour that crosses nodes. Each test starts its own Redis
//! (`redis-server`, stopped through its handle) and nodes in-process on
//! 127.0.0.1:0; the PostgreSQL cluster is shared by the tests running at the
//! same time (one database each) and stopped when the last one ends. Without
//! `redis-server` or PostgreSQL the tests fail, saying what to install.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::Config;
use server::testing::postgres::PgHarness;
use server::testing::redis::RedisServer;
use server::testing::*;
use sioclient::{Incoming, Socket};

use crate::server_bin;

/// How long a test waits for something that takes a heartbeat or a
/// reconnection (a reaped node, a restarted Redis).
const SLOW_WAIT: Duration = Duration::from_secs(15);

/// The PostgreSQL cluster of the tests running now.
fn postgres() -> Arc<PgHarness> {
    static SHARED: Mutex<Weak<PgHarness>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(pg) = shared.upgrade() {
        return pg;
    }
    let pg = Arc::new(tokio::task::block_in_place(PgHarness::start));
    *shared = Arc::downgrade(&pg);
    pg
}

/// Redis, a database, and nodes that share them.
pub(crate) struct Deployment {
    pub(crate) redis: RedisServer,
    pub(crate) nodes: Vec<TestServer>,
    database_url: String,
    // Dropped last: the database server outlives the nodes' pools.
    _pg: Arc<PgHarness>,
}

impl Deployment {
    pub(crate) async fn start(name: &str, nodes: usize) -> Deployment {
        Self::start_with(name, nodes, |_| {}).await
    }

    /// `nodes` nodes on a fresh database `name`, each config changed by
    /// `tweak`.
    async fn start_with(name: &str, nodes: usize, tweak: impl Fn(&mut Config)) -> Deployment {
        let pg = postgres();
        let database_url = pg.fresh_database(name).await;
        let redis = tokio::task::block_in_place(RedisServer::start);
        let mut d = Deployment {
            redis,
            nodes: Vec::new(),
            database_url,
            _pg: pg,
        };
        for _ in 0..nodes {
            let node = d.node(&tweak).await;
            d.nodes.push(node);
        }
        d
    }

    /// One more node of this deployment.
    async fn node(&self, tweak: &impl Fn(&mut Config)) -> TestServer {
        let db = self.database_url.clone();
        let redis = self.redis.url();
        TestServer::start_with(|c| {
            c.database_url = db;
            c.redis_url = Some(redis);
            tweak(c);
        })
        .await
    }

    pub(crate) async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
    }
}

/// The events named `names` that `socket` receives within `window` (others
/// are dropped), in order; fails on a disconnection.
async fn collect(socket: &mut Socket, names: &[&str], window: Duration) -> Vec<(String, Value)> {
    let deadline = tokio::time::Instant::now() + window;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Incoming::Event(ev))) if names.contains(&ev.name.as_str()) => {
                seen.push((ev.name, ev.args.into_iter().next().unwrap_or(Value::Null)))
            }
            Ok(Some(Incoming::Disconnected { reason })) => {
                panic!("disconnected ({reason}) while collecting {names:?}")
            }
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return seen,
        }
    }
}

/// The next presence event about `user_id` (others are dropped).
async fn presence_of(socket: &mut Socket, user_id: &str, within: Duration) -> String {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Incoming::Event(ev)))
                if ev.name.starts_with("presence:user_")
                    && ev
                        .args
                        .first()
                        .is_some_and(|a| a["userId"] == json!(user_id)) =>
            {
                assert_payload(&ev.name, &ev.args[0]);
                return ev.name;
            }
            Ok(Some(Incoming::Disconnected { reason })) => {
                panic!("disconnected ({reason}) while waiting for presence of {user_id}")
            }
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended while waiting for presence of {user_id}"),
            Err(_) => panic!("no presence event about {user_id} within {within:?}"),
        }
    }
}

/// Asserts that no presence event about `user_id` arrives within [`QUIET`].
async fn no_presence_of(socket: &mut Socket, user_id: &str) {
    for (name, payload) in collect(
        socket,
        &["presence:user_online", "presence:user_offline"],
        QUIET,
    )
    .await
    {
        assert_ne!(
            payload["userId"],
            json!(user_id),
            "unexpected {name}: {payload}"
        );
    }
}

async fn online_ids(socket: &Socket, room: &str) -> Vec<String> {
    let ack = ack(socket, "presence:get_online", json!({"roomId": room})).await;
    assert_eq!(ack["success"], json!(true), "{ack}");
    assert_ack_schema("presence:get_online", &ack);
    let mut ids: Vec<String> = ack["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn publish_app_event(
    node: &TestServer,
    app: &str,
    token: &str,
    room: &str,
    n: u64,
) -> (StatusCode, Value) {
    node.call(
        Method::POST,
        &format!("/api/rooms/{room}/events"),
        Some(token),
        Some(app),
        Some(json!({"event": format!("{app}:tick"), "data": {"n": n}})),
    )
    .await
}

/// Polls `GET /healthz` until it answers 200 (bounded by [`SLOW_WAIT`]).
async fn healthy(node: &TestServer) -> Value {
    let deadline = Instant::now() + SLOW_WAIT;
    loop {
        let (status, body) = node.call(Method::GET, "/healthz", None, None, None).await;
        if status == StatusCode::OK {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{} not healthy after {SLOW_WAIT:?}: {status} {body}",
            node.url
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_reaches_subscribers_on_every_node() {
    let d = Deployment::start_with("cluster_broadcast", 3, |c| {
        c.app_events_per_room_per_second = 1000;
    })
    .await;
    let (a, b, c) = (&d.nodes[0], &d.nodes[1], &d.nodes[2]);
    for node in &d.nodes {
        let health = healthy(node).await;
        assert!(health["node"].is_string(), "{health}");
    }
    let room = a.room("Lottery", "public").await;
    let u1 = a.user("on A, /").await;
    let u2 = a.user("on A, room namespace").await;
    let u3 = c.user("on C, /").await;
    let mut s1 = a.subscribed(&u1.token, &room).await;
    // Nobody connects to the room's namespace on B: B's broadcasts to it go
    // out through its emitter.
    let mut s2 = a.connect(&u2.token, &format!("/rooms/{room}")).await;
    next_event(&mut s2, "room:subscribed").await;
    let mut s3 = c.subscribed(&u3.token, &room).await;

    // A REST call on B: the same payload on every node and namespace.
    b.patch(&format!("/api/rooms/{room}"), json!({"status": "paused"}))
        .await;
    let mut payloads = Vec::new();
    for s in [&mut s1, &mut s2, &mut s3] {
        let changed = next_event(s, "room:status_changed").await;
        assert_payload("room:status_changed", &changed);
        let updated = next_event(s, "room:updated").await;
        payloads.push((changed, updated));
    }
    assert_eq!(payloads[0], payloads[1], "A's two namespaces differ");
    assert_eq!(payloads[0], payloads[2], "A and C differ");
    assert_eq!(payloads[0].0["newStatus"], json!("paused"));

    // Many events from one node arrive in order on the others.
    let app_token = a.app("cluster", &["realtime:publish"]).await;
    for n in 0..30 {
        let (status, body) = publish_app_event(b, "cluster", &app_token, &room, n).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    for s in [&mut s1, &mut s2, &mut s3] {
        let mut got = Vec::new();
        while got.len() < 30 {
            let ev = next_of(s, &["cluster:tick"]).await;
            got.push(ev.args[0]["n"].as_u64().unwrap());
        }
        assert_eq!(got, (0..30).collect::<Vec<_>>());
    }

    // A notification created on C reaches the user's socket on A.
    c.post(
        &format!("/api/users/{}/notifications", u1.id),
        json!({"type": "info", "title": "Hi", "message": "from C"}),
    )
    .await;
    let n = next_event(&mut s1, "notification:received").await;
    assert_payload("notification:received", &n);
    assert_eq!(n["message"], json!("from C"));

    // Deleting the room on B: `room:deleted` everywhere, then the room
    // namespace's sockets (on A) are disconnected.
    b.delete(&format!("/api/rooms/{room}")).await;
    for s in [&mut s1, &mut s3] {
        next_event(s, "room:deleted").await;
    }
    next_event(&mut s2, "room:deleted").await;
    disconnected(&mut s2).await;
    assert!(s1.is_connected() && s3.is_connected());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_a_user_once_across_nodes() {
    let d = Deployment::start("cluster_presence", 3).await;
    let (a, b, c) = (&d.nodes[0], &d.nodes[1], &d.nodes[2]);
    let room = a.room("Quiz night", "public").await;
    let oa = a.user("observer A").await;
    let ob = b.user("observer B").await;
    let user = c.user("two tabs").await;
    let mut watch_a = a.subscribed(&oa.token, &room).await;
    let mut watch_b = b.subscribed(&ob.token, &room).await;
    assert_eq!(
        presence_of(&mut watch_a, &ob.id, WAIT).await,
        "presence:user_online"
    );

    // First tab on A: one `presence:user_online`, on both nodes.
    let mut tab_a = a.subscribed(&user.token, &room).await;
    for w in [&mut watch_a, &mut watch_b] {
        assert_eq!(presence_of(w, &user.id, WAIT).await, "presence:user_online");
    }
    // Second tab on B, on the room namespace: nothing new.
    let mut tab_b = b.connect(&user.token, &format!("/rooms/{room}")).await;
    next_event(&mut tab_b, "room:subscribed").await;
    no_presence_of(&mut watch_a, &user.id).await;
    no_presence_of(&mut watch_b, &user.id).await;

    // `presence:get_online` on a third node lists the users of all nodes,
    // each once, with the time their first socket subscribed.
    let probe = c.connect(&oa.token, "/").await;
    let mut want = vec![oa.id.clone(), ob.id.clone(), user.id.clone()];
    want.sort();
    assert_eq!(online_ids(&probe, &room).await, want);
    let list = ack(&probe, "presence:get_online", json!({"roomId": room})).await;
    assert_eq!(list["count"], json!(3));
    let entry = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == json!(user.id))
        .unwrap()
        .clone();
    assert_eq!(entry["name"], json!("two tabs"));

    // Closing the first tab (on A): still online.
    tab_a.disconnect().await;
    disconnected(&mut tab_a).await;
    no_presence_of(&mut watch_a, &user.id).await;
    no_presence_of(&mut watch_b, &user.id).await;
    assert!(online_ids(&probe, &room).await.contains(&user.id));

    // The last tab (on B) unsubscribes: one `presence:user_offline`.
    let left = ack(&tab_b, "room:unsubscribe", json!({"roomId": room})).await;
    assert_eq!(left["success"], json!(true), "{left}");
    for w in [&mut watch_a, &mut watch_b] {
        assert_eq!(
            presence_of(w, &user.id, WAIT).await,
            "presence:user_offline"
        );
        no_presence_of(w, &user.id).await;
    }
    assert!(!online_ids(&probe, &room).await.contains(&user.id));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_event_limits_hold_across_nodes() {
    const PER_APP: usize = 45;
    let d = Deployment::start_with("cluster_limits", 2, |c| {
        c.app_events_per_app_per_minute = PER_APP as u32;
    })
    .await;
    let (a, b) = (&d.nodes[0], &d.nodes[1]);
    let token = a.app("limited", &["realtime:publish"]).await;
    let accepted = |results: &[(StatusCode, Value)]| {
        results
            .iter()
            .filter(|(s, _)| *s == StatusCode::ACCEPTED)
            .count()
    };
    // Every event the app got accepted, for the per-app limit.
    let mut used = 0;

    // 10 per room in any second, counted over both nodes: 20 requests at
    // once, half on each node, and exactly 10 are accepted. (A burst that
    // took a second or more proves nothing: it is tried again on a fresh
    // room.)
    let mut room = String::new();
    for attempt in 1.. {
        room = a.room(&format!("Busy {attempt}"), "public").await;
        let started = Instant::now();
        let results = join_all((0..20).map(|n| {
            let node = if n % 2 == 0 { a } else { b };
            publish_app_event(node, "limited", &token, &room, n)
        }))
        .await;
        let burst = started.elapsed();
        used += accepted(&results);
        if burst >= Duration::from_millis(900) {
            assert!(attempt < 3, "every burst took a second or more ({burst:?})");
            continue;
        }
        assert_eq!(accepted(&results), 10, "{results:?}");
        for (status, body) in results.iter().filter(|(s, _)| *s != StatusCode::ACCEPTED) {
            assert_rest_error(
                *status,
                body,
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMIT_EXCEEDED",
            );
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("per room"), "{body}");
        }
        break;
    }
    // A second later the window has moved on, on either node.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = publish_app_event(b, "limited", &token, &room, 100).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    used += 1;

    // The application's limit per minute, over both nodes and two rooms
    // (paced to stay under the per-room limit): accepted until exactly
    // PER_APP in all, then refused by both nodes.
    let other = b.room("Other", "public").await;
    for n in 0.. {
        let (node, r) = if n % 2 == 0 { (a, &other) } else { (b, &room) };
        let (status, body) = publish_app_event(node, "limited", &token, r, n).await;
        if status != StatusCode::ACCEPTED {
            assert_rest_error(
                status,
                &body,
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMIT_EXCEEDED",
            );
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("per app"), "after {used}: {body}");
            break;
        }
        used += 1;
        assert!(used <= PER_APP, "more than {PER_APP} accepted in a minute");
        if used % 8 == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    assert_eq!(used, PER_APP, "refused before the app's limit");
    for node in [a, b] {
        let (status, body) = publish_app_event(node, "limited", &token, &other, 99).await;
        assert_rest_error(
            status,
            &body,
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMIT_EXCEEDED",
        );
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_removals_reach_sockets_on_other_nodes() {
    let d = Deployment::start("cluster_revoke", 3).await;
    let (a, b, c) = (&d.nodes[0], &d.nodes[1], &d.nodes[2]);
    let room = a.room("Public", "public").await;

    // One token, sockets on A and B; revoked on C.
    let u = a.user("revoked").await;
    let mut on_a = a.connect(&u.token, "/").await;
    let mut on_b = b.connect(&u.token, &format!("/rooms/{room}")).await;
    next_event(&mut on_b, "room:subscribed").await;
    let (status, res) = c
        .admin_call(
            Method::POST,
            "/api/auth/revoke",
            Some(json!({"tokenId": u.token_id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{res}");
    assert_eq!(res["disconnected"], json!(2), "{res}");
    assert_eq!(
        res["nodes"],
        json!({"expected": 3, "confirmed": 3, "complete": true})
    );
    disconnected(&mut on_a).await;
    disconnected(&mut on_b).await;
    for node in [a, b, c] {
        assert_eq!(
            node.connect_refused(&u.token, "/").await,
            "Authentication failed: Token revoked"
        );
    }

    // A user deleted on B loses their socket on A.
    let v = a.user("deleted").await;
    let mut v_on_a = a.subscribed(&v.token, &room).await;
    b.delete(&format!("/api/users/{}", v.id)).await;
    disconnected(&mut v_on_a).await;

    // Removed from a private room on C: the subscriptions on A end, and
    // presence says so once.
    let private = a.room("Private", "private").await;
    let w = a.user("member").await;
    let x = a.user("watcher").await;
    let participant = a.join(&private, &w.id, "participant").await;
    a.join(&private, &x.id, "participant").await;
    let mut x_on_b = b.subscribed(&x.token, &private).await;
    let mut w_on_a = a.subscribed(&w.token, &private).await;
    assert_eq!(
        presence_of(&mut x_on_b, &w.id, WAIT).await,
        "presence:user_online"
    );
    c.delete(&format!("/api/rooms/{private}/participants/{participant}"))
        .await;
    let gone = next_event(&mut w_on_a, "room:unsubscribed").await;
    assert_eq!(gone["roomId"], json!(private));
    assert_eq!(
        presence_of(&mut x_on_b, &w.id, WAIT).await,
        "presence:user_offline"
    );
    // No longer subscribed: the next room event does not reach them.
    b.patch(&format!("/api/rooms/{private}"), json!({"name": "Renamed"}))
        .await;
    next_event(&mut x_on_b, "room:updated").await;
    assert_no_event(&mut w_on_a, "room:updated").await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiz_rank_is_global() {
    let d = Deployment::start("cluster_quiz", 3).await;
    let (a, b, c) = (&d.nodes[0], &d.nodes[1], &d.nodes[2]);
    let room = a.room("Quiz", "public").await;
    let mut players = Vec::new();
    for (i, node) in [a, b, c].into_iter().enumerate() {
        let u = node.user(&format!("player {i}")).await;
        node.join(&room, &u.id, "participant").await;
        let s = node.subscribed(&u.token, &room).await;
        players.push((u, s));
    }
    let q = a
        .post(
            &format!("/api/rooms/{room}/quiz/questions"),
            json!({"question": "2 + 2?", "options": ["3", "4"], "answer": "4", "timeLimit": 30}),
        )
        .await;
    let qid = q["id"].as_str().unwrap().to_owned();
    b.post(
        &format!("/api/rooms/{room}/quiz/questions/{qid}/publish"),
        json!({}),
    )
    .await;
    for (_, s) in players.iter_mut() {
        next_event(s, "quiz:question_published").await;
    }
    // Correct answers on C then A, a wrong one on B: ranks 1, 2, null,
    // whichever node took each.
    let order = [
        (2, "4", json!(1)),
        (0, "4", json!(2)),
        (1, "3", Value::Null),
    ];
    for (i, answer, rank) in order {
        let res = ack(
            &players[i].1,
            "quiz:answer_submit",
            json!({"questionId": qid, "answer": answer, "timestamp": 0}),
        )
        .await;
        assert_eq!(res["success"], json!(true), "{res}");
        assert_eq!(res["rank"], rank, "player {i}: {res}");
    }
    // Every player sees the three results, in that order.
    for (_, s) in players.iter_mut() {
        let mut ranks = Vec::new();
        for _ in 0..3 {
            let r = next_event(s, "quiz:answer_result").await;
            assert_payload("quiz:answer_result", &r);
            ranks.push(r["rank"].clone());
        }
        assert_eq!(ranks, [json!(1), json!(2), Value::Null]);
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_hands_its_clients_to_the_others() {
    let mut d = Deployment::start("cluster_node_stop", 3).await;
    let room = d.nodes[0].room("Lottery", "public").await;
    let prize = d.nodes[0]
        .post(
            &format!("/api/rooms/{room}/prizes"),
            json!({"name": "Car", "quantity": 2}),
        )
        .await;
    let moving = d.nodes[0].user("moving").await;
    let watcher = d.nodes[1].user("watcher").await;
    d.nodes[0].join(&room, &moving.id, "participant").await;
    let mut w = d.nodes[1].subscribed(&watcher.token, &room).await;
    let mut s = d.nodes[0].subscribed(&moving.token, &room).await;
    assert_eq!(
        presence_of(&mut w, &moving.id, WAIT).await,
        "presence:user_online"
    );

    // A stops: its client is disconnected, and the others hear that its
    // user went offline.
    let stopped = d.nodes.remove(0);
    stopped.stop().await;
    disconnected(&mut s).await;
    assert_eq!(
        presence_of(&mut w, &moving.id, WAIT).await,
        "presence:user_offline"
    );

    // The client reconnects to another node and subscribes again.
    let (b, c) = (&d.nodes[0], &d.nodes[1]);
    let mut s = b.subscribed(&moving.token, &room).await;
    assert_eq!(
        presence_of(&mut w, &moving.id, WAIT).await,
        "presence:user_online"
    );
    // Nothing stored was lost, and the others keep serving.
    let stored = c
        .admin(Method::GET, &format!("/api/rooms/{room}/prizes"), None)
        .await;
    assert_eq!(stored[0]["id"], prize["id"]);
    let members = c
        .admin(
            Method::GET,
            &format!("/api/rooms/{room}/participants"),
            None,
        )
        .await;
    assert_eq!(members[0]["userId"], json!(moving.id));
    c.post(
        &format!(
            "/api/rooms/{room}/prizes/{}/draw",
            prize["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    let won = next_event(&mut s, "winner:selected").await;
    assert_eq!(
        won["winner"]["participant"]["user"]["id"],
        json!(moving.id),
        "{won}"
    );
    next_event(&mut w, "winner:selected").await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_reaped_and_its_clients_move() {
    let d = Deployment::start_with("cluster_node_kill", 1, |c| {
        c.redis_node_ttl = Duration::from_secs(2);
    })
    .await;
    let a = &d.nodes[0];
    // The node to kill is the real binary, so SIGKILL leaves nothing behind
    // but what a crash leaves.
    let mut cmd = ServerProcess::command(server_bin());
    cmd.args(["--listen", "127.0.0.1:0", "--database-url", &d.database_url])
        .args(["--redis", &d.redis.url(), "--redis-node-ttl", "2"])
        .args(["--jwt-secret", server::config::DEV_JWT_SECRET])
        .args(["--admin-token", server::config::DEV_ADMIN_TOKEN]);
    let mut killed = ServerProcess::spawn(cmd, server::config::DEV_ADMIN_TOKEN);

    let room = a.room("Lottery", "public").await;
    let moving = a.user("moving").await;
    let watcher = a.user("watcher").await;
    let mut w = a.subscribed(&watcher.token, &room).await;
    let mut s = sioclient::connect(killed.client_config(&moving.token, "/"))
        .await
        .expect("connect to the node to kill");
    let sub = ack(&s, "room:subscribe", json!({"roomId": room})).await;
    assert_eq!(sub["success"], json!(true), "{sub}");
    assert_eq!(
        presence_of(&mut w, &moving.id, WAIT).await,
        "presence:user_online"
    );
    // A REST call on the process reaches A's subscriber.
    let (status, _) = killed
        .admin_call(
            Method::PATCH,
            &format!("/api/rooms/{room}"),
            Some(json!({"status": "paused"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    next_event(&mut w, "room:status_changed").await;

    killed.kill9();
    disconnected(&mut s).await;
    // Within the node TTL plus a heartbeat, A takes the dead node's users
    // off presence, once.
    assert_eq!(
        presence_of(&mut w, &moving.id, SLOW_WAIT).await,
        "presence:user_offline"
    );
    no_presence_of(&mut w, &moving.id).await;
    assert_eq!(online_ids(&w, &room).await, vec![watcher.id.clone()]);
    // The client comes back on A.
    let _s = a.subscribed(&moving.token, &room).await;
    assert_eq!(
        presence_of(&mut w, &moving.id, WAIT).await,
        "presence:user_online"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_resume_after_a_redis_restart() {
    let mut d = Deployment::start_with("cluster_redis_restart", 2, |c| {
        c.redis_node_ttl = Duration::from_secs(2);
    })
    .await;
    let room = d.nodes[0].room("Lottery", "public").await;
    let u = d.nodes[0].user("listener").await;
    let v = d.nodes[1].user("other").await;
    let mut s = d.nodes[0].subscribed(&u.token, &room).await;
    let t = d.nodes[1].subscribed(&v.token, &room).await;
    d.nodes[1]
        .patch(&format!("/api/rooms/{room}"), json!({"name": "Before"}))
        .await;
    next_event(&mut s, "room:updated").await;

    // Redis dies. The nodes say so, and still serve their own sockets.
    tokio::task::block_in_place(|| d.redis.stop());
    let (status, body) = d.nodes[0]
        .call(Method::GET, "/healthz", None, None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    d.nodes[0]
        .patch(&format!("/api/rooms/{room}"), json!({"name": "During"}))
        .await;
    let during = next_event(&mut s, "room:updated").await;
    assert_eq!(during["room"]["name"], json!("During"), "{during}");

    // It comes back empty; the nodes were not restarted.
    tokio::task::block_in_place(|| d.redis.restart());
    for node in &d.nodes {
        healthy(node).await;
    }
    let (a, b) = (&d.nodes[0], &d.nodes[1]);
    // The subscriptions come back by themselves.
    let deadline = Instant::now() + SLOW_WAIT;
    let mut attempt = 0;
    loop {
        attempt += 1;
        b.patch(
            &format!("/api/rooms/{room}"),
            json!({"name": format!("After {attempt}")}),
        )
        .await;
        let got = collect(&mut s, &["room:updated"], Duration::from_millis(500)).await;
        if !got.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no broadcast from B reached A within {SLOW_WAIT:?} of the restart"
        );
    }
    // Presence was written back by both nodes' heartbeats.
    let deadline = Instant::now() + SLOW_WAIT;
    let mut want = vec![u.id.clone(), v.id.clone()];
    want.sort();
    loop {
        if online_ids(&t, &room).await == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "presence not restored within {SLOW_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the limits work on the new Redis.
    let token = a.app("after", &["realtime:publish"]).await;
    let (status, body) = publish_app_event(b, "after", &token, &room, 1).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    d.stop().await;
}
