//! Comparing a baseline with a new run: per metric, the stats side by side
//! with their deltas and a verdict; for conformance results, the new
//! failures and the fixed cases.

use std::collections::{BTreeMap, BTreeSet};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::model::{ConformanceRun, LoadRun};
use crate::thresholds::{ChangeRule, Limit, Rules, SHOWN, Stat, StatKind};
use formats::conformance::Verdict as CaseVerdict;

/// The verdict of a stat or a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Better,
    Same,
    Worse,
    /// Too few samples in one of the runs to tell.
    InsufficientData,
    /// No threshold applies.
    NotJudged,
    /// The metric is only in the baseline.
    OnlyInBase,
    /// The metric is only in the new run.
    OnlyInNew,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Same => "same",
            Verdict::Worse => "WORSE",
            Verdict::InsufficientData => "insufficient data",
            Verdict::NotJudged => "not judged",
            Verdict::OnlyInBase => "only in base",
            Verdict::OnlyInNew => "only in new",
        }
    }

    pub fn emoji(self) -> &'static str {
        match self {
            Verdict::Better => "🟢",
            Verdict::Same => "⚪",
            Verdict::Worse => "🔴",
            Verdict::InsufficientData => "❔",
            Verdict::NotJudged => "",
            Verdict::OnlyInBase | Verdict::OnlyInNew => "➖",
        }
    }
}

/// One stat of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatRow {
    /// `p99`, `rate`, `error-rate`, …
    pub stat: String,
    /// `us`, `per-second`, `count` or `percent`.
    pub unit: &'static str,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// `new - base` in `unit` (percentage points for `percent`).
    pub delta: Option<f64>,
    /// The change relative to the baseline, percent.
    pub delta_pct: Option<f64>,
    /// The rules that judged it, canonical.
    pub thresholds: Vec<String>,
    pub verdict: Verdict,
    /// Why there is no verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Each baseline run's value, when the runs were judged one by one
    /// ([`Method::RunToRun`]; `base` is then their mean).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub base_runs: Vec<f64>,
    /// Each new run's value, likewise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub new_runs: Vec<f64>,
    #[serde(skip)]
    pub kind: Option<Stat>,
}

/// One metric (a histogram, or `errors` for the run-wide errors).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricRow {
    pub name: String,
    pub verdict: Verdict,
    pub stats: Vec<StatRow>,
}

/// A run, as a comparison names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    pub file: String,
    pub tool: String,
    /// The run's `--label`.
    pub label: Option<String>,
    pub scenario: String,
    pub scenario_hash: String,
    pub target: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub clients: u32,
    pub complete: bool,
}

impl RunInfo {
    fn of(r: &LoadRun) -> RunInfo {
        RunInfo {
            file: r.path.clone(),
            tool: r.report.tool.clone(),
            label: r.report.label.clone(),
            scenario: r.report.scenario.name.clone(),
            scenario_hash: r.report.scenario.hash.clone(),
            target: r.report.target.clone(),
            started_at: r.report.started_at.clone(),
            duration_ms: r.report.duration_ms,
            clients: r.report.clients,
            complete: r.report.complete,
        }
    }

    /// `scenario chat, 100 clients, 10.0 s, started …`.
    pub fn describe(&self) -> String {
        format!(
            "{}scenario `{}`, {} clients, {:.1} s, started {}{}, {}",
            self.label
                .as_ref()
                .map(|l| format!("label `{l}`, "))
                .unwrap_or_default(),
            self.scenario,
            self.clients,
            self.duration_ms as f64 / 1000.0,
            self.started_at,
            if self.complete { "" } else { ", INCOMPLETE" },
            self.tool
        )
    }
}

/// Error counters by code, side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeRow {
    pub code: String,
    pub base: u64,
    pub new: u64,
}

/// Metric counts by verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub worse: usize,
    pub better: usize,
    pub same: usize,
    pub insufficient_data: usize,
    pub not_judged: usize,
    pub only_in_base: usize,
    pub only_in_new: usize,
}

/// Two loadgen runs compared, or two sets of runs of the same builds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadComparison {
    /// `loadgen`.
    pub kind: &'static str,
    /// The first baseline run.
    pub base: RunInfo,
    /// The first new run.
    pub new: RunInfo,
    /// Every baseline run (one per file given).
    pub base_runs: Vec<RunInfo>,
    /// Every new run.
    pub new_runs: Vec<RunInfo>,
    /// How changes were told from noise ([`Method`]).
    pub method: Method,
    pub thresholds: Vec<String>,
    pub min_samples: u64,
    /// Histograms by name, then `errors`.
    pub metrics: Vec<MetricRow>,
    pub errors_by_code: Vec<CodeRow>,
    pub counts: Counts,
    /// At least one metric is worse.
    pub regression: bool,
    pub warnings: Vec<String>,
}

