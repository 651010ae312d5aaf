use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::*;

fn ok(text: &str) -> Scenario {
    match parse(text, Path::new("t.toml")) {
        Ok(s) => s,
        Err(e) => panic!("expected to parse, got:\n{e}"),
    }
}

fn checked(text: &str) -> Checked {
    match parse_checked(text, Path::new("t.toml"), &[]) {
        Ok(c) => c,
        Err(e) => panic!("expected to parse, got:\n{e}"),
    }
}

/// The errors of a text that must not parse.
fn errs(text: &str) -> Vec<Diagnostic> {
    match parse(text, Path::new("t.toml")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.errors,
    }
}

/// Asserts one error at `line` containing `needle`.
fn assert_err(text: &str, line: usize, needle: &str) {
    let es = errs(text);
    assert!(
        es.iter()
            .any(|d| d.line == line && d.message.contains(needle)),
        "expected an error at line {line} containing {needle:?}, got:\n{}",
        es.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const MINIMAL_TAIL: &str = r#"
[[groups]]
name = "g"
steps = [{ connect = "/" }]

[[phases]]
ramp = 10
over = "1s"
"#;

// ---- durations, hash, templates ---------------------------------------

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("250ms").unwrap(), ms(250));
    assert_eq!(parse_duration("5s").unwrap(), secs(5));
    assert_eq!(parse_duration("2m").unwrap(), secs(120));
    assert_eq!(parse_duration("1.5s").unwrap(), ms(1500));
    assert_eq!(parse_duration("1h").unwrap(), secs(3600));
    assert_eq!(parse_duration("1m30s").unwrap(), secs(90));
    assert_eq!(parse_duration("750us").unwrap(), Duration::from_micros(750));
    assert_eq!(parse_duration(" 0s ").unwrap(), Duration::ZERO);
    for bad in ["", "5", "s", "5x", "-1s", "1..5s", "5 s", "1.s5", "abc"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
    }
    assert!(parse_duration("5").unwrap_err().contains("no unit"));
    assert!(parse_duration("3d").unwrap_err().contains("unknown unit"));
}

#[test]
fn durations_format_round_trip() {
    for s in ["250ms", "5s", "1.5s", "2m", "1m30s", "1h", "750us", "0s"] {
        assert_eq!(format_duration(parse_duration(s).unwrap()), s);
    }
}

#[test]
fn fnv1a_known_vectors() {
    assert_eq!(fnv1a_hex(b""), "cbf29ce484222325");
    assert_eq!(fnv1a_hex(b"a"), "af63dc4c8601ec8c");
    assert_eq!(fnv1a_hex(b"foobar"), "85944171f73967e8");
    let text = format!("name = \"x\"\n{MINIMAL_TAIL}");
    assert_eq!(ok(&text).source_hash, fnv1a_hex(text.as_bytes()));
}

#[test]
fn template_names_and_json_expansion() {
    let ps = template_vars("/rooms/${roomId}/x/${n:-{}}").unwrap();
    assert_eq!(ps.len(), 2);
    assert_eq!(ps[0].name, "roomId");
    assert!(!ps[0].has_default);
    assert!(ps[1].has_default);
    assert!(template_vars("${oops").is_err());
    assert!(template_vars("${a b}").is_err());
    let vars: driver::profile::Vars = [
        ("q".to_string(), json!("qst_1")),
        ("n".to_string(), json!(3)),
    ]
    .into();
    let v = expand_json(
        &json!({"questionId": "${q}", "count": "${n}", "label": "n=${n}", "k": [true, 1]}),
        &vars,
    )
    .unwrap();
    assert_eq!(
        v,
        json!({"questionId": "qst_1", "count": 3, "label": "n=3", "k": [true, 1]})
    );
}

// ---- every part of the format -----------------------------------------

const FULL: &str = r#"
name = "everything"
description = "every step kind"
max_duration = "3m"
thresholds = ["answer.p99 < 250ms", "errors.timeout.count <= 0"]

[vars]
questions = 3
label = "hello"

[[setup]]
action = "create_room"
with = { name = "room ${runId}" }
save = ["roomId"]

[[setup]]
action = "create_app"
with = { appId = "bench", permissions = ["realtime:publish"] }
save = ["appToken"]

[tokens]
source = "driver"
join_room = "${roomId}"
role = "participant"

[[groups]]
name = "host"
count = 1
steps = [
  { think = "2s" },
  { loop = "${questions}", steps = [
      { http = "create_question", with = { question = "2+2?", options = ["3", "4"], answer = "4" }, save = ["questionId"] },
      { http = "publish_question" },
      { think = { min = "1s", max = "3s" } },
  ] },
  { http = "publish_app_event", with = { appId = "bench", event = "bench:tick", data = { n = 1 } }, stamp = true },
]

[[groups]]
name = "players"
weight = 3
steps = [
  { connect = "/", transport = "polling" },
  { subscribe = "${roomId}" },
  { emit = "room:unsubscribe", data = { roomId = "${roomId}" } },
  { loop = 2, steps = [
      { wait_for = "quiz:question_published", matching = { roomId = "${roomId}" }, timeout = "1m", save = { qid = "/questionId", first = "/options/0" } },
      { emit_ack = "quiz:answer_submit", data = { questionId = "${qid}", answer = "${first}", timestamp = "${nowMs}" }, expect = { success = true }, timeout = "5s", save = { rank = "/rank" }, metric = "answer" },
  ] },
  { choice = [
      { weight = 3, steps = [{ think = { mean = "500ms" } }] },
      { weight = 1, steps = [] },
  ] },
  { set = { tag = "vu-${vu}", zero = 0 } },
  { reconnect = true, resubscribe = false },
  { reconnect = true },
  { disconnect = true },
]

[[groups]]
name = "rooms-ns"
steps = [{ connect = "/rooms/${roomId}" }, { emit = "presence:get_online" }]

[[phases]]
ramp = 100
over = "10s"

[[phases]]
hold = "1m"

[[phases]]
arrival = 2.5
over = "4s"

[[phases]]
ramp_down = "5s"
"#;

