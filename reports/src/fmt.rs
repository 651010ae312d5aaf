//! How numbers read: durations, rates, deltas.

/// `850µs`, `12.3ms`, `4.56s` (the report format's, as loadgen prints).
pub fn duration(us: u64) -> String {
    formats::fmt_us(us)
}

/// [`duration`] of a fractional number of µs (a mean, a limit).
pub fn duration_f(us: f64) -> String {
    formats::fmt_us_f(us)
}

/// A signed duration change: `+1.2ms`, `-850µs`, `±0µs`.
pub fn duration_delta(us: f64) -> String {
    if us == 0.0 {
        return "±0µs".to_owned();
    }
    let sign = if us > 0.0 { "+" } else { "-" };
    format!("{sign}{}", duration_f(us.abs()))
}

/// A relative change: `+8.3%`, `-12%`, `±0%`, `+∞` (from zero).
pub fn percent_delta(pct: f64) -> String {
    if pct.is_infinite() {
        return if pct > 0.0 { "+∞%" } else { "-∞%" }.to_owned();
    }
    if pct.abs() < 0.05 {
        return "±0%".to_owned();
    }
    if pct.abs() >= 100.0 {
        format!("{pct:+.0}%")
    } else {
        format!("{pct:+.1}%")
    }
}

/// A rate: `1234.5/s`.
pub fn rate(per_sec: f64) -> String {
    format!("{per_sec:.1}/s")
}

/// A percentage: `0.12%`.
pub fn pct(v: f64) -> String {
    if v == 0.0 {
        "0%".to_owned()
    } else if v < 0.01 {
        format!("{v:.4}%")
    } else {
        format!("{v:.2}%")
    }
}

/// Thousands separated by commas: `12,345`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let head = s.len() % 3;
    let mut out = s[..head].to_owned();
    for chunk in s.as_bytes()[head..].chunks(3) {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(std::str::from_utf8(chunk).expect("ASCII digits"));
    }
    out
}

/// Escapes text for HTML and SVG (the XML escaping of [`formats::ci`]).
pub fn esc(s: &str) -> String {
    formats::ci::xml_escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration_f(12.34), "12.3µs");
        assert_eq!(duration_f(1500.0), "1.5ms");
        assert_eq!(duration_delta(-850.0), "-850µs");
        assert_eq!(duration_delta(0.0), "±0µs");
        assert_eq!(percent_delta(8.333), "+8.3%");
        assert_eq!(percent_delta(-250.0), "-250%");
        assert_eq!(percent_delta(f64::INFINITY), "+∞%");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(pct(0.1234), "0.12%");
        assert_eq!(esc("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
    }
}
