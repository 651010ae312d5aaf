//! The schedule: starts and retires VUs phase by phase (see "Phases" in
//! the module documentation). Phase `i` starts at the load start plus the
//! durations of the phases before it, so late wake-ups never accumulate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use formats::names;
use tokio::task::JoinSet;

use super::layout::{Layout, NO_GROUP};
use super::vu::{self, VuSpec};
use super::{HALT_GRACE, Progress, Retire, RunCtx};
use crate::scenario::{Phase, format_duration};

/// Why the schedule stopped early.
pub(super) enum Interrupt {
    /// Hard stop (stop signal, target lost).
    Halt,
    /// `max_duration` reached.
    Deadline,
}

pub(super) struct Scheduler {
    ctx: Arc<RunCtx>,
    layout: Layout,
    joins: JoinSet<bool>,
    /// Local closed-model slots wanted (mirrors `ctx.want`).
    want: u32,
    /// Global closed-model level.
    level: u32,
    deadline: Instant,
    /// VUs of `arrival` phases running now, and how many may (this
    /// process's share of `max_vus`).
    arrivals_alive: Arc<AtomicU32>,
    arrival_cap: u32,
    pub(super) started: u64,
    pub(super) finished: u64,
    progress: Option<Arc<Progress>>,
}

/// Counts a running arrival VU until dropped (also when its task is
/// aborted).
struct AliveGuard(Arc<AtomicU32>);

impl AliveGuard {
    fn new(n: Arc<AtomicU32>) -> AliveGuard {
        n.fetch_add(1, Ordering::AcqRel);
        AliveGuard(n)
    }
}

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn describe(p: &Phase) -> String {
    match p {
        Phase::Ramp { from, to, over } => {
            format!("ramp {from}->{to} over {}", format_duration(*over))
        }
        Phase::Hold { duration } => format!("hold {}", format_duration(*duration)),
        Phase::Arrival {
            rate_per_sec,
            from_per_sec,
            duration,
        } if from_per_sec != rate_per_sec => format!(
            "arrival {from_per_sec}->{rate_per_sec}/s over {}",
            format_duration(*duration)
        ),
        Phase::Arrival {
            rate_per_sec,
            duration,
            ..
        } => format!(
            "arrival {rate_per_sec}/s for {}",
            format_duration(*duration)
        ),
        Phase::RampDown { over } => format!("ramp down over {}", format_duration(*over)),
    }
}

impl Scheduler {
    pub(super) fn new(
        ctx: Arc<RunCtx>,
        layout: Layout,
        deadline: Instant,
        progress: Option<Arc<Progress>>,
    ) -> Scheduler {
        // Each process gets its share of the cap, at least 1.
        let arrival_cap = ctx
            .scenario
            .max_vus
            .map_or(u32::MAX, |m| layout.local_level(m).max(1));
        Scheduler {
            ctx,
            arrivals_alive: Arc::default(),
            arrival_cap,
            layout,
            joins: JoinSet::new(),
            want: 0,
            level: 0,
            deadline,
            started: 0,
            finished: 0,
            progress,
        }
    }

    /// Runs every phase from `t0`.
    pub(super) async fn phases(&mut self, t0: Instant) -> Result<(), Interrupt> {
        let scenario = self.ctx.scenario.clone();
        let count = scenario.phases.len();
        let mut start = t0;
        for (i, phase) in scenario.phases.iter().enumerate() {
            if let Some(p) = &self.progress {
                p.set_phase(format!("phase {}/{count} {}", i + 1, describe(phase)));
            }
            let end = start + phase.duration();
            match phase {
                Phase::Ramp { from, to, over } => self.ramp(*from, *to, start, *over).await?,
                Phase::Hold { .. } => self.sleep_until(end).await?,
                Phase::RampDown { over } => self.ramp(self.level, 0, start, *over).await?,
                Phase::Arrival { .. } => {
                    self.arrivals(i, start).await?;
                    self.sleep_until(end).await?;
                    self.ctx.arrival_over[i].set();
                }
            }
            start = end;
        }
        Ok(())
    }

    /// The closed-model level from `from` to `to` over `over`.
    async fn ramp(
        &mut self,
        from: u32,
        to: u32,
        start: Instant,
        over: Duration,
    ) -> Result<(), Interrupt> {
        self.level = from;
        self.set_want(self.layout.local_level(from));
        if !over.is_zero() && to > from {
            loop {
                let k = self.want;
                let j = self.layout.slot_global(k);
                if j >= u64::from(to) {
                    break;
                }
                let frac = (j - u64::from(from)) as f64 / f64::from(to - from);
                self.sleep_until(start + over.mul_f64(frac)).await?;
                self.set_want(k + 1);
            }
        } else if !over.is_zero() && to < from {
            while self.want > 0 {
                let k = self.want - 1;
                let j = self.layout.slot_global(k);
                if j < u64::from(to) {
                    break;
                }
                let frac = (u64::from(from) - 1 - j) as f64 / f64::from(from - to);
                self.sleep_until(start + over.mul_f64(frac)).await?;
                self.set_want(k);
            }
        }
        self.sleep_until(start + over).await?;
        self.level = to;
        self.set_want(self.layout.local_level(to));
        Ok(())
    }