#[test]
fn full_scenario_parses_every_kind() {
    let c = checked(FULL);
    let s = c.scenario;
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(s.name, "everything");
    assert_eq!(s.description, "every step kind");
    assert_eq!(s.max_duration, secs(180));
    assert_eq!(s.thresholds.len(), 2);
    assert_eq!(s.vars["questions"], json!(3));
    assert_eq!(s.vars["label"], json!("hello"));
    assert_eq!(
        s.setup[0],
        SetupAction {
            action: "create_room".into(),
            with: [("name".to_string(), json!("room ${runId}"))].into(),
            save: vec!["roomId".into()],
        }
    );
    assert_eq!(s.setup[1].with["permissions"], json!(["realtime:publish"]));
    assert_eq!(
        s.tokens,
        TokenSource::Driver {
            join_room: Some("${roomId}".into()),
            role: "participant".into(),
            ttl: None,
        }
    );
    assert_eq!(s.groups.len(), 3);
    assert_eq!(s.groups[0].size, GroupSize::Count(1));
    assert_eq!(s.groups[1].size, GroupSize::Weight(3));
    assert_eq!(s.groups[2].size, GroupSize::Weight(1));
    assert_eq!(s.groups[2].name, "rooms-ns");

    let host = &s.groups[0].steps;
    assert_eq!(host[0], Step::Think(Think::Fixed(secs(2))));
    let Step::Loop { count, steps } = &host[1] else {
        panic!("{:?}", host[1])
    };
    assert_eq!(count, "${questions}");
    assert_eq!(
        steps[0],
        Step::Http {
            action: "create_question".into(),
            with: [
                ("question".to_string(), json!("2+2?")),
                ("options".to_string(), json!(["3", "4"])),
                ("answer".to_string(), json!("4")),
            ]
            .into(),
            save: vec!["questionId".into()],
            stamp: false,
            metric: None,
        }
    );
    assert_eq!(steps[2], Step::Think(Think::Uniform(secs(1), secs(3))));
    assert!(matches!(&host[2], Step::Http { stamp: true, .. }));

    let p = &s.groups[1].steps;
    assert_eq!(
        p[0],
        Step::Connect {
            namespace: "/".into(),
            transport: Transport::Polling
        }
    );
    assert_eq!(
        p[1],
        Step::Subscribe {
            room: "${roomId}".into()
        }
    );
    assert_eq!(
        p[2],
        Step::Emit {
            event: "room:unsubscribe".into(),
            data: json!({"roomId": "${roomId}"}),
            metric: None,
        }
    );
    let Step::Loop { count, steps } = &p[3] else {
        panic!()
    };
    assert_eq!(count, "2");
    assert_eq!(
        steps[0],
        Step::WaitFor {
            event: "quiz:question_published".into(),
            matching: Some(json!({"roomId": "${roomId}"})),
            timeout: secs(60),
            save: [
                ("qid".to_string(), "/questionId".to_string()),
                ("first".to_string(), "/options/0".to_string())
            ]
            .into(),
            metric: None,
        }
    );
    assert_eq!(
        steps[1],
        Step::EmitAck {
            event: "quiz:answer_submit".into(),
            data: json!({"questionId": "${qid}", "answer": "${first}", "timestamp": "${nowMs}"}),
            expect: Some(json!({"success": true})),
            timeout: secs(5),
            save: [("rank".to_string(), "/rank".to_string())].into(),
            metric: Some("answer".into()),
        }
    );
    assert_eq!(
        p[4],
        Step::Choice {
            options: vec![
                (3, vec![Step::Think(Think::Exponential { mean: ms(500) })]),
                (1, vec![]),
            ]
        }
    );
    assert_eq!(
        p[5],
        Step::Set {
            vars: [
                ("tag".to_string(), json!("vu-${vu}")),
                ("zero".to_string(), json!(0))
            ]
            .into()
        }
    );
    assert_eq!(p[6], Step::Reconnect { resubscribe: false });
    assert_eq!(p[7], Step::Reconnect { resubscribe: true });
    assert_eq!(p[8], Step::Disconnect);
    assert_eq!(
        s.groups[2].steps[1],
        Step::Emit {
            event: "presence:get_online".into(),
            data: json!({}),
            metric: None,
        }
    );

    assert_eq!(
        s.phases,
        vec![
            Phase::Ramp {
                from: 0,
                to: 100,
                over: secs(10)
            },
            Phase::Hold { duration: secs(60) },
            Phase::Arrival {
                rate_per_sec: 2.5,
                from_per_sec: 2.5,
                duration: secs(4)
            },
            Phase::RampDown { over: secs(5) },
        ]
    );
    assert_eq!(s.peak_clients(), 110);
}

#[test]
fn defaults() {
    let s = ok(&format!(
        "{MINIMAL_TAIL}\n[[groups]]\nsteps = [{{ connect = \"/\" }}, {{ emit_ack = \"room:subscribe\" }}, {{ wait_for = \"room:updated\" }}]\n"
    ));
    assert_eq!(s.name, "t", "the file stem");
    assert_eq!(s.description, "");
    assert_eq!(
        s.tokens,
        TokenSource::Driver {
            join_room: None,
            role: "participant".into(),
            ttl: None,
        }
    );
    assert_eq!(s.groups[0].size, GroupSize::Weight(1));
    assert_eq!(s.groups[1].name, "group2");
    assert_eq!(
        s.groups[1].steps[0],
        Step::Connect {
            namespace: "/".into(),
            transport: Transport::WebSocket
        }
    );
    assert!(matches!(
        &s.groups[1].steps[1],
        Step::EmitAck { timeout, expect: None, metric: None, data, .. } if *timeout == DEFAULT_ACK_TIMEOUT && *data == json!({})
    ));
    assert!(matches!(
        &s.groups[1].steps[2],
        Step::WaitFor { timeout, matching: None, .. } if *timeout == DEFAULT_WAIT_TIMEOUT
    ));
    // Sum of phases + 30 s.
    assert_eq!(s.max_duration, secs(31));
}

