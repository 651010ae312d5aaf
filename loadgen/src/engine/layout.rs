//! Which virtual users this process runs, their global numbers and their
//! groups (see "Shares" in the engine's module documentation).

use crate::scenario::{GroupSize, Phase, Scenario};

/// Group index of a VU no group wants (the `Count` groups are full and
/// there is no `Weight` group): it is never started.
pub(crate) const NO_GROUP: u16 = u16::MAX;

/// One local virtual user: its number across the whole run (`${vu}`) and
/// its group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VuMeta {
    pub global: u64,
    pub group: u16,
}

/// The arrivals of one `Arrival` phase that this process runs.
#[derive(Debug, Clone)]
pub(crate) struct ArrivalPlan {
    /// Index of the phase in the scenario.
    pub phase: usize,
    /// Number within the phase of this process's first arrival; the next
    /// ones follow every `shares`.
    pub first_j: u64,
    /// How many arrivals of the phase run here.
    pub local_count: u64,
    /// Local VU index of this process's first arrival of the phase.
    pub local_first: usize,
}

/// The local virtual users: closed-model slots first (local slot `k` is
/// global slot `k * shares + share`), then the arrivals phase by phase.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub share: u32,
    pub shares: u32,
    /// Highest `Ramp` level of the run (global).
    pub closed_peak: u32,
    pub arrivals: Vec<ArrivalPlan>,
    pub vus: Vec<VuMeta>,
}