    /// Starts the `Arrival` phase `phase`'s VUs at their intended times.
    async fn arrivals(&mut self, phase: usize, start: Instant) -> Result<(), Interrupt> {
        let Some(plan) = self
            .layout
            .arrivals
            .iter()
            .find(|a| a.phase == phase)
            .cloned()
        else {
            return Ok(());
        };
        let step = u64::from(self.layout.shares);
        let scenario = self.ctx.scenario.clone();
        let p = &scenario.phases[phase];
        for x in 0..plan.local_count {
            let at = start + p.arrival_offset(plan.first_j + x * step);
            self.sleep_until(at).await?;
            if self.arrivals_alive.load(Ordering::Acquire) >= self.arrival_cap {
                // Not started: the open model's load was not offered.
                self.ctx.recorder.count(names::ARRIVALS_DROPPED, 1);
                continue;
            }
            // Late (a stalled generator)? Start now; the VU's latency still
            // counts from `at`.
            self.spawn(
                plan.local_first + x as usize,
                Retire::Arrival(phase),
                Some(at),
            );
        }
        Ok(())
    }

    fn set_want(&mut self, new: u32) {
        let cur = self.want;
        if new == cur {
            return;
        }
        self.ctx.want.store(new, Ordering::Release);
        self.want = new;
        if new > cur {
            for k in cur..new {
                let slot = &self.ctx.slots[k as usize];
                let generation = slot.generation.fetch_add(1, Ordering::AcqRel) + 1;
                // A VU of an earlier ramp still on this slot retires now.
                slot.notify.notify_waiters();
                self.spawn(k as usize, Retire::Slot { k, generation }, None);
            }
        } else {
            for k in new..cur {
                self.ctx.slots[k as usize].notify.notify_waiters();
            }
        }
    }

    fn spawn(&mut self, local: usize, retire: Retire, origin: Option<Instant>) {
        let meta = self.layout.vus[local];
        if meta.group == NO_GROUP {
            return;
        }
        self.started += 1;
        let spec = VuSpec {
            local,
            global: meta.global,
            group: meta.group,
            retire,
            origin,
        };
        let run = vu::run(self.ctx.clone(), spec);
        if let Retire::Arrival(_) = retire {
            let alive = AliveGuard::new(self.arrivals_alive.clone());
            self.joins.spawn(async move {
                let _alive = alive;
                run.await
            });
        } else {
            self.joins.spawn(run);
        }
    }

    fn reap(&mut self, r: Result<bool, tokio::task::JoinError>) {
        match r {
            Ok(true) => self.finished += 1,
            Ok(false) => {}
            Err(e) if e.is_panic() => self
                .ctx
                .recorder
                .count(&names::error(names::code::VU_PANIC), 1),
            Err(_) => {}
        }
    }

    /// Sleeps until `t`, reaping finished VUs; stops at a hard stop or at
    /// the deadline.
    async fn sleep_until(&mut self, t: Instant) -> Result<(), Interrupt> {
        let past_deadline = t > self.deadline;
        let until = t.min(self.deadline);
        loop {
            tokio::select! {
                biased;
                () = self.ctx.halt.wait() => return Err(Interrupt::Halt),
                () = tokio::time::sleep_until(until.into()) => {
                    if past_deadline {
                        return Err(Interrupt::Deadline);
                    }
                    // The generator's own lateness (see `crate::watch`).
                    let late = Instant::now().saturating_duration_since(until);
                    self.ctx.recorder.latency(
                        names::GENERATOR_START_LAG,
                        late.as_micros() as u64,
                    );
                    return Ok(());
                }
                Some(r) = self.joins.join_next(), if !self.joins.is_empty() => self.reap(r),
            }
        }
    }

    /// After the last phase: every VU retires (stops after its current step).
    pub(super) fn end_load(&mut self) {
        if let Some(p) = &self.progress {
            p.set_phase("finishing");
        }
        self.set_want(0);
        for f in self.ctx.arrival_over.iter() {
            f.set();
        }
    }

    /// Waits for every VU to end, at most until the deadline.
    pub(super) async fn drain(&mut self) -> Result<(), Interrupt> {
        while !self.joins.is_empty() {
            tokio::select! {
                biased;
                () = self.ctx.halt.wait() => return Err(Interrupt::Halt),
                () = tokio::time::sleep_until(self.deadline.into()) => return Err(Interrupt::Deadline),
                Some(r) = self.joins.join_next() => self.reap(r),
            }
        }
        Ok(())
    }

    /// After a hard stop: VUs get [`HALT_GRACE`] to end, then their tasks
    /// are aborted.
    pub(super) async fn drain_hard(&mut self) {
        let until = Instant::now() + HALT_GRACE;
        let mut aborted = false;
        while !self.joins.is_empty() {
            tokio::select! {
                () = tokio::time::sleep_until(until.into()), if !aborted => {
                    self.joins.abort_all();
                    aborted = true;
                }
                Some(r) = self.joins.join_next() => self.reap(r),
            }
        }
    }
}