#[test]
fn phase_forms() {
    let s = ok(r#"
[[groups]]
steps = [{ connect = "/" }]
[[phases]]
ramp = 50
over = "0s"
[[phases]]
ramp = 80
from = 60
over = "2s"
[[phases]]
ramp = 20
over = "1s"
[[phases]]
hold = "1.5s"
"#);
    assert_eq!(
        s.phases,
        vec![
            Phase::Ramp {
                from: 0,
                to: 50,
                over: Duration::ZERO
            },
            Phase::Ramp {
                from: 60,
                to: 80,
                over: secs(2)
            },
            Phase::Ramp {
                from: 80,
                to: 20,
                over: secs(1)
            },
            Phase::Hold { duration: ms(1500) },
        ]
    );
    assert_eq!(s.peak_clients(), 80);
}

#[test]
fn inline_phase_array_and_multiline_inline_tables() {
    // TOML 1.1: inline tables may span lines and end with a comma.
    let s = ok(r#"
phases = [
  { ramp = 10, over = "1s" },
  { hold = "2s" },
]
groups = [
  {
    name = "g",
    steps = [
      { connect = "/" },
      {
        emit_ack = "room:subscribe",
        data = { roomId = "r" },
      },
    ],
  },
]
"#);
    assert_eq!(s.groups[0].steps.len(), 2);
    assert_eq!(s.phases.len(), 2);
    assert!(
        matches!(&s.groups[0].steps[1], Step::EmitAck { data, .. } if *data == json!({"roomId": "r"}))
    );
}

#[test]
fn csv_tokens_resolve_against_the_file() {
    let text = format!("[tokens]\nsource = \"csv\"\npath = \"tokens.csv\"\n{MINIMAL_TAIL}");
    let c = parse_checked(&text, Path::new("/some/dir/x.toml"), &[]).unwrap();
    assert_eq!(
        c.scenario.tokens,
        TokenSource::Csv {
            path: PathBuf::from("/some/dir/tokens.csv")
        }
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.line == 3 && w.message.contains("does not exist")),
        "{:?}",
        c.warnings
    );
    // `path` alone means csv.
    let text = format!("[tokens]\npath = \"/abs/t.csv\"\n{MINIMAL_TAIL}");
    let s = parse(&text, Path::new("x.toml")).unwrap();
    assert_eq!(
        s.tokens,
        TokenSource::Csv {
            path: PathBuf::from("/abs/t.csv")
        }
    );
}

// ---- errors point at the right line -------------------------------------

#[test]
fn invalid_toml_points_at_the_line() {
    let es = errs("name = \"x\"\n\n[[groups]\nsteps = []\n");
    assert_eq!(es[0].line, 3, "{}", es[0]);
    assert!(es[0].message.starts_with("invalid TOML"));
    assert!(es[0].to_string().starts_with("t.toml:3:"));
}

#[test]
fn step_and_phase_kind_errors() {
    let text = r#"
[[groups]]
steps = [
  { connect = "/", think = "1s" },
  {},
  { think = "1s", namespace = "/" },
]
[[phases]]
ramp = 1
over = "1s"

[[phases]]

[[phases]]
hold = "1s"
ramp = 2
[[phases]]
hold = "1s"
over = "2s"
"#;
    for (line, needle) in [
        (
            4,
            "a step has one kind, this one has `connect` and `think`: split it into two steps",
        ),
        (5, "empty step: name its kind (connect, "),
        (6, "a think step"),
        (12, "phases[1]: empty phase"),
        (16, "a phase has one kind, this one has `hold` and `ramp`"),
        (19, "a hold phase"),
    ] {
        assert_err(text, line, needle);
    }
}

#[test]
fn unknown_step_kind() {
    let text = r#"
[[groups]]
steps = [
  { connect = "/" },
  { wait = "room:updated" },
]
[[phases]]
ramp = 1
over = "1s"
"#;
    assert_err(text, 5, "unknown step kind `wait`");
    let es = errs(text);
    assert_eq!(es[0].col, 5, "points at the key: {}", es[0]);
    assert!(
        es[0]
            .to_string()
            .starts_with("t.toml:5:5: unknown step kind")
    );
    // Did you mean.
    assert_err(
        &format!(
            "[[groups]]\nsteps = [{{ connect = \"/\" }}, {{ emitack = \"x:y\" }}]\n{MINIMAL_TAIL}"
        ),
        2,
        "did you mean `emit_ack`",
    );
}

#[test]
fn two_kinds_in_one_step() {
    assert_err(
        &format!(
            "[[groups]]\nsteps = [\n  {{ connect = \"/\", think = \"1s\" }},\n]\n{MINIMAL_TAIL}"
        ),
        3,
        "one kind",
    );
}

#[test]
fn unknown_keys() {
    assert_err(
        &format!(
            "[[groups]]\nsteps = [\n {{ connect = \"/\" }},\n {{ emit = \"a:b\", dat = 1 }},\n]\n{MINIMAL_TAIL}"
        ),
        4,
        "unknown key `dat` in a emit step (did you mean `data`?)",
    );
    assert_err(
        &format!("nmae = \"x\"\n{MINIMAL_TAIL}"),
        1,
        "did you mean `name`",
    );
    assert_err(
        &format!("[tokens]\nsource = \"driver\"\npath = \"x.csv\"\n{MINIMAL_TAIL}"),
        3,
        "unknown key `path` in tokens (driver)",
    );
}

#[test]
fn bad_durations() {
    let text = r#"
[[groups]]
steps = [
  { connect = "/" },
  { wait_for = "room:updated", timeout = "5" },
  { think = "fast" },
  { emit_ack = "room:subscribe", timeout = 5 },
  { think = { min = "3s", max = "1s" } },
]
[[phases]]
ramp = 1
over = "1 minute"
"#;
    assert_err(text, 5, "no unit");
    assert_err(text, 6, "bad duration");
    assert_err(text, 7, "a duration is a string with a unit");
    assert_err(text, 8, "max is less than min");
    assert_err(text, 12, "ramp.over");
    assert_eq!(errs(text).len(), 5);
}

#[test]
fn unknown_variables() {
    let text = r#"
[vars]
questions = 3

[[setup]]
action = "create_room"
with = { name = "r-${runId}-${vu}" }
save = ["roomId"]

[tokens]
join_room = "${room}"

[[groups]]
steps = [
  { connect = "/" },
  { subscribe = "${roomId}" },
  { loop = "${question}", steps = [{ think = "1s" }] },
  { emit = "a:b", data = { x = ["${qid}"], y = "${later}", z = "${fine:-1}" } },
  { wait_for = "a:c", save = { later = "/x" } },
]

[[phases]]
ramp = 1
over = "1s"
"#;
    assert_err(text, 7, "unknown variable `${vu}`");
    assert_err(text, 7, "`vu` exists only in the steps of a group");
    assert_err(
        text,
        11,
        "unknown variable `${room}` (did you mean `roomId`?)",
    );
    assert_err(
        text,
        17,
        "unknown variable `${question}` (did you mean `questions`?)",
    );
    assert_err(text, 18, "unknown variable `${qid}`");
    let es = errs(text);
    assert_eq!(es.len(), 4, "{es:?}");
}

#[test]
fn variables_from_every_source_are_known() {
    // A set-up save used before it is saved is unknown; built-ins, token
    // variables, group saves and `set` are known.
    let text = r#"
[[setup]]
action = "create_room"
with = { name = "${roomName}" }
save = ["roomId"]

[[setup]]
action = "create_prize"
with = { roomId = "${roomId}", name = "p" }
save = ["prizeId"]

[tokens]
join_room = "${roomId}"

[[groups]]
steps = [
  { set = { mine = "${userId}-${token}-${shard}-${runId}" } },
  { connect = "/rooms/${roomId}" },
  { emit = "x:y", data = { a = "${mine}", b = "${prizeId}", c = "${vu}", d = "${nowMs}" } },
]

[[phases]]
ramp = 1
over = "1s"
"#;
    assert_err(text, 4, "unknown variable `${roomName}`");
    assert_eq!(errs(text).len(), 1);
    let fixed = text.replace("${roomName}", "room-${runId}");
    ok(&fixed);
    // Saved by a later set-up action.
    let text = r#"
[[setup]]
action = "create_prize"
with = { roomId = "${roomId}", name = "p" }
[[setup]]
action = "create_room"
with = { name = "r" }
save = ["roomId"]
[[groups]]
steps = [{ think = "1s" }]
[[phases]]
ramp = 1
over = "1s"
"#;
    assert_err(text, 4, "saved by a later set-up action");
}

#[test]
fn environment_variables_are_known() {
    // PATH is set wherever tests run.
    ok(&format!(
        "[[groups]]\nsteps = [{{ set = {{ p = \"${{PATH}}\" }} }}]\n{MINIMAL_TAIL}"
    ));
}

#[test]
fn bad_templates() {
    assert_err(
        &format!("[[groups]]\nsteps = [{{ connect = \"/rooms/${{roomId\" }}]\n{MINIMAL_TAIL}"),
        2,
        "bad template",
    );
}

#[test]
fn groups_and_phases_must_exist() {
    let es = errs("name = \"x\"\n");
    assert!(es.iter().any(|d| d.message.starts_with("no groups")));
    assert!(es.iter().any(|d| d.message.starts_with("no phases")));
    assert_eq!(es[0].line, 1);
    assert_err("groups = []\nphases = []\n", 1, "groups is empty");
    assert_err("groups = []\nphases = []\n", 2, "phases is empty");
    assert_err(
        "[[groups]]\nname = \"g\"\n\n[[phases]]\nhold = \"1s\"\n",
        1,
        "has no steps",
    );
    assert_err(
        "[[groups]]\nsteps = []\n[[phases]]\nramp = 1\nover = \"1s\"\n",
        2,
        "steps is empty",
    );
    assert_err(
        "[[groups]]\nsteps = [{ connect = \"/\" }]\n[[phases]]\nramp = 0\nover = \"1s\"\n",
        3,
        "never start a client",
    );
    assert_err(
        &format!(
            "[[groups]]\nsteps = [{{ connect = \"/\", transport = \"ws\" }}, {{ loop = 2, steps = [] }}]\n{MINIMAL_TAIL}"
        ),
        2,
        "transport `ws`",
    );
    assert_err(
        &format!(
            "[[groups]]\nsteps = [{{ connect = \"/\" }}, {{ loop = 2, steps = [] }}]\n{MINIMAL_TAIL}"
        ),
        2,
        "loop: steps is empty",
    );
}

#[test]
fn weights_and_counts() {
    let text = r#"
[[groups]]
name = "a"
weight = 0
steps = [{ connect = "/" }]

[[groups]]
name = "b"
count = 0
steps = [{ connect = "/" }]

[[groups]]
name = "c"
count = 1
weight = 2
steps = [{ connect = "/" }]

[[groups]]
name = "a"
steps = [{ connect = "/" }]

[[phases]]
ramp = 10
over = "1s"
"#;
    assert_err(text, 4, "weight must be at least 1");
    assert_err(text, 9, "count must be at least 1");
    assert_err(text, 15, "not both");
    assert_err(text, 19, "duplicate group name `a`");
    assert_err(
        "[[groups]]\nsteps = [{ think = \"1s\" }]\n[[groups]]\nname = \"host\"\ncount = 5\nsteps = [{ think = \"1s\" }]\n[[phases]]\nramp = 3\nover = \"1s\"\n",
        5,
        "need 5 clients but the phases peak at 3",
    );
    assert_err(
        "[[groups]]\nsteps = [{ think = \"1s\" }]\n[[groups]]\ncount = 3\nsteps = [{ think = \"1s\" }]\n[[phases]]\nramp = 3\nover = \"1s\"\n",
        4,
        "none left for the weight groups",
    );
    assert_err(
        &format!(
            "[[groups]]\nsteps = [\n {{ connect = \"/\" }},\n {{ choice = [{{ weight = 0, steps = [] }}] }},\n]\n{MINIMAL_TAIL}"
        ),
        4,
        "weight must be between 1",
    );
}

#[test]
fn socket_steps_need_a_connection() {
    assert_err(
        &format!(
            "[[groups]]\nsteps = [\n  {{ think = \"1s\" }},\n  {{ subscribe = \"r\" }},\n]\n{MINIMAL_TAIL}"
        ),
        4,
        "needs a connection",
    );
    // Inside a loop, after a think.
    assert_err(
        &format!(
            "[[groups]]\nsteps = [\n  {{ loop = 2, steps = [\n    {{ think = \"1s\" }},\n    {{ emit = \"a:b\" }},\n  ] }},\n]\n{MINIMAL_TAIL}"
        ),
        5,
        "needs a connection",
    );
    // A connect in only one branch of a choice is not enough.
    assert_err(
        &format!(
            "[[groups]]\nsteps = [\n  {{ choice = [{{ steps = [{{ connect = \"/\" }}] }}, {{ steps = [] }}] }},\n  {{ disconnect = true }},\n]\n{MINIMAL_TAIL}"
        ),
        4,
        "needs a connection",
    );
    ok(&format!(
        "[[groups]]\nsteps = [\n  {{ choice = [{{ steps = [{{ connect = \"/\" }}] }}, {{ steps = [{{ connect = \"/\", transport = \"polling\" }}] }}] }},\n  {{ disconnect = true }},\n]\n{MINIMAL_TAIL}"
    ));
}

#[test]
fn names_and_values() {
    let text = r#"
[[groups]]
steps = [
  { connect = "rooms" },
  { emit = "connect" },
  { emit_ack = "a:b", save = { vu = "/x" } },
  { wait_for = "a:b", save = { x = "rank" } },
  { set = { "bad name" = 1 } },
  { loop = -1, steps = [{ think = "1s" }] },
  { loop = "lots", steps = [{ think = "1s" }] },
  { disconnect = false },
  { http = "create_room", stamp = true, with = { data = "${x}" } },
  { emit = "${ev}" },
]
[[phases]]
ramp = 1
over = "1s"
"#;
    assert_err(text, 4, "starts with '/'");
    assert_err(text, 5, "Socket.IO's own event");
    assert_err(text, 6, "built-in variable");
    assert_err(text, 7, "JSON pointer");
    assert_err(text, 8, "must be ASCII letters");
    assert_err(text, 9, "between 0 and");
    assert_err(text, 10, "is not a number");
    assert_err(text, 11, "does nothing");
    assert_err(text, 12, "must then be a table");
    assert_err(text, 13, "unknown variable `${ev}`");
}

#[test]
fn phase_errors() {
    let text = r#"
[[groups]]
steps = [{ think = "1s" }]

[[phases]]
ramp = 10

[[phases]]
hold = "0s"

[[phases]]
arrival = 0
over = "1s"

[[phases]]
rampdown = "1s"

[[phases]]
ramp = 10
over = "1s"
hold = "1s"
"#;
    assert_err(text, 6, "missing `over`");
    assert_err(text, 9, "longer than 0s");
    assert_err(text, 12, "more than 0");
    assert_err(
        text,
        16,
        "unknown phase kind `rampdown` (did you mean `ramp_down`?)",
    );
    assert_err(text, 21, "one kind");
}

#[test]
fn thresholds_syntax() {
    let text = r#"
[[groups]]
name = "g"
steps = [
  { connect = "/" },
  { emit_ack = "quiz:answer_submit", data = {} },
  { wait_for = "notification:received" },
  { http = "publish_app_event", with = { appId = "a", event = "${vu}:tick" }, stamp = true },
]
[[phases]]
ramp = 10
over = "1s"
"#;
    let known = ok(text).known_metrics();
    for good in [
        "ack.quiz:answer_submit.p99 < 100ms",
        "connect.p50<=1s",
        "errors.timeout.count <= 0",
        "errors.count < 1",
        "errors.rate < 0.1/s",
        "errors.RATE_LIMIT_EXCEEDED.count < 1",
        "errors.NOT_FOUND.count < 1",
        "errors.http_503.count < 1",
        "received.notification:received.count > 0",
        "fanout.bench:tick.p999 >= 2.5ms",
        "http.publish_app_event.p99 < 1s",
        "connect_failures.count < 1%",
        "disconnects.server.count < 1",
    ] {
        validate::check_threshold(good, &known).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for (bad, part) in [
        ("connect < 100ms", "expected METRIC.STAT"),
        ("connect.p98 < 1ms", "unknown STAT"),
        ("connect.p99 = 1ms", "expected `METRIC.STAT OP VALUE`"),
        ("connect.p99 < fast", "not a number"),
        ("connect.p99 < 5 minutes", "unknown unit"),
        ("connect_failures.rate < 1%", "`%` applies to `count` only"),
        // Traps that passed silently before: a bare number read as µs,
        // a misspelt metric counted as 0, a metric the scenario never
        // records.
        ("connect.p99 < 250", "needs a time unit: us, ms or s"),
        (
            "errors.timout.count < 1",
            "unknown metric `errors.timout` (did you mean `errors.timeout`?)",
        ),
        (
            "errors.RATE_LIMIT_EXCEDED.count < 1",
            "(did you mean `errors.RATE_LIMIT_EXCEEDED`?)",
        ),
        (
            "ack.quiz:answer_submt.p99 < 1s",
            "(did you mean `ack.quiz:answer_submit`?)",
        ),
        ("ack.presence:get_online.p99 < 1s", "unknown metric"),
        (
            "conect_failures.count < 1",
            "(did you mean `connect_failures`?)",
        ),
    ] {
        let e = validate::check_threshold(bad, &known).unwrap_err();
        assert!(e.contains(part), "{bad}: {e}");
    }
    assert_err(
        &format!(
            "thresholds = [\n  \"connect.p99 < 1s\",\n  \"connect.p98 < 1s\",\n]\n{MINIMAL_TAIL}"
        ),
        3,
        "unknown STAT `p98`",
    );
    assert_err(
        &format!("thresholds = [\n  \"errors.timout.count < 1\",\n]\n{MINIMAL_TAIL}"),
        2,
        "unknown metric `errors.timout` (did you mean `errors.timeout`?)",
    );
}

#[test]
fn several_errors_in_file_order() {
    let text = "[[groups]]\nsteps = [{ think = \"x\" }]\n[[phases]]\nhold = \"y\"\n";
    let e = parse(text, Path::new("dir/s.toml")).unwrap_err();
    let lines: Vec<String> = e.to_string().lines().map(String::from).collect();
    assert!(
        lines[0].starts_with("dir/s.toml:2:20: think: bad duration"),
        "{e}"
    );
    assert!(
        lines[1].starts_with("dir/s.toml:4:8: hold: bad duration"),
        "{e}"
    );
}

#[test]
fn load_reports_missing_files() {
    let e = load(Path::new("/nonexistent/x.toml"), &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/x.toml: cannot read"),
        "{e}"
    );
}

// ---- warnings -----------------------------------------------------------

#[test]
fn driver_actions_are_checked_against_the_reference_profile() {
    let text = r#"
[[setup]]
action = "create_rooom"

[[setup]]
action = "create_room"
with = { name = "r" }
save = ["roomId", "room"]

[[groups]]
steps = [
  { http = "publish_question" },
  { http = "my_custom_thing" },
]

[[phases]]
ramp = 1
over = "1s"
"#;
    let c = checked(text);
    let w: Vec<String> = c.warnings.iter().map(|d| d.to_string()).collect();
    assert!(
        w.iter().any(|x| x.starts_with("t.toml:3:10: warning: action `create_rooom` is not in the reference profile (did you mean `create_room`?)")),
        "{w:#?}"
    );
    assert!(w.iter().any(|x| x.starts_with("t.toml:8:19: warning: action `create_room` of the reference profile does not extract `room`")), "{w:#?}");
    assert!(
        w.iter()
            .any(|x| x.starts_with("t.toml:12:") && x.contains("${questionId}")),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|x| x.starts_with("t.toml:13:") && x.contains("my_custom_thing")),
        "{w:#?}"
    );
    assert_eq!(w.len(), 4, "{w:#?}");
}

#[test]
fn other_warnings() {
    let c = checked(&format!(
        "max_duration = \"100ms\"\n[tokens]\nrole = \"moderator\"\n{MINIMAL_TAIL}"
    ));
    let w: Vec<(usize, String)> = c
        .warnings
        .iter()
        .map(|d| (d.line, d.message.clone()))
        .collect();
    assert!(
        w.iter()
            .any(|(l, m)| *l == 1 && m.contains("shorter than the phases")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|(l, m)| *l == 3 && m.contains("no effect without join_room")),
        "{w:?}"
    );
}

// ---- overrides ----------------------------------------------------------

fn sched(phases: &str, groups: &str) -> Scenario {
    ok(&format!("{phases}\n{groups}"))
}

const HOST_PLAYERS: &str = r#"
[[groups]]
name = "host"
count = 1
steps = [{ think = "1s" }]
[[groups]]
name = "players"
weight = 3
steps = [{ think = "1s" }]
[[groups]]
name = "watchers"
weight = 1
steps = [{ think = "1s" }]
"#;

#[test]
fn clients_override_rescales_peaks() {
    let s = sched(
        r#"phases = [
  { ramp = 500, over = "10s" },
  { ramp = 1000, over = "10s" },
  { hold = "1m" },
  { ramp_down = "5s" },
]"#,
        HOST_PLAYERS,
    );
    assert_eq!(s.peak_clients(), 1000);
    let small = s.clone().with_overrides(Some(20), None);
    assert_eq!(small.peak_clients(), 20);
    assert_eq!(
        small.phases[..2],
        [
            Phase::Ramp {
                from: 0,
                to: 10,
                over: secs(10)
            },
            Phase::Ramp {
                from: 10,
                to: 20,
                over: secs(10)
            },
        ]
    );
    assert_eq!(small.max_duration, s.max_duration);
    assert_eq!(small.group_sizes(20), vec![1, 14, 5]);
    assert_eq!(s.group_sizes(1000), vec![1, 749, 250]);
    // Fewer clients than the count groups need.
    assert!(
        s.check_clients(1)
            .unwrap_err()
            .contains("no client for the weight groups")
    );
    assert!(s.check_clients(0).is_err());
    s.check_clients(2).unwrap();
    assert!(s.clone().try_with_overrides(Some(1), None).is_err());
    // Bigger.
    assert_eq!(s.with_overrides(Some(5000), None).peak_clients(), 5000);
}

