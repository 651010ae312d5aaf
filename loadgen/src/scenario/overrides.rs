//! `--clients` and `--duration`, the peak of a schedule, group shares.

use std::time::Duration;

use super::{Group, GroupSize, Phase, Scenario};

/// The most VUs alive at once: the highest `Ramp` level, or a level plus
/// every arrival of an `Arrival` phase, at most `max_vus` of them.
pub(super) fn peak_clients(phases: &[Phase], max_vus: Option<u32>) -> u32 {
    let cap = max_vus.map_or(u64::MAX, u64::from);
    let mut level: u64 = 0;
    let mut peak: u64 = 0;
    for p in phases {
        match p {
            Phase::Ramp { from, to, .. } => {
                peak = peak.max(u64::from(*from)).max(u64::from(*to));
                level = u64::from(*to);
            }
            Phase::Hold { .. } => peak = peak.max(level),
            Phase::Arrival { .. } => peak = peak.max(level + p.arrivals().min(cap)),
            Phase::RampDown { .. } => level = 0,
        }
    }
    peak.min(u64::from(u32::MAX)) as u32
}

pub(super) fn check_clients(s: &Scenario, clients: u32) -> Result<(), String> {
    if clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let fixed = u64::from(s.fixed_clients());
    let has_weight = s
        .groups
        .iter()
        .any(|g| matches!(g.size, GroupSize::Weight(_)));
    let counts: Vec<String> = s
        .groups
        .iter()
        .filter_map(|g| match g.size {
            GroupSize::Count(n) => Some(format!("{} = {n}", g.name)),
            GroupSize::Weight(_) => None,
        })
        .collect();
    if fixed > u64::from(clients) {
        return Err(format!(
            "--clients {clients} is fewer than the fixed-size groups need ({fixed}: {})",
            counts.join(", ")
        ));
    }
    if has_weight && fixed >= u64::from(clients) {
        return Err(format!(
            "--clients {clients} leaves no client for the weight groups after the fixed-size groups ({})",
            counts.join(", ")
        ));
    }
    Ok(())
}

fn scale_u32(x: u32, f: f64) -> u32 {
    if x == 0 {
        return 0;
    }
    let y = (f64::from(x) * f).round();
    y.clamp(1.0, f64::from(u32::MAX)) as u32
}

pub(super) fn apply(mut s: Scenario, clients: Option<u32>, duration: Option<Duration>) -> Scenario {
    if let Some(n) = clients {
        let peak = peak_clients(&s.phases, s.max_vus);
        if peak > 0 && n != peak {
            let f = f64::from(n) / f64::from(peak);
            s.max_vus = s.max_vus.map(|m| scale_u32(m, f));
            for p in &mut s.phases {
                match p {
                    Phase::Ramp { from, to, .. } => {
                        *from = scale_u32(*from, f);
                        *to = scale_u32(*to, f);
                    }
                    Phase::Arrival {
                        rate_per_sec,
                        from_per_sec,
                        ..
                    } => {
                        *rate_per_sec *= f;
                        *from_per_sec *= f;
                    }
                    Phase::Hold { .. } | Phase::RampDown { .. } => {}
                }
            }
        }
    }
    if let Some(d) = duration {
        fit_phases(&mut s.phases, d);
        s.max_duration = d;
    }
    s
}

/// Stretches or cuts the holds so the phases add up to `d`; when the other
/// phases alone exceed `d`, drops the holds and shortens the rest in
/// proportion.
fn fit_phases(phases: &mut Vec<Phase>, d: Duration) {
    let target = d.as_micros();
    let is_hold = |p: &Phase| matches!(p, Phase::Hold { .. });
    let fixed: u128 = phases
        .iter()
        .filter(|p| !is_hold(p))
        .map(|p| p.duration().as_micros())
        .sum();
    let holds: Vec<u128> = phases
        .iter()
        .filter(|p| is_hold(p))
        .map(|p| p.duration().as_micros())
        .collect();
    if fixed <= target {
        if holds.is_empty() {
            return;
        }
        let remaining = target - fixed;
        let total: u128 = holds.iter().sum();
        let n = holds.len() as u128;
        let mut given = 0u128;
        let mut k = 0u128;
        for p in phases.iter_mut() {
            if let Phase::Hold { duration } = p {
                k += 1;
                let share = if k == n {
                    remaining - given
                } else {
                    (remaining * duration.as_micros())
                        .checked_div(total)
                        .unwrap_or(remaining / n)
                };
                given += share;
                *duration = micros(share);
            }
        }
        phases.retain(|p| !matches!(p, Phase::Hold { duration } if duration.is_zero()));
    } else {
        phases.retain(|p| !is_hold(p));
        let n = phases.len();
        let mut given = 0u128;
        for (i, p) in phases.iter_mut().enumerate() {
            let old = p.duration().as_micros();
            let new = if i + 1 == n {
                target - given
            } else {
                old * target / fixed
            };
            given += new;
            let new = micros(new);
            match p {
                Phase::Ramp { over, .. } | Phase::RampDown { over } => *over = new,
                Phase::Arrival { duration, .. } | Phase::Hold { duration } => *duration = new,
            }
        }
    }
}

fn micros(us: u128) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
}

pub(super) fn group_sizes(groups: &[Group], clients: u32) -> Vec<u32> {
    let mut sizes = vec![0u32; groups.len()];
    let mut left = clients;
    for (i, g) in groups.iter().enumerate() {
        if let GroupSize::Count(n) = g.size {
            let take = n.min(left);
            sizes[i] = take;
            left -= take;
        }
    }
    let total_w: u64 = groups
        .iter()
        .map(|g| match g.size {
            GroupSize::Weight(w) => u64::from(w),
            GroupSize::Count(_) => 0,
        })
        .sum();
    if total_w == 0 || left == 0 {
        return sizes;
    }
    let mut rems = Vec::new();
    let mut given = 0u64;
    for (i, g) in groups.iter().enumerate() {
        if let GroupSize::Weight(w) = g.size {
            let exact = u64::from(left) * u64::from(w);
            let share = exact / total_w;
            sizes[i] = share as u32;
            given += share;
            rems.push((exact % total_w, i));
        }
    }
    // Largest remainders first; ties to the earlier group.
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut extra = u64::from(left) - given;
    for (_, i) in rems {
        if extra == 0 {
            break;
        }
        sizes[i] += 1;
        extra -= 1;
    }
    sizes
}