/// How a change beyond its threshold is told from noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// At least [`MIN_RUNS`] runs per side: Welch's t-test on the per-run
    /// values of the stat (run-to-run spread).
    RunToRun,
    /// Fewer runs: each side's runs pooled, and the 95 % intervals of the
    /// pooled stat must not overlap (within-run noise only).
    WithinRun,
}

impl Method {
    pub fn describe(self) -> &'static str {
        match self {
            Method::RunToRun => {
                "run-to-run: Welch's t-test (95%, two-sided) on the per-run values of each stat"
            }
            Method::WithinRun => {
                "within-run: 95% intervals of each side's pooled stat; no run-to-run noise estimate"
            }
        }
    }
}

/// Runs per side that the run-to-run method needs.
pub const MIN_RUNS: usize = 3;

/// The name of the run-wide errors row.
pub const ERRORS: &str = "errors";

/// One metric on one side: every run's histogram (with its length in
/// seconds), and all of them added up.
struct Sided<'a> {
    runs: Vec<(&'a Histogram<u64>, f64)>,
    pooled: Histogram<u64>,
    secs: f64,
}

impl<'a> Sided<'a> {
    /// `None` when no run of the side recorded `name`.
    fn of(runs: &'a [LoadRun], name: &str) -> Option<Sided<'a>> {
        let runs: Vec<(&Histogram<u64>, f64)> = runs
            .iter()
            .filter_map(|r| r.metrics.histograms.get(name).map(|h| (h, r.secs())))
            .collect();
        let (first, _) = runs.first()?;
        let mut pooled = (*first).clone();
        for (h, _) in &runs[1..] {
            // Every loadgen histogram has the same bounds: adding cannot fail.
            let _ = pooled.add(*h);
        }
        let secs = runs.iter().map(|(_, s)| s).sum();
        Some(Sided { runs, pooled, secs })
    }

    fn fewest_samples(&self) -> u64 {
        self.runs.iter().map(|(h, _)| h.len()).min().unwrap_or(0)
    }

    /// The stat of every run that has a value for it.
    fn per_run(&self, stat: Stat) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|(h, s)| stat_value(h, *s, stat))
            .collect()
    }
}

/// Compares baseline runs with new runs (one or more each, of the same
/// scenario). With at least [`MIN_RUNS`] on each side a change is judged
/// against the run-to-run spread ([`Method::RunToRun`]); else against the
/// pooled runs' own intervals.
pub fn compare_load(
    base: &[LoadRun],
    new: &[LoadRun],
    rules: &Rules,
    min_samples: u64,
) -> LoadComparison {
    assert!(
        !base.is_empty() && !new.is_empty(),
        "a comparison needs a run on each side"
    );
    let method = if base.len() >= MIN_RUNS && new.len() >= MIN_RUNS {
        Method::RunToRun
    } else {
        Method::WithinRun
    };
    let mut warnings = Vec::new();
    let first = &base[0];
    for (which, r) in base
        .iter()
        .map(|r| ("base", r))
        .chain(new.iter().map(|r| ("new", r)))
    {
        let (bs, ns) = (&first.report.scenario, &r.report.scenario);
        if bs.name != ns.name {
            warnings.push(format!(
                "different scenarios: `{}` ({}) and `{}` ({which} {})",
                bs.name, first.path, ns.name, r.path
            ));
        } else if bs.hash != ns.hash {
            warnings.push(format!(
                "scenario `{}` changed between the runs (file hash {} in {}, {} in {which} {})",
                bs.name, bs.hash, first.path, ns.hash, r.path
            ));
        }
        if !r.report.complete {
            warnings.push(format!(
                "the {which} run {} is incomplete: {}",
                r.path,
                r.report.abort_reason.as_deref().unwrap_or("aborted")
            ));
        }
    }
    if method == Method::WithinRun {
        warnings.push(format!(
            "{} base and {} new run{}: no run-to-run noise estimate (the guard uses the pooled runs' \
             own 95% intervals, which miss run-to-run variance); give at least {MIN_RUNS} runs per side \
             (--base A B C --new D E F)",
            base.len(),
            new.len(),
            if new.len() == 1 { "" } else { "s" }
        ));
    }
    let names: BTreeSet<&String> = base
        .iter()
        .chain(new)
        .flat_map(|r| r.metrics.histograms.keys())
        .collect();
    let mut metrics = Vec::new();
    for name in &names {
        metrics.push(compare_metric(
            name,
            Sided::of(base, name),
            Sided::of(new, name),
            method,
            rules,
            min_samples,
        ));
    }
    metrics.push(compare_errors(base, new, method, rules, min_samples));

    let mut codes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in base {
        for (code, n) in r.errors_by_code() {
            codes.entry(code).or_default().0 += n;
        }
    }
    for r in new {
        for (code, n) in r.errors_by_code() {
            codes.entry(code).or_default().1 += n;
        }
    }
    let errors_by_code = codes
        .into_iter()
        .map(|(code, (base, new))| CodeRow { code, base, new })
        .collect();

    let mut counts = Counts::default();
    for m in &metrics {
        *match m.verdict {
            Verdict::Worse => &mut counts.worse,
            Verdict::Better => &mut counts.better,
            Verdict::Same => &mut counts.same,
            Verdict::InsufficientData => &mut counts.insufficient_data,
            Verdict::NotJudged => &mut counts.not_judged,
            Verdict::OnlyInBase => &mut counts.only_in_base,
            Verdict::OnlyInNew => &mut counts.only_in_new,
        } += 1;
    }
    LoadComparison {
        kind: "loadgen",
        base: RunInfo::of(&base[0]),
        new: RunInfo::of(&new[0]),
        base_runs: base.iter().map(RunInfo::of).collect(),
        new_runs: new.iter().map(RunInfo::of).collect(),
        method,
        thresholds: rules.effective(),
        min_samples,
        regression: counts.worse > 0,
        metrics,
        errors_by_code,
        counts,
        warnings,
    }
}

