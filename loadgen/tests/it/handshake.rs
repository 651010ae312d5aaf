//! A deployment that is not ours: altserver with long-polling off, users it
//! was seeded with, tokens signed here with its HS256 secret (no mint
//! action), and the handshake flags. The probe finds it over WebSocket and
//! every client connects and subscribes.

use std::time::{SystemTime, UNIX_EPOCH};

use server::testing::altserver;

use crate::common::{subscribe_only, write};

fn hs256(sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"sub": sub, "iat": now, "exp": now + 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(altserver::JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_only_altserver_with_signed_tokens() {
    let users = [("ann", "Ann"), ("bob", "Bob"), ("cyd", "Cyd")];
    let alt = altserver::start(&["--transports", "websocket"], &users).await;
    let room = alt.create_room("Lobby").await;
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::from("token,userId\n");
    for (id, _) in users {
        rows.push_str(&format!("{},{id}\n", hs256(id)));
    }
    write(dir.path(), "tokens.csv", &rows);
    // No set-up and no driver actions: nothing here needs an admin API.
    let profile = write(
        dir.path(),
        "alt.toml",
        "[target]\nsocket_path = \"/socket.io/\"\n",
    );
    let file = write(
        dir.path(),
        "alt.toml.scenario",
        &subscribe_only(
            "alt-subscribe",
            &room,
            "source = \"csv\"\npath = \"tokens.csv\"",
            3,
        ),
    );
    let mut opts = loadgen::RunOpts::new(&file);
    opts.target = Some(alt.socket.clone());
    opts.profile = Some(profile);
    opts.quiet = true;
    opts.out = Some(dir.path().join("out"));
    opts.handshake.headers = vec![("X-Client".into(), "loadgen-test".into())];
    opts.handshake.origin = Some("http://127.0.0.1".into());
    let outcome = loadgen::run_with_stop(opts.clone(), loadgen::engine::StopSignal::new())
        .await
        .expect("altserver is found although its polling is off");
    let r = &outcome.report;
    assert!(r.complete, "{:?}", r.abort_reason);
    assert_eq!(r.histograms["connect"].count, 3, "{:?}", r.counters);
    assert_eq!(
        r.histograms["ack.room:subscribe"].count, 3,
        "{:?}",
        r.counters
    );
    assert_eq!(r.counters.get("connect_failures"), None, "{:?}", r.counters);
    assert_eq!(
        r.counters.get("received.room:subscribed"),
        Some(&3),
        "{:?}",
        r.counters
    );

    // A scenario that connects over polling is refused before the run
    // when the handshake excludes polling.
    let polling = std::fs::read_to_string(&file).unwrap().replace(
        r#"{ connect = "/" }"#,
        r#"{ connect = "/", transport = "polling" }"#,
    );
    let polling = write(dir.path(), "polling.toml", &polling);
    let mut opts = loadgen::RunOpts::new(&polling);
    opts.target = Some(alt.socket.clone());
    opts.quiet = true;
    opts.handshake.transports = vec!["websocket".into()];
    let err = loadgen::run_with_stop(opts, loadgen::engine::StopSignal::new())
        .await
        .expect_err("refused");
    assert_eq!(err.exit_code(), loadgen::EXIT_USAGE, "{err}");
    assert!(err.to_string().contains("transports exclude"), "{err}");
}
