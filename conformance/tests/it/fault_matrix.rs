//! Every case proven able to fail: a table of faults, each with the case
//! ids it must make fail.
//!
//! A fault is either a deliberate bug of the second implementation
//! (`altserver --bug NAME`, or another altserver flag), run at `--level
//! spec` — a clean altserver passes every case at that level
//! (`altserver.rs`), so a failure is the bug's doing — or a reference
//! server with a changed configuration and/or a frame-rewriting proxy in
//! front of it (common/proxy.rs), run at `--level reference`, where a clean
//! reference server passes every case (`reference.rs`). Negative and leak
//! cases need a server that really misbehaves (a proxy cannot invent a
//! leak), hence the bugs; cases whose whole check is one of our decisions
//! (N#) can only fail at the reference level, hence the reference rows.
//!
//! Three tests: [`every_fault_fails_its_cases`] runs each row on the
//! sections it names only, several at once, and asserts exit code 1 and
//! verdict FAIL for each listed case; [`every_case_has_a_fault`] asserts
//! that the rows cover every id of `conformance::cases::all()` (a new case
//! without a row fails CI, naming it); [`readme_table_matches`] keeps the
//! README's table (case id → faults) equal to what [`ROWS`] says.
//!
//! Adding a case: add its id to the `fails` of the row whose fault breaks
//! it (or a new row), then run `cargo test -p conformance --test it
//! fault_matrix::readme_table_matches` and paste the table it prints.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use conformance::case::Verdict;
use conformance::output::RunReport;
use futures_util::future::join_all;
use serde_json::json;
use server::testing::altserver;
use tokio::sync::Semaphore;

use crate::common::{self, Fault as ProxyFault, Scenario, sio};

/// How a row breaks the target.
pub enum Fault {
    /// altserver started with these flags (`--bug NAME`, ...), run at
    /// `--level spec`.
    Alt(&'static [&'static str]),
    /// The reference server with `config` changed and `proxy` in front of
    /// it, run at `--level reference`.
    Reference {
        what: &'static str,
        config: fn(&mut server::Config),
        proxy: fn() -> ProxyFault,
    },
}

/// One fault and the cases it must make fail.
pub struct Row {
    pub fault: Fault,
    /// `--run` globs: the sections the row needs (keeps the matrix fast).
    pub run: &'static [&'static str],
    /// Case ids that must FAIL under the fault.
    pub fails: &'static [&'static str],
}

const fn bug(
    args: &'static [&'static str],
    run: &'static [&'static str],
    fails: &'static [&'static str],
) -> Row {
    Row {
        fault: Fault::Alt(args),
        run,
        fails,
    }
}

/// Cases no fault can make fail yet, each with the reason. Every entry is
/// a debt: the case must be fixed, then moved to a row.
pub const CANNOT_FAIL_YET: &[(&str, &str)] = &[];

