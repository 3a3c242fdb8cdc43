//! Watching a sweep's running points, so that nothing hangs silently: every so often a line
//! says which points are running, for how long and how much CPU each has used, and a point
//! whose process stays alive without using CPU time or writing to its log for `stall_after`
//! is killed and recorded as failed ("stalled"), instead of holding the sweep forever.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A stall limit nobody waits out by accident, yet far above any pause of a healthy run
/// (every stage uses CPU all the time; even loading data does).
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(600);

/// How often the "running:" line is printed.
const HEARTBEAT: Duration = Duration::from_secs(30);

pub struct Watch {
    running: Mutex<BTreeMap<usize, Running>>,
    /// None: never stop a point.
    stall_after: Option<Duration>,
    started: Instant,
}

struct Running {
    label: String,
    pid: u32,
    started: Instant,
    log: PathBuf,
    /// CPU seconds and log size when last seen changing, and when that was.
    cpu: Option<f64>,
    log_len: u64,
    active_at: Instant,
    stalled: bool,
}

impl Watch {
    pub fn new(stall_after: Option<Duration>) -> Watch {
        Watch {
            running: Mutex::new(BTreeMap::new()),
            stall_after,
            started: Instant::now(),
        }
    }

    /// Point `index` now runs as process `pid`, writing to `log`.
    pub fn started(&self, index: usize, label: String, pid: u32, log: PathBuf) {
        let now = Instant::now();
        let running = Running {
            label,
            pid,
            started: now,
            cpu: cpu_seconds(pid),
            log_len: file_len(&log),
            log,
            active_at: now,
            stalled: false,
        };
        self.lock().insert(index, running);
    }

    /// Point `index`'s process has ended; `Some(limit)` when the watch killed it as stalled
    /// after `limit` without CPU time or output.
    pub fn finished(&self, index: usize) -> Option<Duration> {
        let running = self.lock().remove(&index)?;
        running
            .stalled
            .then(|| self.stall_after.unwrap_or_default())
    }

    /// Watches until `done()`: a heartbeat line every [`HEARTBEAT`], and stalled points killed.
    pub fn until(&self, done: impl Fn() -> bool) {
        let mut last_line = Instant::now();
        while !done() {
            std::thread::sleep(Duration::from_millis(200));
            self.stop_stalled();
            if last_line.elapsed() >= HEARTBEAT {
                last_line = Instant::now();
                if let Some(line) = self.status_line() {
                    println!("{line}");
                }
            }
        }
    }

    /// `[sweep 2m30s] running: point 0 lr=0.001 (2m29s, cpu 4m50s); point 1 ...`, or None
    /// when no point runs.
    pub fn status_line(&self) -> Option<String> {
        let running = self.lock();
        if running.is_empty() {
            return None;
        }
        let points: Vec<String> = running
            .iter()
            .map(|(index, r)| {
                let cpu = cpu_seconds(r.pid)
                    .map(|s| format!(", cpu {}", clock(Duration::from_secs_f64(s))))
                    .unwrap_or_default();
                format!(
                    "point {index} {} ({}{cpu})",
                    r.label,
                    clock(r.started.elapsed())
                )
            })
            .collect();
        Some(format!(
            "[sweep {}] running: {}",
            clock(self.started.elapsed()),
            points.join("; ")
        ))
    }

    /// Kills every point that has used no CPU and written nothing for `stall_after`.
    fn stop_stalled(&self) {
        let Some(limit) = self.stall_after else {
            return;
        };
        let now = Instant::now();
        for (index, r) in self.lock().iter_mut() {
            let (cpu, log_len) = (cpu_seconds(r.pid), file_len(&r.log));
            if cpu != r.cpu || log_len != r.log_len {
                (r.cpu, r.log_len, r.active_at) = (cpu, log_len, now);
            }
            // Without /proc the CPU time is unknown, and a quiet log alone proves nothing.
            if r.stalled || r.cpu.is_none() || now - r.active_at < limit {
                continue;
            }
            r.stalled = true;
            eprintln!(
                "error: point {index} {} (pid {}) used no CPU and wrote nothing for {}: it hangs; \
                 stopping it (see {})",
                r.label,
                r.pid,
                clock(limit),
                r.log.display()
            );
            #[cfg(unix)]
            unsafe {
                libc::kill(r.pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<usize, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The user + system CPU seconds process `pid` has used, from /proc (Linux); None elsewhere.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its `)` are fixed.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks / per_second as f64)
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// `45s`, `2m05s`, `1h02m`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_like_a_stopwatch() {
        assert_eq!(clock(Duration::from_secs(45)), "45s");
        assert_eq!(clock(Duration::from_secs(125)), "2m05s");
        assert_eq!(clock(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn a_busy_process_shows_cpu_time_and_a_sleeping_one_is_stopped_as_stalled() {
        if cpu_seconds(std::process::id()).is_none() {
            println!("SKIPPED: no /proc here, so stalls cannot be told apart");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("point.log");
        std::fs::write(&log, "").unwrap();
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let watch = Watch::new(Some(Duration::from_millis(600)));
        watch.started(3, "lr=0.1".into(), sleeper.id(), log);
        let line = watch.status_line().unwrap();
        assert!(
            line.contains("running: point 3 lr=0.1 (0s, cpu 0s)"),
            "{line}"
        );
        let exited = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                sleeper.wait().unwrap();
                exited.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let t = Instant::now();
            watch.until(|| exited.load(std::sync::atomic::Ordering::SeqCst));
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the sleeper was not stopped"
            );
        });
        let quiet = watch.finished(3).expect("recorded as stalled");
        assert!(quiet >= Duration::from_millis(600), "{quiet:?}");
        assert!(watch.status_line().is_none());
    }
}
