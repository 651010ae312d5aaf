//! Identities without a mint action: tokens signed by the runner (against
//! altserver, which verifies tokens it never minted, with long-polling
//! off), and static users with ready-made tokens (against the reference
//! server), whose missing pieces skip their cases with the reason.

use conformance::case::Verdict;
use conformance::output::RunReport;
use serde_json::{Value, json};
use server::testing::altserver;

use crate::common::run_args;

fn verdicts(report: &RunReport) -> Vec<(String, Verdict, Option<String>)> {
    report
        .cases
        .iter()
        .map(|c| (c.id.clone(), c.verdict, c.reason.clone()))
        .collect()
}

fn verdict(report: &RunReport, id: &str) -> Verdict {
    report
        .cases
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} not run: {:?}", verdicts(report)))
        .verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_tokens_reach_altserver_without_long_polling() {
    let users = [
        ("ann", "Ann"),
        ("bob", "Bob"),
        ("cyd", "Cyd"),
        ("dan", "Dan"),
    ];
    let alt = altserver::start(&["--transports", "websocket"], &users).await;
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("alt.toml");
    // No actions at all: users from the list, tokens signed here.
    std::fs::write(
        &profile,
        format!(
            r#"
[identity]
mode = "sign"
secret = "{secret}"
claims = {{ sub = "${{user_id}}", iat = "${{iat}}", exp = "${{exp}}", jti = "${{jti}}" }}
{users}
"#,
            secret = altserver::JWT_SECRET,
            users = users
                .iter()
                .map(|(id, name)| format!("[[identity.users]]\nid = \"{id}\"\nname = \"{name}\"\n"))
                .collect::<String>()
        ),
    )
    .unwrap();
    let report = run_args(&[
        "--target",
        &alt.socket,
        "--profile",
        profile.to_str().unwrap(),
        "--transports",
        "websocket",
        "--run",
        "connection.websocket",
        "--run",
        "connection.namespace.root",
        "--run",
        "connection.auth.expired_token",
        "--run",
        "connection.auth.unknown_user",
    ])
    .await
    .expect("the run completes");
    for id in ["connection.websocket", "connection.namespace.root"] {
        assert_eq!(
            verdict(&report, id),
            Verdict::Pass,
            "{:?}",
            verdicts(&report)
        );
    }
    // A token signed already expired is refused; altserver says
    // `Invalid token` for every reason (its choice C5), which the text
    // allows and our decision N10 does not: a deviation at spec level.
    let expired = report
        .cases
        .iter()
        .find(|c| c.id == "connection.auth.expired_token")
        .unwrap();
    assert_eq!(
        expired.verdict,
        Verdict::Deviation,
        "{:?}",
        verdicts(&report)
    );
    assert!(
        expired.transcript.iter().any(|l| l.dir == "<"
            && l.text.starts_with("44")
            && l.text.contains("Authentication failed")),
        "{:?}",
        expired.transcript
    );
    // Deleting one of the listed users is refused, with the reason.
    assert_eq!(
        verdict(&report, "connection.auth.unknown_user"),
        Verdict::Skip
    );
    assert!(
        report
            .summary
            .skips
            .iter()
            .any(|g| g.reason.contains("fixed users")),
        "{:?}",
        report.summary.skips
    );
}

/// A user and an access token from the reference server's REST API.
async fn minted(http: &reqwest::Client, url: &str, name: &str, ttl: i64) -> (String, Value) {
    let user: Value = http
        .post(format!("{url}/api/users"))
        .bearer_auth("dev-admin-token")
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = user["id"].as_str().unwrap().to_owned();
    (id.clone(), token(http, url, &id, ttl).await)
}

async fn token(http: &reqwest::Client, url: &str, id: &str, ttl: i64) -> Value {
    http.post(format!("{url}/api/auth/token"))
        .bearer_auth("dev-admin-token")
        .json(&json!({"userId": id, "ttlSeconds": ttl}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_users_run_what_their_tokens_allow_and_skip_the_rest() {
    let server = server::Embedded::start().await.expect("reference server");
    let url = server.url();
    let http = reqwest::Client::new();
    let (ann, ann_token) = minted(&http, &url, "Ann", 3600).await;
    let (bob, bob_token) = minted(&http, &url, "Bob", 3600).await;
    let expired = token(&http, &url, &ann, -60).await;
    let revoked = token(&http, &url, &bob, 3600).await;
    let status = http
        .post(format!("{url}/api/auth/revoke"))
        .bearer_auth("dev-admin-token")
        .json(&json!({"tokenId": revoked["tokenId"]}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "revoke: {status}");
    let access = |v: &Value| v["accessToken"].as_str().unwrap().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("static.toml");
    std::fs::write(
        &profile,
        format!(
            r#"{reference}
[identity]
mode = "static"

[[identity.users]]
id = "{ann}"
name = "Ann"
token = "{ann_token}"
expired_token = "{expired}"

[[identity.users]]
id = "{bob}"
name = "Bob"
token = "{bob_token}"
revoked_token = "{revoked}"
"#,
            reference = driver::profile::REFERENCE,
            ann_token = access(&ann_token),
            bob_token = access(&bob_token),
            expired = access(&expired),
            revoked = access(&revoked),
        ),
    )
    .unwrap();
    let report = run_args(&[
        "--target",
        &url,
        "--profile",
        profile.to_str().unwrap(),
        "--run",
        "connection.auth.*",
        "--run",
        "connection.websocket",
        "--run",
        "rules.token_expired.event",
    ])
    .await
    .expect("the run completes");
    let all = verdicts(&report);
    for id in [
        "connection.websocket",
        "connection.auth.expired_token",
        "connection.auth.revoked_token",
        "connection.auth.invalid_token",
        "connection.auth.missing_token",
    ] {
        assert_eq!(verdict(&report, id), Verdict::Pass, "{id}: {all:?}");
    }
    // A static user is never deleted; a 2-second token cannot be had.
    assert_eq!(
        verdict(&report, "connection.auth.unknown_user"),
        Verdict::Skip
    );
    assert_eq!(verdict(&report, "rules.token_expired.event"), Verdict::Skip);
    let reasons: Vec<&str> = report
        .summary
        .skips
        .iter()
        .map(|g| g.reason.as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("lives 2 s")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("fixed users")),
        "{reasons:?}"
    );
    // Skips are not passes: below the default --require-coverage 100.
    assert_eq!(
        conformance::exit_code(&report.summary),
        conformance::EXIT_COVERAGE
    );
    // The tokens never reach an output.
    let json = serde_json::to_string(&report).unwrap();
    for t in [&ann_token, &bob_token, &expired, &revoked] {
        assert!(!json.contains(&access(t)), "a token leaked");
    }
    let _ = server.stop().await;
}
