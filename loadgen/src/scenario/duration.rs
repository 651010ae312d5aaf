//! Durations as written in scenarios and on the command line: a number with
//! a unit (`us`, `ms`, `s`, `m`, `h`), e.g. `250ms`, `5s`, `1.5s`, `2m`;
//! several may follow each other (`1m30s`).

use std::time::Duration;

/// Parses `"250ms"`, `"5s"`, `"1.5s"`, `"2m"`, `"1h"`, `"1m30s"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration (expected e.g. \"250ms\", \"5s\", \"2m\")".into());
    }
    let mut rest = s;
    let mut total = 0f64; // microseconds
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(format!(
                "bad duration {text:?} (expected a number and a unit: \"250ms\", \"5s\", \"1.5s\", \"2m\")"
            ));
        }
        let unit_len = tail
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "us" | "µs" => 1.0,
            "ms" => 1e3,
            "s" => 1e6,
            "m" => 60e6,
            "h" => 3600e6,
            "" => {
                return Err(format!(
                    "duration {text:?} has no unit (write e.g. \"{num}s\" or \"{num}ms\")"
                ));
            }
            other => {
                return Err(format!(
                    "unknown unit {other:?} in duration {text:?} (units: us, ms, s, m, h)"
                ));
            }
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("bad number {num:?} in duration {text:?}"))?;
        total += n * scale;
        rest = tail;
    }
    // Up to ten years: no overflow, and no scenario means more.
    if !total.is_finite() || total > 3.2e14 {
        return Err(format!("duration {text:?} is too long"));
    }
    Ok(Duration::from_micros(total.round() as u64))
}

/// Shortest readable form: `250ms`, `5s`, `1.5s`, `2m`, `1m30s`, `1h`.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        return "0s".into();
    }
    if !us.is_multiple_of(1000) {
        return format!("{us}us");
    }
    let ms = us / 1000;
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if !ms.is_multiple_of(1000) {
        let s = ms as f64 / 1000.0;
        return format!("{s}s");
    }
    let mut s = ms / 1000;
    let mut out = String::new();
    if s >= 3600 {
        out.push_str(&format!("{}h", s / 3600));
        s %= 3600;
    }
    if s >= 60 {
        out.push_str(&format!("{}m", s / 60));
        s %= 60;
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}
