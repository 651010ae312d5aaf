//! Data feeders: rows of variables read from a CSV file (the header row
//! names the variables) or a JSON file (an array of objects, the keys name
//! them), handed to virtual users `per-vu`, `round-robin` or `random`.
//!
//! The file is read when the scenario is loaded, so `validate` checks its
//! variable names against the templates that use them, and worker
//! processes get the rows with the rest of the plan instead of reading
//! the file again. Reading is bounded before anything is allocated
//! ([`MAX_BYTES`], [`MAX_ROWS`], [`MAX_COLUMNS`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest feeder file.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Most rows of one feeder.
pub const MAX_ROWS: usize = 100_000;
/// Most variables (columns, keys) of one feeder.
pub const MAX_COLUMNS: usize = 64;

/// One `[[feeders]]` entry with its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feeder {
    /// Resolved against the scenario file's folder.
    pub file: PathBuf,
    pub pick: Pick,
    /// Variable names, in file order.
    pub columns: Vec<String>,
    /// Never empty; each row has one value per column (CSV cells are
    /// strings, JSON values keep their type).
    pub rows: Vec<Vec<Value>>,
}

/// Which row a virtual user gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pick {
    /// Row `vu mod rows`, for the VU's whole life (wraps when the rows run
    /// out).
    PerVu,
    /// The next row of a counter the process's VUs share, when the VU
    /// starts and at each iteration of a `loop`.
    RoundRobin,
    /// A random row (the VU's seeded generator), when the VU starts and at
    /// each iteration of a `loop`.
    Random,
}

impl Pick {
    /// The names a scenario file uses, in [`Pick::parse`] order.
    pub const NAMES: &'static [&'static str] = &["per-vu", "round-robin", "random"];

    pub fn parse(s: &str) -> Option<Pick> {
        match s {
            "per-vu" => Some(Pick::PerVu),
            "round-robin" => Some(Pick::RoundRobin),
            "random" => Some(Pick::Random),
            _ => None,
        }
    }
}

/// Reads a feeder file: `.csv` or `.json` by its extension. Returns the
/// column names (unchecked: the parser checks them as variable names) and
/// the rows.
pub(crate) fn read(path: &Path) -> Result<(Vec<String>, Vec<Vec<Value>>), String> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if ext != "csv" && ext != "json" {
        return Err("name a .csv or .json file".into());
    }
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    f.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!("larger than {} MiB", MAX_BYTES >> 20));
    }
    let (columns, rows) = if ext == "csv" {
        read_csv(&bytes)?
    } else {
        read_json(&bytes)?
    };
    if columns.len() > MAX_COLUMNS {
        return Err(format!(
            "{} variables, at most {MAX_COLUMNS}",
            columns.len()
        ));
    }
    if rows.is_empty() {
        return Err("no rows".into());
    }
    Ok((columns, rows))
}

fn read_csv(bytes: &[u8]) -> Result<(Vec<String>, Vec<Vec<Value>>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let columns: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(str::to_owned)
        .collect();
    if columns.len() > MAX_COLUMNS {
        return Err(format!("{} columns, at most {MAX_COLUMNS}", columns.len()));
    }
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(csv_error)?;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(format!("more than {MAX_ROWS} rows"));
        }
        rows.push(rec.iter().map(|c| Value::String(c.to_owned())).collect());
    }
    Ok((columns, rows))
}

/// A CSV error as a line number and what is wrong there.
fn csv_error(e: csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => format!(
            "line {}: {len} fields, the header has {expected_len}",
            pos.as_ref().map_or(0, csv::Position::line)
        ),
        _ => e.to_string(),
    }
}

fn read_json(bytes: &[u8]) -> Result<(Vec<String>, Vec<Vec<Value>>), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Array(items) = v else {
        return Err("expected an array of objects".into());
    };
    if items.len() > MAX_ROWS {
        return Err(format!("more than {MAX_ROWS} rows"));
    }
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(mut o) = item else {
            return Err(format!("[{i}] is not an object"));
        };
        if i == 0 {
            columns = o.keys().cloned().collect();
        }
        if o.len() != columns.len() || !columns.iter().all(|c| o.contains_key(c)) {
            let keys: Vec<&str> = o.keys().map(String::as_str).collect();
            return Err(format!(
                "[{i}] has the keys {keys:?}, [0] has {columns:?}: every object needs the same keys"
            ));
        }
        rows.push(
            columns
                .iter()
                .map(|c| o.remove(c).unwrap_or(Value::Null))
                .collect(),
        );
    }
    Ok((columns, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn csv_and_json_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(dir.path(), "a.csv", "user, room\n u1 ,\"r,1\"\n\nu2,r2\n");
        let (c, r) = read(&p).unwrap();
        assert_eq!(c, ["user", "room"]);
        assert_eq!(
            r,
            vec![
                vec![json!("u1"), json!("r,1")],
                vec![json!("u2"), json!("r2")]
            ]
        );
        let p = file(
            dir.path(),
            "b.json",
            r#"[{"n": 1, "s": "x"}, {"s": "y", "n": 2}]"#,
        );
        let (c, r) = read(&p).unwrap();
        assert_eq!(c, ["n", "s"]);
        assert_eq!(r[1], vec![json!(2), json!("y")], "JSON keeps types");
    }

    #[test]
    fn bad_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let err = |name: &str, text: &str| read(&file(dir.path(), name, text)).unwrap_err();
        assert!(err("a.txt", "x").contains(".csv or .json"));
        assert!(
            err("a.csv", "a,b\n1\n").contains("line 2"),
            "{}",
            err("a.csv", "a,b\n1\n")
        );
        assert_eq!(err("b.csv", "a,b\n"), "no rows");
        assert!(err("a.json", "{}").contains("array of objects"));
        assert!(err("b.json", "[1]").contains("[0] is not an object"));
        assert!(err("c.json", r#"[{"a":1},{"b":1}]"#).contains("same keys"));
        let many = format!("n\n{}", "1\n".repeat(MAX_ROWS + 1));
        assert!(err("many.csv", &many).contains("more than"));
        assert!(
            read(&dir.path().join("missing.csv"))
                .unwrap_err()
                .contains("cannot read")
        );
    }
}