/// The matrix.
pub const ROWS: &[Row] = &[
    // The two longest first (see ALT_SLOTS).
    // --- acks: a server that never acknowledges ---
    bug(
        &["--bug", "no-ack"],
        &[
            "rooms.subscribe.ack",
            "rooms.unsubscribe.ack",
            "notifications.mark_read.*",
            "presence.get_online.ack",
            "quiz.answer_submit.*",
            "apps.custom.delivered",
            "connection.polling",
            "connection.reconnect.*",
            "winners.quantity_remaining",
        ],
        &[
            "rooms.subscribe.ack",
            "rooms.unsubscribe.ack",
            "notifications.mark_read.ack",
            "notifications.mark_read.other_user",
            "presence.get_online.ack",
            "quiz.answer_submit.ack",
            "quiz.answer_submit.duplicate",
            "quiz.answer_submit.invalid",
            "quiz.answer_submit.non_participant",
            "quiz.answer_submit.not_an_option",
            "quiz.answer_submit.unpublished",
            "apps.custom.delivered",
            "connection.polling",
            "connection.reconnect.resubscribe",
            "winners.quantity_remaining",
        ],
    ),
    // --- payloads: every `timestamp` 10 minutes old ---
    bug(
        &["--bug", "stale-timestamps"],
        &[
            "rules.timestamps.*",
            "rooms.*",
            "participants.*",
            "prizes.*",
            "winners.*",
            "notifications.received.payload",
            "presence.user_online.payload",
            "quiz.answer_result.payload",
            "quiz.question_published.payload",
        ],
        &[
            "rules.timestamps.iso_recent",
            "rooms.subscribed.payload",
            "rooms.unsubscribed.payload",
            "rooms.updated.payload",
            "rooms.status_changed.payload",
            "rooms.deleted.payload",
            "participants.joined.payload",
            "participants.left.payload",
            "participants.updated.payload",
            "prizes.created.payload",
            "prizes.updated.payload",
            "prizes.deleted.payload",
            "winners.selected.payload",
            "winners.selected.notification",
            "winners.removed.payload",
            "notifications.received.payload",
            "presence.user_online.payload",
            "quiz.answer_result.payload",
            "quiz.question_published.payload",
        ],
    ),
    // --- payloads: a wrong field name, acks without `success` ---
    bug(
        &["--bug", "room-id-renamed"],
        &[
            "rooms.*",
            "participants.*",
            "prizes.*",
            "winners.*",
            "presence.*",
        ],
        &[
            "rooms.updated.payload",
            "rooms.status_changed.payload",
            "rooms.deleted.payload",
            "participants.joined.payload",
            "participants.left.payload",
            "participants.updated.payload",
            "prizes.created.payload",
            "prizes.updated.payload",
            "prizes.deleted.payload",
            "winners.selected.payload",
            "winners.removed.payload",
            "presence.user_online.payload",
            "presence.user_offline.payload",
        ],
    ),
    bug(
        &["--bug", "ack-no-success"],
        &[
            "rooms.subscribe.ack",
            "rooms.unsubscribe.ack",
            "notifications.mark_read.ack",
            "quiz.answer_submit.ack",
        ],
        &[
            "rooms.subscribe.ack",
            "rooms.unsubscribe.ack",
            "notifications.mark_read.ack",
            "quiz.answer_submit.ack",
        ],
    ),
    // --- connecting and authentication ---
    bug(
        &["--bug", "root-no-auth"],
        &["connection.auth.*", "errors.authentication_failed.connect"],
        &[
            "connection.auth.invalid_token",
            "connection.auth.missing_token",
            "connection.auth.revoked_token",
            "connection.auth.unknown_user",
            "connection.auth.expired_token",
            "errors.authentication_failed.connect",
        ],
    ),
    bug(
        &["--bug", "ns-no-auth"],
        &["connection.namespace.room_auth.*"],
        &[
            "connection.namespace.room_auth.invalid_token",
            "connection.namespace.room_auth.missing_token",
            "connection.namespace.room_auth.expired_token",
        ],
    ),
    bug(
        &["--bug", "root-no-auth-check-expiry"],
        &["connection.auth.expired_token"],
        &["connection.auth.expired_token"],
    ),
    bug(
        &["--bug", "refresh-broken"],
        &["connection.auth.refresh"],
        &["connection.auth.refresh"],
    ),
    bug(
        &["--bug", "no-token-expired"],
        &["rules.token_expired.*", "errors.authentication_failed.*"],
        &[
            "rules.token_expired.event",
            "errors.authentication_failed.ack",
            "errors.authentication_failed.event",
        ],
    ),
    Row {
        fault: Fault::Reference {
            what: "`/` answers CONNECT with connect_error",
            config: |_| {},
            proxy: root_connect_refused,
        },
        run: &["connection.namespace.root"],
        fails: &["connection.namespace.root"],
    },
    bug(
        &["--bug", "room-ns-closed"],
        &[
            "connection.namespace.*",
            "apps.custom.room_namespace",
            "rooms.namespace.events",
            "rooms.deleted.namespace_closed",
        ],
        &[
            "connection.namespace.room",
            "apps.custom.room_namespace",
            "rooms.namespace.events",
            "rooms.deleted.namespace_closed",
        ],
    ),
    bug(
        &["--bug", "room-ns-unknown-open"],
        &["connection.namespace.room_not_found"],
        &["connection.namespace.room_not_found"],
    ),
    // --- transports ---
    bug(
        &["--transports", "polling"],
        &["connection.websocket"],
        &["connection.websocket"],
    ),
    bug(
        &["--bug", "no-upgrade"],
        &["connection.polling*"],
        &["connection.polling_upgrade"],
    ),
    // --- delivery: leaks, duplicates, unsubscribe ---
    bug(
        &["--bug", "leak-rooms"],
        &["rooms.*"],
        &[
            "rooms.isolation",
            "rooms.isolation.every_event",
            "rooms.unsubscribe.stops_events",
        ],
    ),
    bug(
        &["--bug", "leak-namespaces"],
        &["rooms.isolation.every_event"],
        &["rooms.isolation.every_event"],
    ),
    bug(
        &["--bug", "unsubscribe-keeps"],
        &["rooms.unsubscribe.*"],
        &["rooms.unsubscribe.stops_events"],
    ),
    bug(
        &["--bug", "notifications-on-namespaces"],
        &["notifications.received.*"],
        &["notifications.received.root_only"],
    ),
    bug(
        &["--bug", "notifications-to-all"],
        &["notifications.*"],
        &["notifications.private"],
    ),
    bug(
        &["--bug", "duplicate-events"],
        &["rules.event_ids.*", "quiz.ranking"],
        &["rules.event_ids.unique", "quiz.ranking"],
    ),
    bug(
        &["--bug", "no-presence-offline"],
        &[
            "presence.*",
            "connection.disconnect.*",
            "connection.reconnect.*",
        ],
        &[
            "presence.user_offline.payload",
            "presence.user_offline.unsubscribe",
            "presence.online_once",
            "connection.disconnect.graceful",
            "connection.reconnect.resubscribe",
        ],
    ),
    bug(
        &["--bug", "removal-keeps"],
        &["rules.room_authorization.*"],
        &["rules.room_authorization.removed"],
    ),
    bug(
        &["--bug", "revocation-ignores-live"],
        &["rules.token_revoked.*"],
        &["rules.token_revoked.live"],
    ),
    // --- authorization, validation, error codes ---
    bug(
        &["--bug", "private-open"],
        &[
            "errors.permission_denied.*",
            "rules.room_authorization.*",
            "connection.namespace.room_auth.*",
        ],
        &[
            "errors.permission_denied.ack",
            "errors.permission_denied.event",
            "errors.permission_denied.every_event",
            "rules.room_authorization.private",
            "connection.namespace.room_auth.private",
        ],
    ),
    bug(
        &["--bug", "no-validation"],
        &["errors.invalid_payload.*"],
        &[
            "errors.invalid_payload.ack",
            "errors.invalid_payload.event",
            "errors.invalid_payload.every_event",
        ],
    ),
    bug(
        &["--bug", "wrong-error-code"],
        &[
            "errors.room_not_found.*",
            "connection.namespace.room_not_found",
        ],
        &[
            "errors.room_not_found.ack",
            "errors.room_not_found.event",
            "errors.room_not_found.every_event",
            "connection.namespace.room_not_found",
        ],
    ),
    // --- rate limits ---
    bug(
        &["--bug", "no-rate-limit"],
        &["errors.rate_limit_exceeded.*", "rules.client_rate.*"],
        &[
            "errors.rate_limit_exceeded.ack",
            "errors.rate_limit_exceeded.event",
            "rules.client_rate.per_connection",
        ],
    ),
    bug(
        &["--bug", "over-limit-processed"],
        &[
            "rules.app_rate.room_per_second",
            "rules.client_rate.over_limit_not_processed",
        ],
        &[
            "rules.app_rate.room_per_second",
            "rules.client_rate.over_limit_not_processed",
        ],
    ),
    Row {
        fault: Fault::Reference {
            what: "application rate limits off (server configuration)",
            config: |c| {
                c.app_events_per_app_per_minute = 1_000_000;
                c.app_events_per_room_per_second = 1_000_000;
            },
            proxy: ProxyFault::none,
        },
        run: &["rules.app_rate.*"],
        fails: &[
            "rules.app_rate.app_per_minute",
            "rules.app_rate.room_per_second",
        ],
    },
    // --- applications ---
    bug(
        &["--bug", "app-scope-unchecked"],
        &["apps.*", "errors.app_permission_denied.*"],
        &[
            "apps.permission.realtime_publish",
            "errors.app_permission_denied.rest",
        ],
    ),
    bug(
        &["--bug", "app-prefix-unchecked"],
        &["apps.*"],
        &["apps.event_prefix"],
    ),
    // --- quiz and notifications: refusals ---
    bug(
        &["--bug", "quiz-unchecked"],
        &["quiz.answer_submit.*"],
        &[
            "quiz.answer_submit.not_an_option",
            "quiz.answer_submit.unpublished",
        ],
    ),
    bug(
        &["--bug", "quiz-codes-swapped"],
        &["quiz.answer_submit.*"],
        &["quiz.answer_submit.non_participant"],
    ),
    bug(
        &["--bug", "mark-read-anyone"],
        &["notifications.mark_read.*"],
        &["notifications.mark_read.other_user"],
    ),
    Row {
        fault: Fault::Reference {
            what: "a late quiz answer is accepted (its refusal rewritten into a success ack)",
            config: |_| {},
            proxy: late_answer_accepted,
        },
        run: &["quiz.answer_submit.late"],
        fails: &["quiz.answer_submit.late"],
    },
];