fn stat_value(h: &Histogram<u64>, secs: f64, stat: Stat) -> Option<f64> {
    if h.is_empty() && !matches!(stat, Stat::Count | Stat::Rate) {
        return None;
    }
    Some(match stat {
        Stat::Count => h.len() as f64,
        Stat::Rate => h.len() as f64 / secs,
        Stat::Mean => h.mean(),
        Stat::Min => h.min() as f64,
        Stat::Max => h.max() as f64,
        Stat::ErrorRate => return None,
        q => h.value_at_quantile(q.quantile().expect("a percentile")) as f64,
    })
}

fn unit_of(stat: Stat) -> &'static str {
    match stat.kind() {
        StatKind::Latency => "us",
        StatKind::Rate => "per-second",
        StatKind::Count => "count",
        StatKind::ErrorRate => "percent",
    }
}

fn compare_metric(
    name: &str,
    base: Option<Sided<'_>>,
    new: Option<Sided<'_>>,
    method: Method,
    rules: &Rules,
    min_samples: u64,
) -> MetricRow {
    let mut stats: Vec<Stat> = SHOWN.to_vec();
    stats.extend(rules.extra_stats(name));
    stats.sort();
    let rows: Vec<StatRow> = stats
        .into_iter()
        .map(|stat| {
            // The shown value of a side: the mean of its runs' values when
            // they are judged one by one, else the pooled histogram's.
            let value = |side: &Sided<'_>, runs: &[f64]| match method {
                Method::RunToRun if stat != Stat::Count => mean(runs),
                _ => stat_value(&side.pooled, side.secs, stat),
            };
            let runs_of =
                |side: Option<&Sided<'_>>| side.map(|s| s.per_run(stat)).unwrap_or_default();
            let (b_runs, n_runs) = (runs_of(base.as_ref()), runs_of(new.as_ref()));
            let b = base.as_ref().and_then(|s| value(s, &b_runs));
            let n = new.as_ref().and_then(|s| value(s, &n_runs));
            let judged = if stat == Stat::Count {
                Vec::new()
            } else {
                rules.resolve(name, stat)
            };
            let (verdict, note) = match (&base, &new) {
                (Some(bs), Some(ns)) if !judged.is_empty() => {
                    let (bn, nn) = (bs.fewest_samples(), ns.fewest_samples());
                    if bn.min(nn) < min_samples.max(1) {
                        (
                            Verdict::InsufficientData,
                            Some(format!(
                                "needs ≥ {min_samples} samples in each run (base {bn}, new {nn})"
                            )),
                        )
                    } else {
                        match (b, n, method) {
                            (Some(b), Some(n), Method::RunToRun) => {
                                beyond_spread(judge(b, n, &judged), &b_runs, &n_runs, stat)
                            }
                            (Some(b), Some(n), Method::WithinRun) => significant(
                                judge(b, n, &judged),
                                interval(&bs.pooled, bs.secs, stat),
                                interval(&ns.pooled, ns.secs, stat),
                                stat,
                            ),
                            _ => (Verdict::InsufficientData, Some("no samples".to_owned())),
                        }
                    }
                }
                _ => (Verdict::NotJudged, None),
            };
            let mut row = stat_row(stat, b, n, &judged, verdict, note);
            if method == Method::RunToRun {
                (row.base_runs, row.new_runs) = (b_runs, n_runs);
            }
            row
        })
        .collect();
    let verdict = match (&base, &new) {
        (Some(_), None) => Verdict::OnlyInBase,
        (None, Some(_)) => Verdict::OnlyInNew,
        _ => overall(&rows),
    };
    MetricRow {
        name: name.to_owned(),
        verdict,
        stats: rows,
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The sample variance (n − 1).
fn variance(values: &[f64]) -> f64 {
    let m = mean(values).unwrap_or(0.0);
    values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (values.len() as f64 - 1.0).max(1.0)
}

/// Welch's t-test of two samples: `(|t|, the critical |t| at 95 %
/// two-sided)` for the Welch–Satterthwaite degrees of freedom (rounded
/// down: conservative). `None` with fewer than 2 values on a side. Equal
/// values on both sides give t = 0; no spread on either side and a
/// difference give an infinite t.
pub fn welch(base: &[f64], new: &[f64]) -> Option<(f64, f64)> {
    if base.len() < 2 || new.len() < 2 {
        return None;
    }
    let (nb, nn) = (base.len() as f64, new.len() as f64);
    let (vb, vn) = (variance(base) / nb, variance(new) / nn);
    let diff = (mean(new)? - mean(base)?).abs();
    let se2 = vb + vn;
    if se2 == 0.0 {
        let t = if diff == 0.0 { 0.0 } else { f64::INFINITY };
        return Some((t, t_crit95(nb + nn - 2.0)));
    }
    let df = se2 * se2 / (vb * vb / (nb - 1.0) + vn * vn / (nn - 1.0));
    Some((diff / se2.sqrt(), t_crit95(df)))
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom
/// (rounded down; beyond 30, the value at 30).
pub fn t_crit95(df: f64) -> f64 {
    const T975: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    let i = (df.floor() as usize).clamp(1, T975.len());
    T975[i - 1]
}

/// A change beyond the threshold counts only when it is also beyond the
/// run-to-run spread: Welch's t-test on the per-run values rejects "no
/// change" at 95 %.
fn beyond_spread(
    verdict: Verdict,
    base: &[f64],
    new: &[f64],
    stat: Stat,
) -> (Verdict, Option<String>) {
    if !matches!(verdict, Verdict::Worse | Verdict::Better) {
        return (verdict, None);
    }
    let Some((t, crit)) = welch(base, new) else {
        return (verdict, None);
    };
    if t > crit {
        return (verdict, None);
    }
    let spread = |v: &[f64]| show_value(stat, variance(v).sqrt());
    (
        Verdict::Same,
        Some(format!(
            "{} by the threshold but within run-to-run noise (Welch t {t:.2} ≤ {crit:.2}; \
             spread of the runs: base ±{}, new ±{})",
            if verdict == Verdict::Worse {
                "worse"
            } else {
                "better"
            },
            spread(base),
            spread(new)
        )),
    )
}

/// A value of `stat` as the notes show it.
fn show_value(stat: Stat, v: f64) -> String {
    match stat.kind() {
        StatKind::Latency => crate::fmt::duration_f(v),
        StatKind::Rate => format!("{v:.1}/s"),
        StatKind::ErrorRate => format!("{v:.3}%"),
        StatKind::Count => format!("{v:.0}"),
    }
}

/// z of a two-sided 95 % interval.
const Z95: f64 = 1.96;

/// The 95 % confidence interval of a stat, where one is known: for a
/// percentile, distribution-free from the order statistics
/// ([`quantile_ranks`]); for the mean, ± z·σ/√n; for a rate, a Poisson
/// count ± z·√count. `None` for `max` and `count`. An end that the samples
/// cannot bound is 0 or infinite.
pub fn interval(h: &Histogram<u64>, secs: f64, stat: Stat) -> Option<(f64, f64)> {
    let n = h.len() as f64;
    if n == 0.0 {
        return None;
    }
    match stat {
        Stat::Rate => {
            let half = Z95 * n.sqrt();
            Some(((n - half).max(0.0) / secs, (n + half) / secs))
        }
        Stat::Mean => {
            let half = Z95 * h.stdev() / n.sqrt();
            Some((h.mean() - half, h.mean() + half))
        }
        s => {
            let q = s.quantile()?;
            let (lo, hi) = quantile_ranks(h.len(), q);
            let at = |rank: u64| h.value_at_quantile(rank as f64 / n) as f64;
            Some((lo.map_or(0.0, at), hi.map_or(f64::INFINITY, at)))
        }
    }
}

/// The ranks (1-based, of the sorted samples) that bound the q-quantile
/// with 95 % confidence: `[x(l), x(u)]` covers it with probability
/// `P(l ≤ X ≤ u − 1)`, X ~ Binomial(n, q) the samples below it. `None`: the
/// samples cannot bound that side (e.g. p99 from above with < 300 samples).
/// Exact binomial tails when `n·q·(1−q) < 9`, the normal approximation
/// otherwise.
pub fn quantile_ranks(n: u64, q: f64) -> (Option<u64>, Option<u64>) {
    let nf = n as f64;
    let alpha = 0.05;
    let var = nf * q * (1.0 - q);
    if var >= 9.0 {
        let sd = var.sqrt();
        let lo = (nf * q - Z95 * sd).floor();
        let hi = (nf * q + Z95 * sd).ceil() + 1.0;
        let lo = (lo >= 1.0).then_some(lo as u64);
        let hi = (hi <= nf).then_some(hi as u64);
        return (lo, hi);
    }
    // Y = n − X ~ Binomial(n, 1 − q): the samples above the quantile.
    // cdf[y] = P(Y ≤ y), by the recurrence of the probabilities.
    let p = 1.0 - q;
    let mut pmf = q.powf(nf);
    let mut cdf = Vec::with_capacity(n as usize + 1);
    let mut acc = 0.0;
    for y in 0..=n {
        acc += pmf;
        cdf.push(acc.min(1.0));
        if q > 0.0 {
            pmf *= (nf - y as f64) / (y as f64 + 1.0) * p / q;
        }
    }
    // Upper rank u = n − y with y the largest where P(Y ≤ y) ≤ α/2.
    let hi = cdf
        .iter()
        .rposition(|c| *c <= alpha / 2.0)
        .map(|y| n - y as u64)
        .filter(|u| *u >= 1);
    // Lower rank l = n − y with y the smallest where P(Y ≤ y) ≥ 1 − α/2.
    let lo = cdf
        .iter()
        .position(|c| *c >= 1.0 - alpha / 2.0)
        .map(|y| n - y as u64)
        .filter(|l| *l >= 1);
    (lo, hi)
}

/// The Wilson 95 % interval of a proportion `k / n`, in percent.
pub fn wilson_pct(k: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some((
        (centre - half).max(0.0) * 100.0,
        (centre + half).min(1.0) * 100.0,
    ))
}

/// A change beyond the threshold counts only when it is also beyond noise:
/// the two runs' 95 % intervals do not overlap.
fn significant(
    verdict: Verdict,
    base: Option<(f64, f64)>,
    new: Option<(f64, f64)>,
    stat: Stat,
) -> (Verdict, Option<String>) {
    if !matches!(verdict, Verdict::Worse | Verdict::Better) {
        return (verdict, None);
    }
    let (Some(b), Some(n)) = (base, new) else {
        return (verdict, None);
    };
    if b.1 < n.0 || n.1 < b.0 {
        return (verdict, None);
    }
    let show = |(lo, hi): (f64, f64)| format!("{}–{}", show_value(stat, lo), show_value(stat, hi));
    (
        Verdict::Same,
        Some(format!(
            "{} by the threshold but within noise (95% intervals overlap: base {}, new {})",
            if verdict == Verdict::Worse {
                "worse"
            } else {
                "better"
            },
            show(b),
            show(n)
        )),
    )
}

fn stat_row(
    stat: Stat,
    base: Option<f64>,
    new: Option<f64>,
    judged: &[&ChangeRule],
    verdict: Verdict,
    note: Option<String>,
) -> StatRow {
    let delta = base.zip(new).map(|(b, n)| n - b);
    let delta_pct = base
        .zip(new)
        .and_then(|(b, n)| (stat.kind() != StatKind::ErrorRate).then(|| relative(b, n)));
    StatRow {
        stat: stat.name().to_owned(),
        unit: unit_of(stat),
        base,
        new,
        delta,
        delta_pct: delta_pct.filter(|v| v.is_finite()),
        thresholds: if verdict == Verdict::NotJudged {
            Vec::new()
        } else {
            judged.iter().map(|r| r.canonical()).collect()
        },
        verdict,
        note,
        base_runs: Vec::new(),
        new_runs: Vec::new(),
        kind: Some(stat),
    }
}

/// `new` relative to `base`, percent (infinite from 0 to non-zero).
fn relative(base: f64, new: f64) -> f64 {
    if base == new {
        0.0
    } else if base == 0.0 {
        f64::INFINITY * (new - base).signum()
    } else {
        (new - base) / base * 100.0
    }
}

/// Worse when the change in the bad direction exceeds every limit, better
/// when the change in the good direction does, else same.
pub fn judge(base: f64, new: f64, rules: &[&ChangeRule]) -> Verdict {
    let moved = |rule: &ChangeRule, bad: bool| -> bool {
        let toward_bad = if rule.up_is_bad { 1.0 } else { -1.0 };
        let dir = if bad { toward_bad } else { -toward_bad };
        match rule.limit {
            None => false,
            Some(Limit::Percent(p)) => relative(base, new) * dir > p,
            Some(Limit::Micros(v) | Limit::PerSec(v) | Limit::Points(v)) => (new - base) * dir > v,
        }
    };
    if rules.is_empty() {
        Verdict::NotJudged
    } else if rules.iter().all(|r| moved(r, true)) {
        Verdict::Worse
    } else if rules.iter().all(|r| moved(r, false)) {
        Verdict::Better
    } else {
        Verdict::Same
    }
}

fn overall(rows: &[StatRow]) -> Verdict {
    let has = |v: Verdict| rows.iter().any(|r| r.verdict == v);
    [
        Verdict::Worse,
        Verdict::Better,
        Verdict::Same,
        Verdict::InsufficientData,
    ]
    .into_iter()
    .find(|v| has(*v))
    .unwrap_or(Verdict::NotJudged)
}

fn compare_errors(
    base: &[LoadRun],
    new: &[LoadRun],
    method: Method,
    rules: &Rules,
    min_samples: u64,
) -> MetricRow {
    let sum = |runs: &[LoadRun], f: fn(&LoadRun) -> u64| runs.iter().map(f).sum::<u64>();
    let (ba, na) = (sum(base, LoadRun::attempts), sum(new, LoadRun::attempts));
    let (be, ne) = (sum(base, LoadRun::errors), sum(new, LoadRun::errors));
    let fewest = |runs: &[LoadRun]| runs.iter().map(LoadRun::attempts).min().unwrap_or(0);
    let per_run = |runs: &[LoadRun]| -> Vec<f64> {
        runs.iter().filter_map(LoadRun::error_rate_pct).collect()
    };
    let (b_runs, n_runs) = (per_run(base), per_run(new));
    let pct = |e: u64, a: u64| (a > 0).then(|| e as f64 * 100.0 / a as f64);
    let (b, n) = match method {
        Method::RunToRun => (mean(&b_runs), mean(&n_runs)),
        Method::WithinRun => (pct(be, ba), pct(ne, na)),
    };
    let judged = rules.resolve(ERRORS, Stat::ErrorRate);
    let (verdict, note) = if judged.is_empty() {
        (Verdict::NotJudged, None)
    } else if fewest(base).min(fewest(new)) < min_samples.max(1) {
        (
            Verdict::InsufficientData,
            Some(format!(
                "needs ≥ {min_samples} operations in each run (base {}, new {})",
                fewest(base),
                fewest(new)
            )),
        )
    } else {
        match (b, n, method) {
            (Some(b), Some(n), Method::RunToRun) => {
                beyond_spread(judge(b, n, &judged), &b_runs, &n_runs, Stat::ErrorRate)
            }
            (Some(b), Some(n), Method::WithinRun) => significant(
                judge(b, n, &judged),
                wilson_pct(be, ba),
                wilson_pct(ne, na),
                Stat::ErrorRate,
            ),
            _ => (Verdict::InsufficientData, None),
        }
    };
    let attempts = StatRow {
        stat: "operations".to_owned(),
        unit: "count",
        base: Some(ba as f64),
        new: Some(na as f64),
        delta: Some(na as f64 - ba as f64),
        delta_pct: Some(relative(ba as f64, na as f64)).filter(|v| v.is_finite()),
        thresholds: Vec::new(),
        verdict: Verdict::NotJudged,
        note: None,
        base_runs: Vec::new(),
        new_runs: Vec::new(),
        kind: Some(Stat::Count),
    };
    let mut errors = stat_row(
        Stat::Count,
        Some(be as f64),
        Some(ne as f64),
        &[],
        Verdict::NotJudged,
        None,
    );
    errors.stat = "errors".to_owned();
    let mut rate = stat_row(Stat::ErrorRate, b, n, &judged, verdict, note);
    if method == Method::RunToRun {
        (rate.base_runs, rate.new_runs) = (b_runs, n_runs);
    }
    let rows = vec![attempts, errors, rate];
    MetricRow {
        name: ERRORS.to_owned(),
        verdict: overall(&rows),
        stats: rows,
    }
}

/// A case whose outcome changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseChange {
    pub id: String,
    pub description: String,
    /// `None`: the case is not in that run.
    pub base: Option<CaseVerdict>,
    pub new: Option<CaseVerdict>,
    /// The new run's reason, or expected/actual.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A conformance result, summed up.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConformanceInfo {
    pub file: String,
    pub tool: String,
    /// The run's `--label`.
    pub label: Option<String>,
    pub target: String,
    pub started_at: String,
    pub cases: usize,
    pub failures: usize,
}

/// Two conformance results compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConformanceComparison {
    /// `conformance`.
    pub kind: &'static str,
    pub base: ConformanceInfo,
    pub new: ConformanceInfo,
    /// Failing now, not failing (or absent) in the baseline.
    pub new_failures: Vec<CaseChange>,
    /// Failing in the baseline, passing now.
    pub fixed: Vec<CaseChange>,
    /// Failing in both.
    pub still_failing: Vec<String>,
    /// Any other change of outcome (skipped, errors, cases added or
    /// removed).
    pub other_changes: Vec<CaseChange>,
    /// There are new failures.
    pub regression: bool,
}