#[test]
fn clients_override_scales_arrivals() {
    let s = sched(
        r#"phases = [{ ramp = 10, over = "1s" }, { arrival = 9, over = "10s" }]"#,
        "[[groups]]\nsteps = [{ think = \"1s\" }]",
    );
    assert_eq!(s.peak_clients(), 100);
    let t = s.with_overrides(Some(20), None);
    assert_eq!(t.peak_clients(), 20);
    match &t.phases[1] {
        Phase::Arrival { rate_per_sec, .. } => assert!((rate_per_sec - 1.8).abs() < 1e-9),
        p => panic!("{p:?}"),
    }
}

#[test]
fn duration_override_stretches_and_cuts_holds() {
    let s = sched(
        r#"phases = [
  { ramp = 100, over = "10s" },
  { hold = "1m" },
  { ramp = 200, over = "10s" },
  { hold = "3m" },
  { ramp_down = "10s" },
]"#,
        "[[groups]]\nsteps = [{ think = \"1s\" }]",
    );
    assert_eq!(s.max_duration, secs(30 + 240 + 30));
    // Stretch: 30 s fixed, 570 s of holds in the ratio 1:3.
    let long = s.clone().with_overrides(None, Some(secs(600)));
    assert_eq!(long.max_duration, secs(600));
    assert_eq!(
        long.phases[1],
        Phase::Hold {
            duration: ms(142_500)
        }
    );
    assert_eq!(
        long.phases[3],
        Phase::Hold {
            duration: ms(427_500)
        }
    );
    assert_eq!(long.phases_duration(), secs(600));
    // Cut: 10 s of holds.
    let short = s.clone().with_overrides(None, Some(secs(40)));
    assert_eq!(short.phases_duration(), secs(40));
    assert_eq!(short.phases[1], Phase::Hold { duration: ms(2500) });
    assert_eq!(short.phases[3], Phase::Hold { duration: ms(7500) });
    // Exactly the fixed phases: holds go.
    let exact = s.clone().with_overrides(None, Some(secs(30)));
    assert_eq!(exact.phases.len(), 3);
    assert_eq!(exact.phases_duration(), secs(30));
    // Shorter than the fixed phases: holds go, the rest shrink.
    let tiny = s.with_overrides(Some(20), Some(secs(15)));
    assert_eq!(
        tiny.phases,
        vec![
            Phase::Ramp {
                from: 0,
                to: 10,
                over: secs(5)
            },
            Phase::Ramp {
                from: 10,
                to: 20,
                over: secs(5)
            },
            Phase::RampDown { over: secs(5) },
        ]
    );
    assert_eq!(tiny.max_duration, secs(15));
    assert_eq!(tiny.peak_clients(), 20);
}