/// The CONNECT answer of `/` becomes a connect_error, as a server that
/// refuses every client on the default namespace.
fn root_connect_refused() -> ProxyFault {
    ProxyFault {
        down: Some(sio::packets(b'0', |p| {
            if p.nsp.is_empty() || p.nsp == "/" {
                p.kind = sio::CONNECT_ERROR;
                p.data = Some(json!({"message": "Authentication failed: Invalid token"}));
            }
            true
        })),
        ..ProxyFault::default()
    }
}

/// Every refused quiz answer is acknowledged as a correct one.
fn late_answer_accepted() -> ProxyFault {
    sio::on_ack(|ack| {
        if ack.pointer("/error/code") == Some(&json!("INVALID_PAYLOAD")) {
            *ack = json!({"success": true, "correct": true, "responseTime": 1.3, "rank": 1});
        }
    })
}

impl Fault {
    /// The README's name for the fault.
    fn label(&self) -> String {
        match self {
            Fault::Alt(args) => format!("altserver `{}`", args.join(" ")),
            Fault::Reference { what, .. } => format!("reference: {what}"),
        }
    }
}

/// altserver rows at once (each is a node process plus a runner, mostly
/// waiting on sockets; the reference rows share `common`'s own bound of 2).
/// They start in `ROWS` order, so the longest rows come first there.
static ALT_SLOTS: Semaphore = Semaphore::const_new(4);

