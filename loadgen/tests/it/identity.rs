//! Identities without a mint action: loadgen signs each virtual user's
//! token with the profile's HS256 secret for users the profile lists, and
//! runs against altserver (which verifies tokens it never minted) with
//! long-polling off.

use server::testing::altserver;

use crate::common::{subscribe_only, write};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_identities_connect_and_subscribe_on_altserver() {
    let users = [("ann", "Ann"), ("bob", "Bob"), ("cyd", "Cyd")];
    let alt = altserver::start(&["--transports", "websocket"], &users).await;
    let room = alt.create_room("Lobby").await;
    let dir = tempfile::tempdir().unwrap();
    let listed: String = users
        .iter()
        .map(|(id, name)| format!("[[identity.users]]\nid = \"{id}\"\nname = \"{name}\"\n"))
        .collect();
    // No actions: users from the list, tokens signed here, `sub` claim.
    let profile = write(
        dir.path(),
        "alt.toml",
        &format!(
            "[handshake]\ntransports = [\"websocket\"]\n\n[identity]\nmode = \"sign\"\nsecret = \"${{ALT_SECRET:-{}}}\"\n{listed}",
            altserver::JWT_SECRET
        ),
    );
    let file = write(
        dir.path(),
        "signed.toml",
        &subscribe_only("alt-signed", &room, "source = \"driver\"", 5),
    );
    let mut opts = loadgen::RunOpts::new(&file);
    opts.target = Some(alt.socket.clone());
    opts.profile = Some(profile);
    opts.quiet = true;
    opts.out = Some(dir.path().join("out"));
    let outcome = loadgen::run_with_stop(opts, loadgen::engine::StopSignal::new())
        .await
        .expect("the run completes");
    let r = &outcome.report;
    assert!(r.complete, "{:?}", r.abort_reason);
    // Five VUs over three listed users: every one connected and subscribed.
    assert_eq!(r.histograms["connect"].count, 5, "{:?}", r.counters);
    assert_eq!(
        r.histograms["ack.room:subscribe"].count, 5,
        "{:?}",
        r.counters
    );
    assert_eq!(r.counters.get("connect_failures"), None, "{:?}", r.counters);

    // A wrong secret: every connection is refused (the tokens really are
    // what the server checks).
    let bad = write(
        dir.path(),
        "bad.toml",
        &format!("[identity]\nmode = \"sign\"\nsecret = \"wrong\"\n{listed}"),
    );
    let mut opts = loadgen::RunOpts::new(&file);
    opts.target = Some(alt.socket.clone());
    opts.profile = Some(bad);
    opts.quiet = true;
    opts.out = Some(dir.path().join("bad-out"));
    let outcome = loadgen::run_with_stop(opts, loadgen::engine::StopSignal::new())
        .await
        .expect("the run completes");
    assert_eq!(
        outcome.report.counters.get("connect_failures"),
        Some(&5),
        "{:?}",
        outcome.report.counters
    );
}