#[test]
fn duration_override_without_holds() {
    let s = sched(
        r#"phases = [{ ramp = 10, over = "10s" }]"#,
        "[[groups]]\nsteps = [{ think = \"1s\" }]",
    );
    let t = s.clone().with_overrides(None, Some(secs(60)));
    assert_eq!(t.phases, s.phases);
    assert_eq!(t.max_duration, secs(60));
}

#[test]
fn group_sizes_share_the_rest() {
    let s = sched(r#"phases = [{ ramp = 10, over = "1s" }]"#, HOST_PLAYERS);
    assert_eq!(s.group_sizes(10), vec![1, 7, 2]);
    assert_eq!(s.group_sizes(2), vec![1, 1, 0]);
    assert_eq!(s.group_sizes(1), vec![1, 0, 0]);
    assert_eq!(s.group_sizes(0), vec![0, 0, 0]);
    assert_eq!(s.fixed_clients(), 1);
}

// ---- the shipped scenarios ----------------------------------------------

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_validates_without_warnings() {
    let files = shipped();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "app-events",
        "lottery-draw",
        "presence-churn",
        "quiz-burst",
        "reconnect-storm",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    for f in &files {
        let c = load_checked(f, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.warnings.is_empty(), "{}: {:?}", f.display(), c.warnings);
        let s = c.scenario;
        assert_eq!(
            s.name,
            f.file_stem().unwrap().to_string_lossy(),
            "name = file stem"
        );
        assert!(!s.description.is_empty(), "{}: describe it", f.display());
        assert!(
            s.peak_clients() >= 100,
            "{}: a realistic default size",
            f.display()
        );
        // Runs small.
        s.check_clients(20)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let small = s.with_overrides(Some(20), Some(secs(30)));
        assert_eq!(small.peak_clients(), 20, "{}", f.display());
        assert!(small.phases_duration() <= secs(30));
    }
}

#[test]
fn scenario_vars_are_templates_over_run_builtins() {
    let s = ok(&format!(
        "[vars]\nroomName = \"quiz ${{runId}} shard ${{shard}}\"\n{MINIMAL_TAIL}"
    ));
    assert_eq!(s.vars["roomName"], json!("quiz ${runId} shard ${shard}"));
    assert_err(
        &format!("[vars]\na = 1\nb = \"${{a}}-${{vu}}\"\n{MINIMAL_TAIL}"),
        3,
        "scenario vars may use only runId",
    );
}

#[test]
fn readme_examples_parse() {
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/README.md"),
    )
    .unwrap();
    // The complete example.
    let start = readme.find("## A first scenario").unwrap();
    let block = &readme[start..];
    let from = block.find("```toml\n").unwrap() + "```toml\n".len();
    let to = block[from..].find("```").unwrap();
    let c = checked(&block[from..from + to]);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.scenario.name, "subscribe-and-listen");
    // Every one-line step example of the steps table parses as a step.
    let table = &readme[readme.find("| kind | example | options |").unwrap()..];
    let table = &table[..table.find("\n\n").unwrap()];
    let mut n = 0;
    for line in table.lines().skip(2) {
        let example = line.split('|').nth(2).unwrap().trim().trim_matches('`');
        if example.contains("...") {
            continue;
        }
        let text = format!(
            "[vars]\nroomId = \"r\"\nqid = \"q\"\n[[groups]]\nsteps = [{{ connect = \"/\" }}, {example}]\n{MINIMAL_TAIL}"
        );
        let text = text.replace("${app}", "x");
        parse_checked(&text, Path::new("t.toml"), &[]).unwrap_or_else(|e| panic!("{example}: {e}"));
        n += 1;
    }
    assert!(n >= 6, "{n}");
}