/// Runs one row; `Err` says what did not fail as it should.
async fn run_row(row: &Row) -> Result<(), String> {
    let started = Instant::now();
    let label = row.fault.label();
    let (exit, report) = match &row.fault {
        Fault::Alt(args) => {
            let _slot = ALT_SLOTS.acquire().await.expect("semaphore open");
            run_alt(args, row.run).await?
        }
        Fault::Reference { config, proxy, .. } => {
            // `Scenario` wants a 'static name; the rows are 'static.
            let name: &'static str = Box::leak(label.clone().into_boxed_str());
            let o = common::run(Scenario::new(name, proxy(), row.run).config(*config)).await;
            (i32::from(o.exit), o.report)
        }
    };
    eprintln!(
        "matrix {label:<60} exit {exit} {:>6} ms  {}",
        started.elapsed().as_millis(),
        report.summary.line()
    );
    let verdicts: BTreeMap<&str, Verdict> = report
        .cases
        .iter()
        .map(|c| (c.id.as_str(), c.verdict))
        .collect();
    let mut wrong = Vec::new();
    if exit != i32::from(conformance::EXIT_FAILURES) {
        wrong.push(format!("exit code {exit}, not 1"));
    }
    for id in row.fails {
        match verdicts.get(id) {
            Some(Verdict::Fail) => {}
            Some(v) => wrong.push(format!("{id} is {}, not FAIL", v.label())),
            None => wrong.push(format!("{id} did not run (--run {:?})", row.run)),
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{label}: {}", wrong.join("; ")))
    }
}

/// A fresh altserver with `args`, the suite's `run` sections against it at
/// spec level; the exit code and the report.
async fn run_alt(args: &[&str], run: &[&str]) -> Result<(i32, RunReport), String> {
    let alt = altserver::start(args, &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let profile = common::ALT_PROFILE;
    let env = common::alt_env(&alt);
    let mut argv = vec![
        "run",
        "--target",
        &alt.socket,
        "--profile",
        profile,
        "--level",
        "spec",
        "--timeout",
        "3",
        "--json",
        json.to_str().unwrap(),
    ];
    for g in run {
        argv.extend(["--run", g]);
    }
    let (code, out, err) = common::conformance(&argv, &env).await;
    let text = std::fs::read_to_string(&json).map_err(|e| {
        format!("altserver {args:?}: no JSON report ({e}): exit {code}\n{out}\n{err}")
    })?;
    let report = serde_json::from_str(&text).map_err(|e| format!("altserver {args:?}: {e}"))?;
    Ok((code, report))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_fails_its_cases() {
    let started = Instant::now();
    let results = join_all(ROWS.iter().map(run_row)).await;
    // A row whose only shortfall is an ERROR verdict (the case could not
    // reach a verdict: e.g. a burst too slow to observe a per-second limit
    // while the other rows load the machine) runs once more, alone.
    let mut wrong = Vec::new();
    for (row, result) in ROWS.iter().zip(results) {
        match result {
            Err(e) if e.contains(" is ERROR, not FAIL") && !e.contains("exit code") => {
                eprintln!("matrix: inconclusive, run again alone: {e}");
                if let Err(e) = run_row(row).await {
                    wrong.push(e);
                }
            }
            Err(e) => wrong.push(e),
            Ok(()) => {}
        }
    }
    eprintln!(
        "matrix: {} faults in {} ms",
        ROWS.len(),
        started.elapsed().as_millis()
    );
    assert!(
        wrong.is_empty(),
        "faults that did not fail their cases:\n{}",
        wrong.join("\n")
    );
}

/// Each case id with the faults that make it fail, in catalog order.
fn faults_by_case() -> BTreeMap<&'static str, Vec<String>> {
    let mut by_case: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for row in ROWS {
        for id in row.fails {
            by_case.entry(id).or_default().push(row.fault.label());
        }
    }
    by_case
}

#[test]
fn every_case_has_a_fault() {
    let ids: BTreeSet<&str> = conformance::cases::all().iter().map(|c| c.id).collect();
    let by_case = faults_by_case();
    let pending: BTreeSet<&str> = CANNOT_FAIL_YET.iter().map(|(id, _)| *id).collect();
    let unknown: Vec<&&str> = by_case
        .keys()
        .chain(pending.iter())
        .filter(|id| !ids.contains(**id))
        .collect();
    assert!(unknown.is_empty(), "not case ids: {unknown:?}");
    let both: Vec<&&str> = pending
        .iter()
        .filter(|id| by_case.contains_key(**id))
        .collect();
    assert!(
        both.is_empty(),
        "in a row and in CANNOT_FAIL_YET (remove them there): {both:?}"
    );
    let uncovered: Vec<&&str> = ids
        .iter()
        .filter(|id| !by_case.contains_key(**id) && !pending.contains(**id))
        .collect();
    assert!(
        uncovered.is_empty(),
        "cases no fault makes fail (add each to a row of fault_matrix::ROWS): {uncovered:?}"
    );
    for row in ROWS {
        for id in row.fails {
            assert!(
                row.run.iter().any(|g| conformance::case::glob_match(g, id)),
                "{}: {id} is outside its --run {:?}",
                row.fault.label(),
                row.run
            );
        }
    }
}

/// The README's table, as `ROWS` and `CANNOT_FAIL_YET` say it.
fn readme_table() -> String {
    let by_case = faults_by_case();
    let mut out = String::from("| case | fails under |\n|---|---|\n");
    for case in conformance::cases::all() {
        let cell = match by_case.get(case.id) {
            Some(faults) => faults.join("; "),
            None => CANNOT_FAIL_YET
                .iter()
                .find(|(id, _)| *id == case.id)
                .map(|(_, why)| format!("none yet: {why}"))
                .unwrap_or_default(),
        };
        out.push_str(&format!("| `{}` | {cell} |\n", case.id));
    }
    out
}

const BEGIN: &str =
    "<!-- fault-matrix: begin (generated by conformance/tests/it/fault_matrix.rs) -->\n";
const END: &str = "<!-- fault-matrix: end -->";

#[test]
fn readme_table_matches() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the root README");
    let table = readme
        .split_once(BEGIN)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(t, _)| t);
    let want = readme_table();
    assert_eq!(
        table,
        Some(want.as_str()),
        "README.md's fault table (between `{}` and `{END}`) must be:\n{want}",
        BEGIN.trim_end()
    );
}
