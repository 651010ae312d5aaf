//! Profiles against real servers: `conformance profile check` names a
//! broken action, the second implementation's profile drives every one of
//! its actions, and a run removes what it created.

use std::time::Duration;

use serde_json::Value;

use crate::common::conformance;

/// The state of each action in a `profile check --json` report.
fn states(report: &Value) -> Vec<(String, String)> {
    report["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn state_of<'a>(states: &'a [(String, String)], action: &str) -> &'a str {
    &states.iter().find(|(a, _)| a == action).expect(action).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_check_names_a_broken_action_against_the_reference_server() {
    let server = server::Embedded::start()
        .await
        .expect("start the reference server");
    let url = server.url();
    let env = [("CONFORMANCE_ADMIN_TOKEN", server.admin_token())];
    let dir = tempfile::tempdir().unwrap();

    // The reference profile itself: every action works but `delete_app`,
    // which the reference server does not have.
    let good = dir.path().join("reference.toml");
    std::fs::write(&good, driver::profile::REFERENCE).unwrap();
    let (code, out, err) = conformance(
        &[
            "profile",
            "check",
            good.to_str().unwrap(),
            "--target",
            &url,
            "--json",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).expect("--json prints JSON");
    let all = states(&report);
    assert_eq!(
        all.len(),
        driver::Action::ALL.len(),
        "every action is listed"
    );
    for (action, state) in &all {
        let want = if action == "delete_app" {
            "missing"
        } else {
            "ok"
        };
        assert_eq!(state, want, "{action}: {out}");
    }

    // One action broken on purpose: reported by name with the status, the
    // cases it costs, and the actions that depended on it not run.
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        driver::profile::REFERENCE.replace(
            "path = \"/api/rooms/${roomId}/prizes\"",
            "path = \"/api/rooms/${roomId}/prizez\"",
        ),
    )
    .unwrap();
    let (code, out, err) = conformance(
        &[
            "profile",
            "check",
            broken.to_str().unwrap(),
            "--target",
            &url,
        ],
        &env,
    )
    .await;
    assert_eq!(code, 1, "a failing action fails the check: {out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("create_prize"))
        .unwrap_or_else(|| panic!("create_prize reported: {out}"));
    assert!(line.contains("FAILED") && line.contains("404"), "{out}");
    assert!(out.contains("costs"), "{out}");
    assert!(
        out.contains("prizes.created.payload"),
        "the cases it costs: {out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("NOT RUN") && l.contains("update_prize") && l.contains("prizeId")),
        "{out}"
    );
    assert!(out.contains("OK       create_room"), "{out}");
    assert!(
        out.contains("NOT RUN  delete_prize") && out.trim_end().ends_with("1 failed, 4 not run"),
        "{out}"
    );

    let (code, out, _) = conformance(
        &[
            "profile",
            "check",
            broken.to_str().unwrap(),
            "--target",
            &url,
            "--json",
        ],
        &env,
    )
    .await;
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).unwrap();
    let prize = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "create_prize")
        .unwrap();
    assert_eq!(prize["state"], "failed");
    assert_eq!(prize["status"], 404);
    assert!(
        prize["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "prizes.created.payload"),
        "{prize}"
    );
    server.stop().await.unwrap();
}

/// A run deletes the rooms and users it created (the summary counts them);
/// `--no-teardown` leaves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_removes_what_it_created_unless_told_not_to() {
    let server = server::Embedded::start()
        .await
        .expect("start the reference server");
    let url = server.url();
    let token = server.admin_token().to_owned();
    let env = [("CONFORMANCE_ADMIN_TOKEN", token.as_str())];
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    for (flags, kept) in [(&[][..], false), (&["--no-teardown"][..], true)] {
        let json = dir.path().join("run.json");
        let mut args = vec![
            "run",
            "--target",
            &url,
            "--run",
            "rooms.subscribe.ack",
            "--json",
            json.to_str().unwrap(),
        ];
        args.extend(flags);
        let (code, out, err) = conformance(&args, &env).await;
        assert_eq!(code, 0, "{out}{err}");
        let teardown = out
            .lines()
            .find(|l| l.starts_with("teardown:"))
            .unwrap_or_else(|| panic!("a teardown line: {out}"));
        if kept {
            assert!(teardown.contains("skipped (--no-teardown)"), "{teardown}");
        } else {
            assert!(
                teardown.contains("by delete_room") && teardown.contains("by delete_user"),
                "{teardown}"
            );
        }
        assert!(
            out.trim_end().lines().last().unwrap().contains("passed"),
            "the summary stays last: {out}"
        );
        // The room the case created, from its transcript.
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let lines = report["cases"][0]["transcript"].as_array().unwrap();
        let created = lines
            .windows(2)
            .find(|w| {
                w[0]["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("POST /api/rooms ")
            })
            .map(|w| w[1]["text"].as_str().unwrap().to_owned())
            .expect("a create_room in the transcript");
        let body: Value = serde_json::from_str(created.split_once(' ').unwrap().1).unwrap();
        let id = body["id"].as_str().unwrap();
        let status = http
            .get(format!("{url}/api/rooms/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, if kept { 200 } else { 404 }, "room {id}");
    }
    server.stop().await.unwrap();
}

/// altserver/profile.toml against a real altserver: every action works;
/// `mint_token` is the identity's (tokens signed with altserver's secret,
/// whose jti `revoke_token` then revokes, and refresh tokens that
/// `refresh_token` trades).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_altserver_profile_drives_every_action() {
    let alt = server::testing::altserver::start(&["--transports", "websocket"], &[]).await;
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/../altserver/profile.toml");
    let env = [
        ("ALTSERVER_ADMIN_URL", alt.admin.as_str()),
        ("ALTSERVER_ADMIN_KEY", server::testing::altserver::ADMIN_KEY),
        (
            "ALTSERVER_JWT_SECRET",
            server::testing::altserver::JWT_SECRET,
        ),
    ];
    let (code, out, err) = tokio::time::timeout(
        Duration::from_secs(120),
        conformance(
            &[
                "profile",
                "check",
                profile,
                "--target",
                &alt.socket,
                "--json",
            ],
            &env,
        ),
    )
    .await
    .expect("the check finishes");
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let all = states(&report);
    assert_eq!(all.len(), driver::Action::ALL.len());
    for (action, state) in &all {
        let want = match action.as_str() {
            "mint_token" => "provided",
            _ => "ok",
        };
        assert_eq!(state, want, "{action}: {out}");
    }
    assert_eq!(state_of(&all, "draw_winner"), "ok");

    // A wrong admin key: the admin actions fail with altserver's 401.
    let env = [
        ("ALTSERVER_ADMIN_URL", alt.admin.as_str()),
        ("ALTSERVER_ADMIN_KEY", "wrong"),
        (
            "ALTSERVER_JWT_SECRET",
            server::testing::altserver::JWT_SECRET,
        ),
    ];
    let (code, out, _) = conformance(
        &["profile", "check", profile, "--target", &alt.socket],
        &env,
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("FAILED") && l.contains("create_user") && l.contains("401")),
        "{out}"
    );
}
