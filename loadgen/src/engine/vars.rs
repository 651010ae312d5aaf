//! Variables and templates of a run, expectations (subset match), and the
//! per-VU random numbers (think times, choices).
//!
//! A template sees, first match wins: the VU's own variables (`save` of
//! `emit_ack` / `wait_for` / `http`, and `set`), the built-ins (`vu`,
//! `runId`, `nowMs`, `shard`, and `token` / `userId` from the token
//! source), the set-up's saved variables, the scenario's `vars`, then the
//! environment and `${name:-default}`. The grammar and the environment and
//! default steps are `driver::template`'s (the profiles' own); this module
//! only supplies the lookup of each caller.

use std::time::Duration;

use driver::profile::Vars;
use driver::template::{self, TemplateError};
use serde_json::Value;

use crate::scenario::Think;

pub(crate) use driver::template::is_template;

/// `lookup` asked once per name: a value such as `nowMs` is the same
/// everywhere in one expansion.
fn once_per_name(lookup: impl Fn(&str) -> Option<Value>) -> impl Fn(&str) -> Option<Value> {
    let seen = std::cell::RefCell::new(Vars::new());
    move |name| {
        if let Some(v) = seen.borrow().get(name) {
            return Some(v.clone());
        }
        let v = lookup(name)?;
        seen.borrow_mut().insert(name.to_owned(), v.clone());
        Some(v)
    }
}

/// Expands `v` with the variables `lookup` gives for the names it uses.
pub(crate) fn expand_with(
    v: &Value,
    lookup: impl Fn(&str) -> Option<Value>,
) -> Result<Value, String> {
    template::expand_json_with(v, &once_per_name(lookup)).map_err(|e: TemplateError| e.to_string())
}

/// Expands a template string into a string (a non-string value is written
/// as JSON).
pub(crate) fn expand_text(
    s: &str,
    lookup: impl Fn(&str) -> Option<Value>,
) -> Result<String, String> {
    if !is_template(s) {
        return Ok(s.to_owned());
    }
    Ok(
        match template::expand_str_with(s, &once_per_name(lookup)).map_err(|e| e.to_string())? {
            Value::String(s) => s,
            other => other.to_string(),
        },
    )
}

/// Expands the scenario's `vars` once per run with the run-level built-ins
/// (`runId`, `shard`, `nowMs`), the `--var` values and the environment; a
/// value that cannot be expanded yet (it names a per-VU variable) is kept
/// as written. The `--var` values are then laid over the result, so that
/// they win over a `[vars]` entry of the same name as well.
pub(crate) fn expand_scenario_vars(scenario: &crate::scenario::Scenario, builtins: &Vars) -> Vars {
    let mut out = Vars::new();
    for (k, v) in &scenario.vars {
        let expanded = expand_with(v, |n| {
            builtins
                .get(n)
                .or_else(|| scenario.overrides.get(n))
                .or_else(|| out.get(n))
                .cloned()
        })
        .unwrap_or_else(|_| v.clone());
        out.insert(k.clone(), expanded);
    }
    out.extend(scenario.overrides.clone());
    out
}

/// `expected` is a subset of `actual`: every key of an expected object is
/// in the actual object with a matching value (recursively); arrays match
/// element by element with the same length; numbers compare by value
/// (`1` matches `1.0`); anything else must be equal.
pub(crate) fn subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|x| subset(v, x))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| subset(x, y))
        }
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => expected == actual,
    }
}

/// A number from a loop count: a JSON number or a decimal string.
pub(crate) fn as_count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Microseconds since the Unix epoch (the clock of `sentAtUs`).
pub(crate) fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch (`nowMs`).
pub(crate) fn unix_ms() -> u64 {
    unix_us() / 1000
}

