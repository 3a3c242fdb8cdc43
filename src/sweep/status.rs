//! One point's status, `points/<i>.json`: written atomically by whichever process runs the
//! point, so concurrent points (threads, processes, Slurm nodes) never write the same file.
//! `summary.csv` is only ever derived from these files.

use crate::util::write_json_atomic;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not run yet (no status file, or one from an older version of the point).
    Pending,
    /// A process is running it now, or was when it was killed.
    Running,
    Ok,
    Failed,
    /// Stopped by Ctrl-C / SIGTERM after saving a checkpoint: resumes on the next run.
    Interrupted,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Ok => "ok",
            State::Failed => "failed",
            State::Interrupted => "interrupted",
        }
    }

    /// Ok and failed points stay as they are until asked otherwise.
    pub fn is_settled(self) -> bool {
        matches!(self, State::Ok | State::Failed)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointStatus {
    pub index: usize,
    pub label: String,
    /// The point's overrides as `key=value` (what its `gptlab run` got).
    pub sets: Vec<String>,
    pub state: State,
    /// The resolved spec's run id: a status whose run id differs from the point's current one
    /// is about another spec (the sweep or the base changed) and is ignored.
    pub run_id: Option<String>,
    pub run_dir: Option<PathBuf>,
    pub error: Option<String>,
    /// Seconds the last attempt took.
    pub wall_s: Option<f64>,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// Where the point runs or ran, and the pid of its `gptlab run` process.
    pub host: String,
    pub pid: Option<u32>,
    pub attempts: u32,
    /// Final metrics, `stage/metric` -> last value, in stage order.
    pub metrics: Vec<(String, f64)>,
}

impl PointStatus {
    pub fn read(path: &Path) -> Option<PointStatus> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        write_json_atomic(path, self)
    }

    /// Running on this host in a process that is still alive: someone else owns the point.
    pub fn is_live(&self) -> bool {
        self.state == State::Running
            && self.host == this_host()
            && self.pid.is_some_and(process_alive)
    }
}

pub fn this_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn now() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whether `pid` is a live process running this same program (so a recycled pid, or a
/// killed point left as a zombie by a parent that no longer reaps, does not count).
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    // Signal 0 checks that the process exists without touching it.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
        return false;
    }
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    if let Ok(stat) = std::fs::read_to_string(proc_dir.join("stat")) {
        // `pid (name) state ...`: the state follows the last `)`.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.trim().chars().next());
        if matches!(state, Some('Z') | Some('X')) {
            return false;
        }
    }
    match (
        std::fs::read_link(proc_dir.join("exe")),
        std::env::current_exe(),
    ) {
        (Ok(theirs), Ok(ours)) => theirs == ours,
        _ => true,
    }
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: State, pid: Option<u32>, host: &str) -> PointStatus {
        PointStatus {
            index: 3,
            label: "lr=0.001".into(),
            sets: vec!["stages.base.lr=0.001".into()],
            state,
            run_id: Some("abc".into()),
            run_dir: None,
            error: None,
            wall_s: Some(1.5),
            started: None,
            finished: None,
            host: host.into(),
            pid,
            attempts: 1,
            metrics: vec![("base/loss".into(), 2.5)],
        }
    }

    #[test]
    fn round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points/3.json");
        let s = status(State::Failed, Some(1), "h");
        s.write(&path).unwrap();
        assert_eq!(PointStatus::read(&path), Some(s));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"state\": \"failed\""), "{text}");
        assert_eq!(PointStatus::read(&dir.path().join("missing.json")), None);
    }

    #[test]
    fn live_only_for_a_running_process_on_this_host() {
        let me = std::process::id();
        assert!(status(State::Running, Some(me), &this_host()).is_live());
        // A live process running another program is not one of ours.
        let mut other = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(!status(State::Running, Some(other.id()), &this_host()).is_live());
        other.kill().unwrap();
        other.wait().unwrap();
        assert!(!status(State::Ok, Some(me), &this_host()).is_live());
        assert!(!status(State::Running, Some(me), "elsewhere").is_live());
        // A finished child's pid: spawn, reap, then it is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!status(State::Running, Some(pid), &this_host()).is_live());
    }
}