// ---- --var ---------------------------------------------------------------

const VAR_SCENARIO: &str = r#"
[vars]
questions = "${QUIZ_QUESTIONS_UNSET_IN_TESTS:-5}"
room = "quiz"

[[groups]]
steps = [
  { connect = "/" },
  { loop = "${questions}", steps = [{ emit_ack = "x", data = { t = "${timeLimit:-10}" }, save = { rank = "/rank" } }] },
  { emit = "y", data = { r = "${rank}", who = "${region}" } },
]

[[phases]]
ramp = 1
over = "0s"
"#;

fn with_vars(text: &str, vars: &[(&str, &str)]) -> Result<Scenario, ScenarioError> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse_checked(text, Path::new("t.toml"), &vars).map(|c| c.scenario)
}

#[test]
fn var_flags_set_what_the_scenario_reads() {
    // `region` has no default: only --var (or the environment) provides it.
    let es = errs(VAR_SCENARIO);
    assert!(
        es.iter().any(|d| d.message.contains("`${region}`")),
        "{es:?}"
    );
    let s = with_vars(
        VAR_SCENARIO,
        &[
            ("region", "eu"),
            ("questions", "3"),
            ("timeLimit", "{\"s\":2}"),
            ("QUIZ_QUESTIONS_UNSET_IN_TESTS", "7"),
            ("room", "x"),
            ("room", "y"),
        ],
    )
    .unwrap();
    assert_eq!(s.overrides["region"], json!("eu"));
    assert_eq!(s.overrides["questions"], json!(3), "JSON when it parses");
    assert_eq!(s.overrides["timeLimit"], json!({"s": 2}));
    assert_eq!(s.overrides["QUIZ_QUESTIONS_UNSET_IN_TESTS"], json!(7));
    assert_eq!(s.overrides["room"], json!("y"), "the last --var K wins");
    assert_eq!(s.vars["room"], json!("quiz"), "[vars] is kept as written");
}