/// SplitMix64: 8 bytes of state per VU, deterministic from the run's seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for VU `vu` of a run seeded with `seed`.
    pub(crate) fn for_vu(seed: u64, vu: u64) -> Rng {
        let mut r = Rng(seed ^ vu.wrapping_mul(0xA076_1D64_78BD_642F));
        r.next_u64();
        r
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// Longest exponential think, in means: the tail is cut there so every
/// think is bounded.
pub const EXPONENTIAL_CAP: f64 = 10.0;

/// A think time: `Fixed` exactly; `Uniform(a, b)` in [min, max];
/// `Exponential { mean }` with that mean, cut at [`EXPONENTIAL_CAP`] × mean.
pub(crate) fn think_duration(t: &Think, rng: &mut Rng) -> Duration {
    match t {
        Think::Fixed(d) => *d,
        Think::Uniform(a, b) => {
            let (lo, hi) = if a <= b { (*a, *b) } else { (*b, *a) };
            lo + (hi - lo).mul_f64(rng.unit())
        }
        Think::Exponential { mean } => {
            let x = -(1.0 - rng.unit()).ln();
            mean.mul_f64(x.min(EXPONENTIAL_CAP))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_rules() {
        assert!(subset(&json!({"a": 1}), &json!({"a": 1.0, "b": 2})));
        assert!(subset(
            &json!({"o": {"x": true}}),
            &json!({"o": {"x": true, "y": 0}})
        ));
        assert!(!subset(&json!({"a": 1}), &json!({"b": 1})));
        assert!(!subset(&json!([1, 2]), &json!([1, 2, 3])));
        assert!(subset(&json!([{"a": 1}]), &json!([{"a": 1, "b": 0}])));
        assert!(subset(&json!("s"), &json!("s")));
        assert!(!subset(&json!({"a": null}), &json!({})));
    }

    #[test]
    fn counts() {
        assert_eq!(as_count(&json!(3)), Some(3));
        assert_eq!(as_count(&json!("12")), Some(12));
        assert_eq!(as_count(&json!(2.0)), Some(2));
        assert_eq!(as_count(&json!("x")), None);
        assert_eq!(as_count(&json!(-1)), None);
    }

    #[test]
    fn expansion_with_layers() {
        let v = json!({"room": "${roomId}", "n": "${vu}", "text": "vu ${vu} of ${runId}", "k": "plain"});
        let out = expand_with(&v, |n| match n {
            "roomId" => Some(json!("room_1")),
            "vu" => Some(json!(7)),
            "runId" => Some(json!("r1")),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            out,
            json!({"room": "room_1", "n": 7, "text": "vu 7 of r1", "k": "plain"})
        );
        assert!(expand_with(&json!("${nope_loadgen_engine_var}"), |_| None).is_err());
        assert_eq!(expand_text("a-${x:-9}", |_| None).unwrap(), "a-9");
    }

    #[test]
    fn a_name_is_looked_up_once_per_expansion() {
        let calls = std::cell::Cell::new(0);
        let out = expand_with(&json!(["${t}", "${t}-${t}"]), |_| {
            calls.set(calls.get() + 1);
            Some(json!(calls.get()))
        })
        .unwrap();
        assert_eq!(out, json!([1, "1-1"]));
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn scenario_vars_expand_once() {
        let mut s = crate::scenario::parse(
            r#"
            [vars]
            a = "room-${runId}"
            c = 5
            d = "${n:-1}x"
            e = 7
            [[groups]]
            steps = [{ connect = "/" }, { emit = "x", data = ["${a}", "${c}", "${d}", "${e}"] }]
            [[phases]]
            ramp = 1
            over = "0s"
            "#,
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        // Not valid in a file, but kept as written if it ever gets there.
        s.vars.insert("b".into(), json!("${vu}"));
        let mut b = Vars::new();
        b.insert("runId".into(), json!("r9"));
        let out = expand_scenario_vars(&s, &b);
        assert_eq!(out["a"], json!("room-r9"));
        assert_eq!(out["b"], json!("${vu}"));
        assert_eq!(out["c"], json!(5));
        assert_eq!(out["d"], json!("1x"));
        // --var values win over the defaults and over [vars] itself.
        s.overrides.insert("n".into(), json!(3));
        s.overrides.insert("e".into(), json!("eight"));
        let out = expand_scenario_vars(&s, &b);
        assert_eq!(out["d"], json!("3x"));
        assert_eq!(out["e"], json!("eight"));
        assert_eq!(out["n"], json!(3));
    }

    #[test]
    fn think_distributions_stay_within_bounds() {
        let mut rng = Rng::for_vu(42, 3);
        let ms = Duration::from_millis;
        for _ in 0..10_000 {
            assert_eq!(think_duration(&Think::Fixed(ms(250)), &mut rng), ms(250));
            let u = think_duration(&Think::Uniform(ms(100), ms(200)), &mut rng);
            assert!(u >= ms(100) && u <= ms(200), "{u:?}");
            let u = think_duration(&Think::Uniform(ms(200), ms(100)), &mut rng);
            assert!(u >= ms(100) && u <= ms(200), "{u:?}");
        }
        let mean = ms(100);
        let n = 20_000;
        let mut total = Duration::ZERO;
        for _ in 0..n {
            let e = think_duration(&Think::Exponential { mean }, &mut rng);
            assert!(e <= mean.mul_f64(EXPONENTIAL_CAP), "{e:?}");
            total += e;
        }
        let avg = total / n;
        assert!(avg > ms(90) && avg < ms(110), "mean {avg:?}");
        // Uniform really spreads.
        let mut lo = 0;
        for _ in 0..1000 {
            if think_duration(&Think::Uniform(ms(0), ms(100)), &mut rng) < ms(50) {
                lo += 1;
            }
        }
        assert!((400..600).contains(&lo), "{lo}");
    }

    #[test]
    fn rng_is_deterministic_per_vu() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_vu(1, 2).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::for_vu(1, 2).next_u64(), Rng::for_vu(1, 3).next_u64());
        let mut r = Rng::for_vu(5, 5);
        for _ in 0..1000 {
            assert!(r.below(7) < 7);
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
