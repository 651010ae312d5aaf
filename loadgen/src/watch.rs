//! The generator watches itself, so that a slow generator is never taken
//! for a slow server: its process CPU and how late its own timers fire,
//! recorded as ordinary metrics ([`formats::names`]: `generator.cpu_ms`,
//! `generator.timer_lag`; the schedule records `generator.start_lag`).
//! They merge across workers, reach the progress line and the
//! `--metrics-listen` exposition like every metric, and the report judges
//! them ([`formats::report::GeneratorReport`]).
//!
//! * CPU: `utime + stime` of `/proc/self/stat` (Linux; elsewhere not
//!   measured), read every tick: one small file read, no thread.
//! * Timer lag: a task on the load's own runtime sleeps to a deadline
//!   every [`TICK`] and records how late it wakes. It waits in the same run
//!   queues as the tasks that read the sockets, so its lag is theirs: a
//!   generator whose workers are busy, or whose threads wait for a core,
//!   reads its sockets that much later and inflates every latency.
//! * Run-queue wait: how long the thread running the probe waited for a
//!   CPU while ready to run since the probe last ran on it
//!   (`/proc/thread-self/schedstat`, its second field), per [`TICK`],
//!   recorded when the thread ran at least a tenth of that time. The
//!   probe runs on the load's worker threads, so this is their wait alone
//!   (not that of other threads of the process, such as the tests' own), and
//!   it catches what the timer lag misses: a generator that shares its
//!   cores with another process gets its timers fired promptly (the
//!   scheduler favours a thread that wakes) and still waits for a CPU
//!   about as long as it runs, so every read of a busy socket comes late.
//! * Receive backlog is not measured: bytes unread per socket take an
//!   `ioctl(FIONREAD)` per socket per sample (20,000 syscalls a second at
//!   20,000 clients), and frames already read but not yet handled are
//!   exactly the tasks that wait behind the lag above, which the timer
//!   lag measures in one task.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use formats::names;

use crate::engine::StopSignal;
use crate::metrics::Recorder;

/// Period of the lag probe (and of the CPU reading).
pub const TICK: Duration = Duration::from_millis(100);

/// Clock ticks per second of `/proc/*/stat` times: `USER_HZ`, which Linux
/// fixes at 100 for user space on every architecture it runs on.
const USER_HZ: u64 = 100;

/// CPU milliseconds (user + system) this process used so far; `None`
/// where `/proc/self/stat` cannot be read.
pub fn process_cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_ms_of_stat(&stat)
}

/// Nanoseconds the calling thread has run on a CPU and waited for one
/// while ready to run (the first two fields of
/// `/proc/thread-self/schedstat`); `None` where it cannot be read.
fn thread_run_wait_ns() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = stat.split_whitespace().map(str::parse::<u64>);
    Some((fields.next()?.ok()?, fields.next()?.ok()?))
}

/// The share of the time a worker thread must have run for its wait to be
/// recorded: the wait of a thread with next to nothing to do says how busy
/// the machine is, not how late the load's work is done (on a loaded test
/// machine a 3-client run's idle threads waited 63 % of the time).
const BUSY_RUN_PERMILLE: u128 = 100;

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line, in ms.
/// The command name (field 2) may hold spaces and parentheses: fields are
/// counted after its last `)`.
fn cpu_ms_of_stat(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1000 / USER_HZ)
}

/// Records the process CPU, the timer lag and the run-queue wait into
/// `recorder` every [`TICK`] until `done`.
pub async fn watch(recorder: Recorder, done: StopSignal) {
    let first = process_cpu_ms();
    let mut counted = first;
    if first.is_some() {
        // The counter exists from the start: present means measured.
        recorder.count(names::GENERATOR_CPU_MS, 0);
    }
    // Per worker thread the probe has run on: when, and its run and wait
    // times then.
    let mut seen: HashMap<std::thread::ThreadId, (Instant, (u64, u64))> = HashMap::new();
    let mut next = Instant::now() + TICK;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next.into()) => {}
            () = done.stopped() => return,
        }
        let now = Instant::now();
        let late = now.saturating_duration_since(next);
        recorder.latency(names::GENERATOR_TIMER_LAG, late.as_micros() as u64);
        if let Some((run, wait)) = thread_run_wait_ns()
            && let Some((then, (ran_before, waited_before))) =
                seen.insert(std::thread::current().id(), (now, (run, wait)))
        {
            // Since the probe last ran on this thread, per tick; only when
            // the thread had work.
            let wall = now.saturating_duration_since(then).as_micros().max(1);
            let ran = u128::from(run.saturating_sub(ran_before) / 1000);
            let waited = u128::from(wait.saturating_sub(waited_before) / 1000);
            if ran * 1000 >= wall * BUSY_RUN_PERMILLE {
                let per_tick = waited * TICK.as_micros() / wall;
                recorder.latency(names::GENERATOR_RUN_WAIT, per_tick as u64);
            }
        }
        if let (Some(before), Some(cpu)) = (counted, process_cpu_ms()) {
            recorder.count(names::GENERATOR_CPU_MS, cpu.saturating_sub(before));
            counted = Some(cpu);
        }
        // A late tick starts the next period now: lag never accumulates.
        next = now.max(next) + TICK;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_times_are_fields_14_and_15() {
        let line = "4242 (a (b) c) R 1 4242 4242 0 -1 4194304 100 0 0 0 \
                    250 75 0 0 20 0 3 0 12345 1000000 500 18446744073709551615";
        assert_eq!(cpu_ms_of_stat(line), Some(3250));
        assert_eq!(cpu_ms_of_stat("4242 (x) R 1"), None);
        assert_eq!(cpu_ms_of_stat("garbage"), None);
    }

    #[test]
    fn this_process_cpu_grows_with_work() {
        let before = process_cpu_ms().expect("/proc/self/stat is readable on Linux");
        // Spin until the process clock moves (ticks are 10 ms), bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        while process_cpu_ms().unwrap() <= before && Instant::now() < deadline {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
        assert!(process_cpu_ms().unwrap() > before);
    }
}