fn conformance_info(r: &ConformanceRun) -> ConformanceInfo {
    ConformanceInfo {
        file: r.path.clone(),
        tool: r.result.tool.clone(),
        label: r.result.label.clone(),
        target: r.result.target.clone(),
        started_at: r.result.started_at.clone(),
        cases: r.result.cases.len(),
        failures: r
            .result
            .cases
            .iter()
            .filter(|c| c.verdict.is_failure())
            .count(),
    }
}

/// Compares two conformance results case by case.
pub fn compare_conformance(base: &ConformanceRun, new: &ConformanceRun) -> ConformanceComparison {
    let b: BTreeMap<&str, _> = base
        .result
        .cases
        .iter()
        .map(|c| (c.id.as_str(), c))
        .collect();
    let n: BTreeMap<&str, _> = new
        .result
        .cases
        .iter()
        .map(|c| (c.id.as_str(), c))
        .collect();
    let ids: BTreeSet<&str> = b.keys().chain(n.keys()).copied().collect();
    let mut out = ConformanceComparison {
        kind: "conformance",
        base: conformance_info(base),
        new: conformance_info(new),
        new_failures: Vec::new(),
        fixed: Vec::new(),
        still_failing: Vec::new(),
        other_changes: Vec::new(),
        regression: false,
    };
    for id in ids {
        let (bc, nc) = (b.get(id), n.get(id));
        let bv = bc.map(|c| c.verdict);
        let nv = nc.map(|c| c.verdict);
        let latest = nc.or(bc).expect("the id is in one of them");
        let detail = nc.and_then(|c| {
            c.reason.clone().or_else(|| match (&c.expected, &c.actual) {
                (Some(e), Some(a)) => Some(format!("expected {e}; actual {a}")),
                _ => None,
            })
        });
        let change = CaseChange {
            id: id.to_owned(),
            description: latest.description.clone(),
            base: bv,
            new: nv,
            detail,
        };
        let failing = |v: Option<CaseVerdict>| v.is_some_and(CaseVerdict::is_failure);
        let passing = |v: Option<CaseVerdict>| v.is_some_and(CaseVerdict::is_pass);
        if failing(nv) && failing(bv) {
            out.still_failing.push(id.to_owned());
        } else if failing(nv) {
            out.new_failures.push(change);
        } else if failing(bv) && passing(nv) {
            out.fixed.push(change);
        } else if bv != nv && !(passing(bv) && passing(nv)) {
            out.other_changes.push(change);
        }
    }
    out.regression = !out.new_failures.is_empty();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> ChangeRule {
        ChangeRule::parse(s).unwrap()
    }

    #[test]
    fn judges_directions_and_floors() {
        let p = rule("p99 +10%");
        assert_eq!(judge(100.0, 111.0, &[&p]), Verdict::Worse);
        assert_eq!(judge(100.0, 110.0, &[&p]), Verdict::Same);
        assert_eq!(judge(100.0, 89.0, &[&p]), Verdict::Better);
        let floor = rule("p99 +1ms");
        assert_eq!(judge(100.0, 200.0, &[&p, &floor]), Verdict::Same);
        assert_eq!(judge(10_000.0, 12_000.0, &[&p, &floor]), Verdict::Worse);
        let r = rule("rate -10%");
        assert_eq!(judge(100.0, 80.0, &[&r]), Verdict::Worse);
        assert_eq!(judge(100.0, 120.0, &[&r]), Verdict::Better);
        let e = rule("error-rate +0.1pp");
        assert_eq!(judge(0.0, 0.2, &[&e]), Verdict::Worse);
        assert_eq!(judge(0.0, 0.05, &[&e]), Verdict::Same);
    }

    #[test]
    fn intervals() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        // p50 of 1..=10000: ranks 5000 ± 98.
        let (lo, hi) = interval(&h, 10.0, Stat::P50).unwrap();
        assert!(
            (4890.0..4910.0).contains(&lo) && (5090.0..5110.0).contains(&hi),
            "{lo} {hi}"
        );
        // p99 of 100 samples: unbounded above (P(no sample beyond) = 37 %).
        assert_eq!(quantile_ranks(100, 0.99).1, None);
        // ... and from below: the 97th sample (P(Y ≤ 3) = 98.2 %).
        assert_eq!(quantile_ranks(100, 0.99).0, Some(97));
        // The median of 20 samples: the 6th to the 15th.
        assert_eq!(quantile_ranks(20, 0.5), (Some(6), Some(15)));
        // Large n: the normal approximation.
        assert_eq!(quantile_ranks(10_000, 0.5), (Some(4902), Some(5099)));
        let (lo, hi) = interval(&h, 10.0, Stat::Rate).unwrap();
        assert!(
            (lo - 980.4).abs() < 0.1 && (hi - 1019.6).abs() < 0.1,
            "{lo} {hi}"
        );
        assert_eq!(interval(&h, 10.0, Stat::Max), None);
        let (lo, hi) = wilson_pct(0, 10_000).unwrap();
        assert_eq!(lo, 0.0);
        assert!((0.03..0.04).contains(&hi), "{hi}");
        let (lo, hi) = wilson_pct(50, 1000).unwrap();
        assert!(lo < 5.0 && hi > 5.0 && lo > 3.5 && hi < 6.6, "{lo} {hi}");
    }

    #[test]
    fn welch_t_against_the_spread() {
        // Textbook: means 2 and 5, variances 1 and 1, n 3 each: t = 3.674,
        // df = 4, critical 2.776.
        let (t, crit) = welch(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert!((t - 3.674).abs() < 1e-3, "{t}");
        assert_eq!(crit, 2.776);
        assert_eq!(welch(&[1.0], &[2.0, 3.0]), None);
        assert_eq!(welch(&[1.0, 1.0], &[1.0, 1.0]).unwrap().0, 0.0);
        assert!(welch(&[1.0, 1.0], &[2.0, 2.0]).unwrap().0.is_infinite());
        assert_eq!(t_crit95(0.5), 12.706);
        assert_eq!(t_crit95(4.9), 2.776);
        assert_eq!(t_crit95(500.0), 2.042);
        let (v, note) = beyond_spread(
            Verdict::Worse,
            &[1.0, 2.0, 3.0],
            &[2.0, 3.0, 4.0],
            Stat::P99,
        );
        assert_eq!(v, Verdict::Same);
        assert!(note.unwrap().contains("Welch t 1.22"));
        let (v, _) = beyond_spread(
            Verdict::Worse,
            &[1.0, 2.0, 3.0],
            &[4.0, 5.0, 6.0],
            Stat::P99,
        );
        assert_eq!(v, Verdict::Worse);
    }

    #[test]
    fn overlapping_intervals_are_noise() {
        let (v, note) = significant(
            Verdict::Worse,
            Some((1.0, 3.0)),
            Some((2.5, 4.0)),
            Stat::P99,
        );
        assert_eq!(v, Verdict::Same);
        assert!(note.unwrap().contains("within noise"));
        let (v, _) = significant(
            Verdict::Worse,
            Some((1.0, 2.0)),
            Some((2.5, 4.0)),
            Stat::P99,
        );
        assert_eq!(v, Verdict::Worse);
        let (v, _) = significant(Verdict::Worse, None, None, Stat::Max);
        assert_eq!(v, Verdict::Worse);
    }
}
