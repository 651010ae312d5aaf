//! `docs/protocol.md` (the human reference) agrees with the crate: its
//! "Event catalog" table lists exactly the entries of `CATALOG` with the same
//! section, direction, namespaces and ack; its "Error codes" table lists
//! exactly `ErrorCode::ALL` with the same description and HTTP status; its
//! limits table lists every constant of `protocol::limits` with its value.

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::error::AuthFailure;
use protocol::{CATALOG, ErrorCode, limits};

const EVENT_HEADER: [&str; 5] = ["event", "section", "direction", "namespaces", "ack"];
const ERROR_HEADER: [&str; 3] = ["code", "description", "HTTP status"];
const LIMITS_HEADER: [&str; 3] = ["constant", "value", "rule"];

fn reference() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The cells of a Markdown table row, trimmed; `None` for a non-table line.
fn cells(line: &str) -> Option<Vec<String>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(|c| c.trim().to_string()).collect())
}

fn is_separator(row: &[String]) -> bool {
    row.iter()
        .all(|c| !c.is_empty() && c.chars().all(|ch| ch == '-' || ch == ':'))
}

/// A parsed table: its rows' cells and the lines as written, for messages.
struct Table {
    rows: Vec<Vec<String>>,
    lines: Vec<String>,
}

/// The body of the one table whose header row is `header`.
fn table(doc: &str, header: &[&str]) -> Table {
    let lines: Vec<&str> = doc.lines().collect();
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| cells(l).is_some_and(|c| c == header))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        starts.len(),
        1,
        "docs/protocol.md must have exactly one table with header {header:?}, found {}",
        starts.len()
    );
    let start = starts[0];
    let sep = lines
        .get(start + 1)
        .and_then(|l| cells(l))
        .unwrap_or_default();
    assert!(
        sep.len() == header.len() && is_separator(&sep),
        "the table with header {header:?} needs a separator row right below it"
    );
    let mut table = Table {
        rows: Vec::new(),
        lines: Vec::new(),
    };
    for line in &lines[start + 2..] {
        let Some(row) = cells(line) else { break };
        table.rows.push(row);
        table.lines.push(line.to_string());
    }
    table
}

/// `` `x` `` gives `x`; anything else `None`.
fn code_span(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?
        .strip_suffix('`')
        .filter(|s| !s.contains('`'))
}

fn fail(what: &str, problems: &[String], expected: &[String], actual: &[String]) -> ! {
    panic!(
        "docs/protocol.md: the {what} table disagrees with the protocol crate.\n\n\
         Problems:\n  {}\n\nExpected rows (in any order):\n{}\n\nActual rows:\n{}\n",
        problems.join("\n  "),
        expected.join("\n"),
        actual.join("\n"),
    )
}

/// Compares keyed rows: every expected key exactly once with identical
/// cells, no other keys.
fn compare(
    what: &str,
    table: &Table,
    key_of: impl Fn(&str) -> Option<String>,
    expected: &BTreeMap<String, Vec<String>>,
    render: impl Fn(&str, &[String]) -> String,
) {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (row, line) in table.rows.iter().zip(&table.lines) {
        let width = expected.values().next().map_or(0, |v| v.len() + 1);
        if row.len() != width {
            problems.push(format!(
                "row has {} cells, expected {width}: {line}",
                row.len()
            ));
            continue;
        }
        let Some(key) = key_of(&row[0]) else {
            problems.push(format!("first cell is not a single `code span`: {line}"));
            continue;
        };
        *seen.entry(key.clone()).or_default() += 1;
        match expected.get(&key) {
            None => problems.push(format!("extra row for `{key}`: {line}")),
            Some(want) if want[..] != row[1..] => problems.push(format!(
                "row for `{key}` differs:\n    expected: {}\n    actual:   {line}",
                render(&key, want)
            )),
            Some(_) => {}
        }
    }
    for key in expected.keys() {
        match seen.get(key).copied().unwrap_or(0) {
            0 => problems.push(format!("no row for `{key}`")),
            1 => {}
            n => problems.push(format!("{n} rows for `{key}`, expected one")),
        }
    }
    if !problems.is_empty() {
        let expected_lines: Vec<String> = expected.iter().map(|(k, v)| render(k, v)).collect();
        fail(what, &problems, &expected_lines, &table.lines);
    }
}

fn render_row(key: &str, rest: &[String]) -> String {
    format!("| `{key}` | {} |", rest.join(" | "))
}