impl Layout {
    /// `one_world`: the set-up ran once for every share (its variables were
    /// handed in), so the groups are laid out over the global numbers and a
    /// `Count` group runs once in the whole run. Otherwise every share is
    /// its own world and runs every `Count` group in full.
    pub(crate) fn new(scenario: &Scenario, share: u32, shares: u32, one_world: bool) -> Layout {
        let shares = shares.max(1);
        let share = share.min(shares - 1);
        let closed_peak = scenario
            .phases
            .iter()
            .map(|p| match p {
                Phase::Ramp { from, to, .. } => (*from).max(*to),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let mut layout = Layout {
            share,
            shares,
            closed_peak,
            arrivals: Vec::new(),
            vus: Vec::new(),
        };
        let closed_local = layout.local_level(closed_peak) as usize;
        let mut global_ids: Vec<u64> = (0..closed_local as u64)
            .map(|k| layout.slot_global(k as u32))
            .collect();
        let mut base = 0u64;
        for (i, p) in scenario.phases.iter().enumerate() {
            if let Phase::Arrival { .. } = p {
                let count = p.arrivals();
                let n = u64::from(shares);
                let first_j = (i64::from(share) - base as i64).rem_euclid(n as i64) as u64;
                let local_count = if first_j < count {
                    (count - first_j - 1) / n + 1
                } else {
                    0
                };
                let local_first = global_ids.len();
                for x in 0..local_count {
                    global_ids.push(u64::from(closed_peak) + base + first_j + x * n);
                }
                layout.arrivals.push(ArrivalPlan {
                    phase: i,
                    first_j,
                    local_count,
                    local_first,
                });
                base += count;
            }
        }
        let groups = if one_world {
            let total = u64::from(closed_peak) + base;
            let map = assign(scenario, total.min(u64::from(u32::MAX)) as u32);
            global_ids
                .iter()
                .map(|g| map.get(*g as usize).copied().unwrap_or(NO_GROUP))
                .collect::<Vec<_>>()
        } else {
            assign(scenario, global_ids.len() as u32)
        };
        layout.vus = global_ids
            .into_iter()
            .zip(groups)
            .map(|(global, group)| VuMeta { global, group })
            .collect();
        layout
    }

    /// Local closed-model slots wanted when the global level is `level`:
    /// the global slots below it that belong to this share.
    pub(crate) fn local_level(&self, level: u32) -> u32 {
        if level > self.share {
            (level - self.share - 1) / self.shares + 1
        } else {
            0
        }
    }

    /// Global slot of local closed-model slot `k`.
    pub(crate) fn slot_global(&self, k: u32) -> u64 {
        u64::from(k) * u64::from(self.shares) + u64::from(self.share)
    }

    /// Local closed-model slots.
    pub(crate) fn closed_local(&self) -> u32 {
        self.local_level(self.closed_peak)
    }
}

/// Group of each of `total` VU numbers: the `Count` groups first, in file
/// order, then the `Weight` groups interleaved (smooth weighted round
/// robin) so that any prefix — the VUs a ramp has started so far — has
/// them in proportion; the totals are `Scenario::group_sizes(total)`.
fn assign(scenario: &Scenario, total: u32) -> Vec<u16> {
    let sizes = scenario.group_sizes(total);
    let mut out = Vec::with_capacity(total as usize);
    for (g, group) in scenario.groups.iter().enumerate() {
        if let GroupSize::Count(_) = group.size {
            let n = sizes.get(g).copied().unwrap_or(0);
            out.extend(std::iter::repeat_n(g as u16, n as usize));
        }
    }
    let weighted: Vec<(usize, i64)> = scenario
        .groups
        .iter()
        .enumerate()
        .filter(|(_, group)| matches!(group.size, GroupSize::Weight(_)))
        .map(|(g, _)| (g, i64::from(sizes.get(g).copied().unwrap_or(0))))
        .filter(|(_, n)| *n > 0)
        .collect();
    let rest: i64 = weighted.iter().map(|(_, n)| n).sum();
    let mut current = vec![0i64; weighted.len()];
    for _ in 0..rest {
        let mut best = 0;
        for (i, (_, n)) in weighted.iter().enumerate() {
            current[i] += n;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= rest;
        out.push(weighted[best].0 as u16);
    }
    out.resize(total as usize, NO_GROUP);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Group, Step, TokenSource};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn scenario(groups: &[GroupSize], phases: Vec<Phase>) -> Scenario {
        Scenario {
            name: "t".into(),
            description: String::new(),
            source_hash: String::new(),
            vars: BTreeMap::new(),
            overrides: BTreeMap::new(),
            setup: vec![],
            tokens: TokenSource::Driver {
                join_room: None,
                role: "participant".into(),
                ttl: None,
            },
            feeders: vec![],
            groups: groups
                .iter()
                .enumerate()
                .map(|(i, s)| Group {
                    name: format!("g{i}"),
                    size: *s,
                    steps: vec![Step::Disconnect],
                    tags: BTreeMap::new(),
                })
                .collect(),
            phases,
            max_duration: Duration::from_secs(60),
            thresholds: vec![],
            max_vus: None,
            keep_mismatches: 0,
        }
    }

    fn ramp(to: u32) -> Phase {
        Phase::Ramp {
            from: 0,
            to,
            over: Duration::from_secs(1),
        }
    }

    #[test]
    fn count_first_then_weights_interleaved() {
        let s = scenario(
            &[
                GroupSize::Count(1),
                GroupSize::Weight(3),
                GroupSize::Weight(1),
            ],
            vec![ramp(9)],
        );
        let l = Layout::new(&s, 0, 1, true);
        let groups: Vec<u16> = l.vus.iter().map(|v| v.group).collect();
        assert_eq!(groups[0], 0);
        assert_eq!(groups.iter().filter(|g| **g == 1).count(), 6);
        assert_eq!(groups.iter().filter(|g| **g == 2).count(), 2);
        // The first four weighted VUs already have both groups.
        assert!(groups[1..5].contains(&2));
        assert_eq!(
            l.vus.iter().map(|v| v.global).collect::<Vec<_>>(),
            (0..9).collect::<Vec<_>>()
        );
    }

    #[test]
    fn shares_split_slots_and_arrivals() {
        let s = scenario(
            &[GroupSize::Count(1), GroupSize::Weight(1)],
            vec![
                ramp(10),
                Phase::Arrival {
                    rate_per_sec: 5.0,
                    from_per_sec: 5.0,
                    duration: Duration::from_secs(1),
                },
            ],
        );
        let mut all = Vec::new();
        let mut hosts = 0;
        for share in 0..3 {
            let l = Layout::new(&s, share, 3, true);
            assert_eq!(l.closed_local() as usize, l.arrivals[0].local_first);
            all.extend(l.vus.iter().map(|v| v.global));
            hosts += l.vus.iter().filter(|v| v.group == 0).count();
        }
        all.sort_unstable();
        assert_eq!(all, (0..15).collect::<Vec<_>>());
        assert_eq!(hosts, 1, "one world: one host in the whole run");
        // Independent shares: each has its host.
        let hosts: usize = (0..3)
            .map(|share| {
                let l = Layout::new(&s, share, 3, false);
                l.vus.iter().filter(|v| v.group == 0).count()
            })
            .sum();
        assert_eq!(hosts, 3);
    }

    #[test]
    fn local_levels() {
        let s = scenario(&[GroupSize::Weight(1)], vec![ramp(10)]);
        let l = Layout::new(&s, 1, 4, true);
        // Global slots 1, 5, 9 belong to share 1.
        assert_eq!(l.local_level(0), 0);
        assert_eq!(l.local_level(1), 0);
        assert_eq!(l.local_level(2), 1);
        assert_eq!(l.local_level(6), 2);
        assert_eq!(l.local_level(10), 3);
        assert_eq!(l.slot_global(2), 9);
        let arrival = |rate: f64, from: f64, secs: u64| Phase::Arrival {
            rate_per_sec: rate,
            from_per_sec: from,
            duration: Duration::from_secs(secs),
        };
        assert_eq!(arrival(20.0, 20.0, 2).arrivals(), 40);
        assert_eq!(arrival(2.5, 2.5, 1).arrivals(), 3);
        assert_eq!(arrival(2.5, 2.5, 2).arrivals(), 5);
        // 0 → 10/s over 2 s: 10 arrivals, the j-th at sqrt(j/2.5) s.
        let ramp = arrival(10.0, 0.0, 2);
        assert_eq!(ramp.arrivals(), 10);
        assert_eq!(ramp.arrival_offset(0), Duration::ZERO);
        let t = ramp.arrival_offset(9).as_secs_f64();
        assert!((t - (9.0f64 / 2.5).sqrt()).abs() < 1e-6, "{t}");
        // A falling rate, 10 → 0/s over 2 s: fast first, then slower.
        let fall = arrival(0.0, 10.0, 2);
        assert_eq!(fall.arrivals(), 10);
        let gaps: Vec<f64> = (1..10)
            .map(|j| (fall.arrival_offset(j) - fall.arrival_offset(j - 1)).as_secs_f64())
            .collect();
        assert!(gaps.is_sorted(), "{gaps:?}");
        assert!(fall.arrival_offset(9) < Duration::from_secs(2));
        // Constant: every 1/rate.
        let c = arrival(4.0, 4.0, 1);
        assert_eq!(c.arrival_offset(3), Duration::from_millis(750));
        assert_eq!(arrival(0.0, 0.0, 1).arrivals(), 0);
    }
}