#[test]
fn var_flags_for_unknown_or_assigned_names_are_errors() {
    let e = with_vars(VAR_SCENARIO, &[("region", "eu"), ("qestions", "3")]).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.errors.len(), 1, "{msg}");
    assert!(
        msg.starts_with("t.toml: --var qestions: the scenario reads no variable `qestions` (did you mean `questions`?)"),
        "{msg}"
    );
    assert!(msg.contains("it reads: "), "{msg}");
    for assigned in ["rank", "vu", "token", "runId"] {
        let e = with_vars(VAR_SCENARIO, &[("region", "eu"), (assigned, "1")]).unwrap_err();
        assert!(
            e.to_string().contains(&format!(
                "--var {assigned}: `{assigned}` is assigned by the run"
            )),
            "{e}"
        );
    }
}

// ---- feeders -------------------------------------------------------------

/// A scenario in `dir` whose `[[feeders]]` body is `feeders`, and whose
/// steps use `${user}`.
fn feeder_scenario(dir: &Path, feeders: &str) -> String {
    let _ = dir;
    format!(
        r#"
{feeders}

[[groups]]
steps = [{{ connect = "/" }}, {{ emit = "x", data = {{ u = "${{user}}" }} }}]

[[phases]]
ramp = 3
over = "0s"
"#
    )
}

fn parse_in(dir: &Path, text: &str) -> Result<Checked, ScenarioError> {
    parse_checked(text, &dir.join("s.toml"), &[])
}

#[test]
fn feeders_read_rows_relative_to_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), "user,room\nu1,r1\nu2,r2\n").unwrap();
    std::fs::write(
        dir.path().join("more.json"),
        r#"[{"n": 1}, {"n": 2}, {"n": 3}]"#,
    )
    .unwrap();
    let text = feeder_scenario(
        dir.path(),
        "[[feeders]]\nfile = \"users.csv\"\n[[feeders]]\nfile = \"more.json\"\npick = \"round-robin\"",
    );
    let c = parse_in(dir.path(), &text).unwrap();
    let f = &c.scenario.feeders;
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].pick, feeder::Pick::PerVu, "per-vu by default");
    assert_eq!(f[0].columns, ["user", "room"]);
    assert_eq!(f[0].file, dir.path().join("users.csv"));
    assert_eq!(f[1].pick, feeder::Pick::RoundRobin);
    assert_eq!(f[1].rows[2], vec![json!(3)]);
    // 2 rows for 3 clients: per-vu wraps, and says so.
    assert!(
        c.warnings
            .iter()
            .any(|w| w.line == 3 && w.message.contains("per-vu wraps around")),
        "{:?}",
        c.warnings
    );
    // Without the feeder, `${user}` is unknown.
    let e = parse_in(dir.path(), &feeder_scenario(dir.path(), "")).unwrap_err();
    assert!(e.to_string().contains("unknown variable `${user}`"), "{e}");
    // Feeder variables are the run's: --var cannot set them.
    let e = parse_checked(
        &text,
        &dir.path().join("s.toml"),
        &[("user".into(), "x".into())],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("--var user: `user` is assigned"),
        "{e}"
    );
}

#[test]
fn feeder_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.csv"), "user,room\nu1\n").unwrap();
    std::fs::write(dir.path().join("tok.csv"), "token,user\nt,u\n").unwrap();
    std::fs::write(dir.path().join("name.csv"), "user,my-room\nu,r\n").unwrap();
    let cases = [
        ("file = \"missing.csv\"", "cannot read"),
        ("file = \"bad.csv\"", "line 2"),
        ("file = \"tok.csv\"", "`token` is already given"),
        ("file = \"name.csv\"", "`my-room` must be ASCII letters"),
        (
            "file = \"bad.csv\"\npick = \"round-robbin\"",
            "(did you mean `round-robin`?)",
        ),
        ("fil = \"bad.csv\"", "unknown key `fil`"),
    ];
    for (body, needle) in cases {
        let text = feeder_scenario(dir.path(), &format!("[[feeders]]\n{body}"));
        let e = parse_in(dir.path(), &text).unwrap_err();
        assert!(
            e.errors
                .iter()
                .any(|d| d.line >= 3 && d.line <= 4 && d.message.contains(needle)),
            "{body}: expected {needle:?} at line 3 or 4, got:\n{e}"
        );
    }
}

#[test]
fn keep_mismatches_is_bounded() {
    let base = "[[groups]]\nsteps = [{ connect = \"/\" }]\n[[phases]]\nramp = 1\nover = \"0s\"\n";
    assert_eq!(ok(base).keep_mismatches, DEFAULT_KEEP_MISMATCHES);
    assert_eq!(
        ok(&format!("keep_mismatches = 0\n{base}")).keep_mismatches,
        0
    );
    assert_err(
        &format!("keep_mismatches = 1001\n{base}"),
        1,
        "keep_mismatches must be between 0 and 1000",
    );
    assert_err(
        &format!("keep_mismatches = \"5\"\n{base}"),
        1,
        "keep_mismatches must be an integer",
    );
}