#[test]
fn event_catalog_table_matches_the_catalog() {
    let doc = reference();
    let table = table(&doc, &EVENT_HEADER);
    let expected: BTreeMap<String, Vec<String>> = CATALOG
        .iter()
        .map(|e| {
            (
                e.name.to_string(),
                vec![
                    e.section.to_string(),
                    e.direction.arrow().to_string(),
                    e.namespaces.label().to_string(),
                    e.ack.label().to_string(),
                ],
            )
        })
        .collect();
    assert_eq!(expected.len(), CATALOG.len(), "duplicate names in CATALOG");
    compare(
        "Event catalog",
        &table,
        |c| code_span(c).map(str::to_string),
        &expected,
        render_row,
    );
}

#[test]
fn error_code_table_matches_error_code_all() {
    let doc = reference();
    let table = table(&doc, &ERROR_HEADER);
    let expected: BTreeMap<String, Vec<String>> = ErrorCode::ALL
        .iter()
        .map(|c| {
            (
                c.as_str().to_string(),
                vec![c.description().to_string(), c.http_status().to_string()],
            )
        })
        .collect();
    compare(
        "Error codes",
        &table,
        |c| code_span(c).map(str::to_string),
        &expected,
        render_row,
    );
}

fn seconds(d: Duration) -> String {
    assert_eq!(d.subsec_nanos(), 0, "limits table writes whole seconds");
    format!("{} s", d.as_secs())
}

#[test]
fn limits_table_lists_every_limit_with_its_value() {
    let doc = reference();
    let table = table(&doc, &LIMITS_HEADER);
    // Every constant of protocol::limits, with its value as the table
    // writes it; a new constant belongs here and in the table.
    let limits: [(&str, String); 9] = [
        (
            "CLIENT_EVENTS_PER_MINUTE",
            limits::CLIENT_EVENTS_PER_MINUTE.to_string(),
        ),
        (
            "APP_EVENTS_PER_ROOM_PER_SECOND",
            limits::APP_EVENTS_PER_ROOM_PER_SECOND.to_string(),
        ),
        (
            "APP_EVENTS_PER_APP_PER_MINUTE",
            limits::APP_EVENTS_PER_APP_PER_MINUTE.to_string(),
        ),
        ("TIMESTAMP_MAX_SKEW", seconds(limits::TIMESTAMP_MAX_SKEW)),
        (
            "MAX_CLIENT_EVENT_BYTES",
            limits::MAX_CLIENT_EVENT_BYTES.to_string(),
        ),
        (
            "MAX_ENGINE_PACKET_BYTES",
            limits::MAX_ENGINE_PACKET_BYTES.to_string(),
        ),
        (
            "MAX_APP_EVENT_BYTES",
            limits::MAX_APP_EVENT_BYTES.to_string(),
        ),
        ("MINUTE", seconds(limits::MINUTE)),
        ("SECOND", seconds(limits::SECOND)),
    ];
    // Only the value column is compared; the rule column is prose.
    let mut problems = Vec::new();
    let mut found = BTreeMap::new();
    for (row, line) in table.rows.iter().zip(&table.lines) {
        match row.first().and_then(|c| code_span(c)) {
            Some(name) => {
                if found
                    .insert(name.to_string(), row.get(1).cloned())
                    .is_some()
                {
                    problems.push(format!("two rows for `{name}`"));
                }
            }
            None => problems.push(format!("first cell is not a `code span`: {line}")),
        }
    }
    for (name, value) in &limits {
        match found.remove(*name) {
            None => problems.push(format!("no row for `{name}`")),
            Some(actual) if actual.as_deref() != Some(value.as_str()) => problems.push(format!(
                "`{name}`: expected value `{value}`, the table says {actual:?}"
            )),
            Some(_) => {}
        }
    }
    for name in found.keys() {
        problems.push(format!(
            "row for `{name}`, which is not a constant of protocol::limits"
        ));
    }
    if !problems.is_empty() {
        let expected: Vec<String> = limits
            .iter()
            .map(|(n, v)| format!("| `{n}` | {v} | ... |"))
            .collect();
        fail("limits", &problems, &expected, &table.lines);
    }
}

#[test]
fn every_connect_error_message_is_documented() {
    let doc = reference();
    for failure in AuthFailure::ALL {
        let message = failure.message();
        assert!(
            doc.contains(&format!("`{message}`")),
            "docs/protocol.md does not give the connect_error message `{message}`"
        );
    }
}

#[test]
fn links_the_decisions() {
    assert!(
        reference().contains("](protocol-notes.md)"),
        "docs/protocol.md must link to protocol-notes.md"
    );
}
