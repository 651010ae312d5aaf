//! Shared helpers of loadgen's integration tests: scenario files whose
//! members work in a room made in set-up, the report checked against the
//! JSON Schema in `formats`, and runs against an in-process reference server.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Members' steps: ask who is online twice, a second apart, expecting
/// success.
pub const ASK_TWICE: &str = r#"  { emit_ack = "presence:get_online", data = { roomId = "${roomId}" }, expect = { success = true } },
  { think = "1s" },
  { emit_ack = "presence:get_online", data = { roomId = "${roomId}" }, expect = { success = true } },
"#;

/// A scenario of one group, `members`: each connects to `/`, subscribes to
/// a room made in set-up, then takes `steps`. `clients` ramp up over
/// 500 ms, then the load holds for `hold`.
pub struct Members<'a> {
    pub name: &'a str,
    pub description: &'a str,
    /// The set-up room's name, before ` ${runId}`.
    pub room: &'a str,
    /// The steps after subscribing, one a line, each line ending in `,\n`.
    pub steps: &'a str,
    pub clients: u32,
    pub hold: &'a str,
}

impl Members<'_> {
    /// The scenario file's text.
    pub fn toml(&self) -> String {
        let Members {
            name,
            description,
            room,
            steps,
            clients,
            hold,
        } = self;
        format!(
            r#"
name = "{name}"
description = "{description}"

[[setup]]
action = "create_room"
with = {{ name = "{room} ${{runId}}" }}
save = ["roomId"]

[tokens]
source = "driver"

[[groups]]
name = "members"
weight = 1
steps = [
  {{ connect = "/" }},
  {{ subscribe = "${{roomId}}" }},
{steps}]

[[phases]]
ramp = {clients}
over = "500ms"

[[phases]]
hold = "{hold}"
"#
        )
    }
}

/// A scenario without set-up: `clients` VUs connect to `/` over
/// WebSocket, subscribe to `room` and think 300 ms; `tokens` is the body
/// of its `[tokens]` table.
pub fn subscribe_only(name: &str, room: &str, tokens: &str, clients: u32) -> String {
    format!(
        r#"
name = "{name}"
description = "connect and subscribe"

[vars]
roomId = "{room}"

[tokens]
{tokens}

[[groups]]
name = "members"
weight = 1
steps = [
  {{ connect = "/" }},
  {{ subscribe = "${{roomId}}" }},
  {{ think = "300ms" }},
]

[[phases]]
ramp = {clients}
over = "300ms"

[[phases]]
hold = "700ms"
"#
    )
}

/// Writes `text` to `dir/name`; returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Where `instance` breaks the run report's schema (the one `formats`
/// ships), `path: error` each: loadgen's real output is checked against it,
/// so neither the schema nor the fixtures other crates keep can go stale.
pub fn schema_errors(instance: &Value) -> Vec<String> {
    formats::schema::report_errors(instance)
        .iter()
        .map(|e| format!("{}: {}", e.pointer, e.message))
        .collect()
}

/// The report in `dir`, checked against the committed schema: its text and
/// its JSON.
pub fn checked_report(dir: &Path) -> (String, Value) {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    let report: Value = serde_json::from_str(&text).expect("report.json is JSON");
    let errors = schema_errors(&report);
    assert!(errors.is_empty(), "{errors:#?}\n{text}");
    (text, report)
}

/// The reference server in-process, and quiet run options for `file`
/// against it that write to `dir/out` (also returned).
pub async fn against_reference_server(
    dir: &Path,
    file: &Path,
) -> (server::Embedded, loadgen::RunOpts, PathBuf) {
    let server = server::Embedded::start().await.unwrap();
    let out = dir.join("out");
    let mut opts = loadgen::RunOpts::new(file);
    opts.target = Some(server.url());
    opts.quiet = true;
    opts.out = Some(out.clone());
    (server, opts, out)
}