#[test]
fn ramping_arrivals_and_max_vus() {
    let text = r#"
max_vus = 30
[[groups]]
steps = [{ connect = "/" }]
[[phases]]
arrival = 40
from = 10
over = "2s"
[[phases]]
arrival = 5
over = "2s"
"#;
    let s = ok(text);
    assert_eq!(
        s.phases[0],
        Phase::Arrival {
            rate_per_sec: 40.0,
            from_per_sec: 10.0,
            duration: Duration::from_secs(2)
        }
    );
    assert_eq!(s.phases[0].arrivals(), 50);
    assert_eq!(s.max_vus, Some(30));
    assert_eq!(s.peak_clients(), 30, "capped: 50 arrivals, 30 at once");
    // --clients scales both rates and the cap.
    let scaled = s.clone().with_overrides(Some(15), None);
    assert_eq!(scaled.max_vus, Some(15));
    assert!(matches!(
        scaled.phases[0],
        Phase::Arrival { rate_per_sec, from_per_sec, .. }
            if (rate_per_sec - 20.0).abs() < 1e-9 && (from_per_sec - 5.0).abs() < 1e-9
    ));
    assert_eq!(ok(&text.replace("max_vus = 30\n", "")).peak_clients(), 50);

    let bad = |from: &str, to: &str| {
        text.replace(
            "arrival = 40\nfrom = 10",
            &format!("arrival = {to}\nfrom = {from}"),
        )
    };
    assert_err(&bad("-1", "40"), 7, "a number of at least 0");
    assert_err(&bad("0", "0"), 6, "must be more than 0");
    assert_eq!(ok(&bad("20", "0")).phases[0].arrivals(), 20, "down to 0/s");
    assert_err(
        &text.replace("max_vus = 30", "max_vus = 0"),
        2,
        "max_vus must be between 1",
    );
    let c = checked(
        "max_vus = 3\n[[groups]]\nsteps = [{ connect = \"/\" }]\n[[phases]]\nramp = 1\nover = \"0s\"\n",
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.message.contains("max_vus caps")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn group_tags_split_metrics_and_thresholds_select_them() {
    let text = r#"
thresholds = [
  "[region=eu]ack.presence:get_online.p99 < 1s",
  "[region=eu]errors.count < 1",
  "[region=us]vus_started.count >= 1",
]
[[groups]]
name = "eu"
tags = { region = "eu", tier = "free-1.0" }
steps = [{ connect = "/" }, { emit_ack = "presence:get_online", data = {} }]
[[groups]]
name = "us"
tags = { region = "us" }
steps = [{ connect = "/" }]
[[phases]]
ramp = 2
over = "0s"
"#;
    let s = ok(text);
    assert_eq!(s.groups[0].tags["tier"], "free-1.0");
    let known = s.known_metrics();
    assert!(
        known
            .check("[tier=free-1.0]sent.presence:get_online")
            .is_ok()
    );
    // Only the eu group emits: the us copy is never recorded.
    let e = known
        .check("[region=us]ack.presence:get_online")
        .unwrap_err();
    assert!(
        e.contains("did you mean `[region=eu]ack.presence:get_online`?"),
        "{e}"
    );
    assert!(known.check("[region=fr]connect").is_err());

    assert_err(
        &text.replace("tier = \"free-1.0\"", "tier = \"a b\""),
        9,
        "a tag value is ASCII letters",
    );
    assert_err(
        &text.replace("tier = \"free-1.0\"", "\"9x\" = \"a\""),
        9,
        "a tag name is ASCII letters",
    );
    assert_err(
        &text.replace("tier = \"free-1.0\"", "tier = 3"),
        9,
        "must be a string",
    );
    assert_err(
        &text.replace("[region=us]vus", "[region=uk]vus"),
        5,
        "unknown metric `[region=uk]vus_started`",
    );
}

#[test]
fn token_ttl_is_whole_seconds() {
    let base = "[tokens]\nttl = \"TTL\"\n[[groups]]\nsteps = [{ connect = \"/\" }]\n[[phases]]\nramp = 1\nover = \"0s\"\n";
    let s = ok(&base.replace("TTL", "90s"));
    assert!(matches!(
        s.tokens,
        TokenSource::Driver { ttl: Some(d), .. } if d == Duration::from_secs(90)
    ));
    assert_err(
        &base.replace("TTL", "1500ms"),
        2,
        "tokens.ttl is whole seconds",
    );
    assert_err(
        &base.replace("TTL", "0s"),
        2,
        "tokens.ttl must be longer than 0s",
    );
    assert_err(
        &base.replace(
            "ttl = \"TTL\"",
            "source = \"csv\"\npath = \"t.csv\"\nttl = \"5s\"",
        ),
        4,
        "unknown key `ttl` in tokens (csv)",
    );
}

// ---- stable metric names (`metric`) ---------------------------------------

const STAGES: &str = r#"
[[groups]]
name = "stages"
steps = [
  { set = { app = "lg${nowMs}v${vu}" } },
  { connect = "/" },
  { emit = "${app}:hello", data = {}, metric = "stage:hello" },
  { loop = 2, steps = [
      { http = "publish_app_event", with = { appId = "${app}", event = "${app}:tick" }, stamp = true, metric = "stage:tick" },
  ] },
  { wait_for = "${app}:done", metric = "stage:done" },
]
[[phases]]
ramp = 10
over = "1s"
"#;

#[test]
fn metric_names_the_events_of_emit_wait_for_and_stamped_http() {
    let s = ok(STAGES);
    let steps = &s.groups[0].steps;
    assert!(matches!(&steps[2], Step::Emit { metric: Some(m), .. } if m == "stage:hello"));
    let Step::Loop { steps: inner, .. } = &steps[3] else {
        panic!("{:?}", steps[3])
    };
    assert!(matches!(&inner[0], Step::Http { metric: Some(m), .. } if m == "stage:tick"));
    assert!(matches!(&steps[4], Step::WaitFor { metric: Some(m), .. } if m == "stage:done"));

    // Thresholds know the stable names, and no longer the run-time ones.
    let known = s.known_metrics();
    for good in [
        "sent.stage:hello",
        "fanout.stage:tick",
        "received.stage:tick",
        "received.stage:done",
        "fanout.stage:done",
    ] {
        known.check(good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for gone in [
        "sent.lg1v0:hello",
        "fanout.lg1v0:tick",
        "received.lg1v0:done",
    ] {
        assert!(known.check(gone).is_err(), "{gone}");
    }
    let e = known.check("fanout.stage:tik").unwrap_err();
    assert!(e.contains("did you mean `fanout.stage:tick`?"), "{e}");
    let run_time: Vec<&String> = known.names().iter().filter(|n| n.contains("${")).collect();
    assert_eq!(run_time, ["errors.http_${status}"]);

    // What the VUs receive is recorded under those names.
    let m = EventMetrics::of(&s.groups);
    assert_eq!(m.name_of("lg1765000000v3:tick"), "stage:tick");
    assert_eq!(m.name_of("lg1765000999v7:tick"), "stage:tick");
    assert_eq!(m.name_of("lg1v0:done"), "stage:done");
    // `emit` names only what it sends; other events keep their names.
    assert_eq!(m.name_of("lg1v0:hello"), "lg1v0:hello");
    assert_eq!(m.name_of("room:updated"), "room:updated");
    assert_eq!(
        EventMetrics::of(&ok(MINIMAL_TAIL).groups).name_of("x:tick"),
        "x:tick"
    );
}

#[test]
fn metric_is_a_name_without_spaces_and_http_needs_a_stamped_event() {
    let line = |needle: &str| {
        STAGES
            .lines()
            .position(|l| l.contains(needle))
            .expect(needle)
            + 1
    };
    assert_err(
        &STAGES.replace("\"stage:done\"", "\"stage done\""),
        line("stage:done"),
        "metric: a name without spaces",
    );
    assert_err(
        &STAGES.replace("\"stage:hello\"", "\"\""),
        line("stage:hello"),
        "metric: a name without spaces",
    );
    assert_err(
        &STAGES.replace("metric = \"stage:done\"", "metric = 3"),
        line("stage:done"),
        "metric",
    );
    assert_err(
        &STAGES.replace("stamp = true, ", ""),
        line("stage:tick"),
        "it needs stamp = true and with.event",
    );
    assert_err(
        &STAGES.replace("event = \"${app}:tick\" }", "data = {} }"),
        line("stage:tick"),
        "it needs stamp = true and with.event",
    );
    // Other step kinds have no `metric`.
    let es = errs(&STAGES.replace("{ connect = \"/\" }", "{ connect = \"/\", metric = \"c\" }"));
    assert!(
        es.iter().any(|d| d.message.contains("metric")),
        "{:?}",
        es.iter().map(|d| d.to_string()).collect::<Vec<_>>()
    );
}

/// Every name a shipped scenario records is the same in every run: none
/// is made of a run-time value (an app id with the time in it), so
/// `reports compare` of two runs finds every metric on both sides.
#[test]
fn every_shipped_scenario_records_stable_names() {
    for f in shipped() {
        let s = load_checked(&f, &[])
            .unwrap_or_else(|e| panic!("{e}"))
            .scenario;
        let known = s.known_metrics();
        let run_time: Vec<&String> = known
            .names()
            .iter()
            .filter(|n| n.contains("${") && n.as_str() != "errors.http_${status}")
            .collect();
        assert!(
            run_time.is_empty(),
            "{}: names made of run-time values (give their steps a `metric`): {run_time:?}",
            f.display()
        );
    }
}
