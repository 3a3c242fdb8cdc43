//! A sweep opened for running: its points with their resolved specs, and each point's current
//! status. A point's identity is its resolved spec's run id; "finished" means that run's
//! meta.json says complete, whatever the status files say.

use super::status::{this_host, PointStatus, State};
use crate::results::{self, read_meta, SweepDirs};
use crate::spec::{load_spec, read_sweep, LoadOptions, LoadedSpec, Sweep, SweepPoint};
use anyhow::Result;
use std::path::{Path, PathBuf};

pub struct Resolved {
    pub point: SweepPoint,
    /// The point's spec, or why it does not load (a bad value fails this point only).
    pub spec: std::result::Result<LoadedSpec, String>,
}

impl Resolved {
    pub fn run_id(&self) -> Option<&str> {
        self.spec.as_ref().ok().map(|s| s.run_id.as_str())
    }
}

pub struct OpenSweep {
    /// The sweep file, absolute.
    pub file: PathBuf,
    pub sweep: Sweep,
    /// Data root and the `--set`s every point gets before its own.
    pub shared: LoadOptions,
    pub dirs: SweepDirs,
    pub points: Vec<Resolved>,
}

impl OpenSweep {
    pub fn open(file: &Path, shared: LoadOptions, results_root: &Path) -> Result<OpenSweep> {
        let file = crate::spec::paths::absolute(file);
        let shared = LoadOptions {
            data_root: crate::spec::paths::absolute(&shared.data_root),
            sets: shared.sets,
        };
        let sweep = read_sweep(&file)?;
        let dirs = SweepDirs::new(&crate::spec::paths::absolute(results_root), &sweep.name);
        let points = sweep
            .points
            .iter()
            .map(|point| Resolved {
                point: point.clone(),
                spec: load_spec(&sweep.base, &point.load_options(&shared))
                    .map_err(|error| format!("{error:#}")),
            })
            .collect();
        Ok(OpenSweep {
            file,
            sweep,
            shared,
            dirs,
            points,
        })
    }

    pub fn run_dir(&self, index: usize) -> Option<PathBuf> {
        let spec = self.points[index].spec.as_ref().ok()?;
        Some(results::run_dir(
            &self.dirs.runs(),
            &spec.spec.name,
            &spec.run_id,
        ))
    }

    pub fn is_complete(&self, index: usize) -> bool {
        self.run_dir(index)
            .and_then(|dir| read_meta(&dir))
            .is_some_and(|meta| meta.complete)
    }

    /// The earlier point with the same resolved spec, if any: such a point shares that run.
    pub fn duplicate_of(&self, index: usize) -> Option<usize> {
        let id = self.points[index].run_id()?;
        (0..index).find(|&j| self.points[j].run_id() == Some(id))
    }

    /// The point's label from the keys whose value differs between points: a one-value grid
    /// key (a constant override such as fewer steps) says nothing about the point.
    pub fn label(&self, index: usize) -> String {
        let point = &self.points[index].point;
        let varies = |key: &str| self.key_varies(key);
        let sets: Vec<_> = point
            .sets
            .iter()
            .filter(|(k, _)| varies(k))
            .cloned()
            .collect();
        if sets.is_empty() {
            return point.label();
        }
        SweepPoint { index, sets }.label()
    }

    /// Whether the points give `key` more than one value.
    pub fn key_varies(&self, key: &str) -> bool {
        let mut values = self
            .points
            .iter()
            .filter_map(|r| r.point.sets.iter().find(|(k, _)| k == key).map(|(_, v)| v));
        let first = values.next();
        values.any(|v| Some(v) != first)
    }

    /// A fresh status for a point that has none (or an outdated one).
    pub fn blank_status(&self, index: usize) -> PointStatus {
        let resolved = &self.points[index];
        PointStatus {
            index,
            label: self.label(index),
            sets: resolved.point.set_args(),
            state: State::Pending,
            run_id: resolved.run_id().map(str::to_string),
            run_dir: self.run_dir(index),
            error: resolved.spec.as_ref().err().cloned(),
            wall_s: None,
            started: None,
            finished: None,
            host: this_host(),
            pid: None,
            attempts: 0,
            metrics: Vec::new(),
        }
    }

    /// What is known about a point now: its status file if it is about the same spec, made
    /// `ok` (with final metrics) when its run is complete, else `pending`.
    pub fn current_status(&self, index: usize) -> PointStatus {
        let blank = self.blank_status(index);
        let mut status = match PointStatus::read(&self.dirs.status(index)) {
            Some(s) if s.run_id == blank.run_id && s.sets == blank.sets => s,
            _ => blank.clone(),
        };
        status.label = blank.label;
        if status.state != State::Ok && self.is_complete(index) {
            status.state = State::Ok;
            status.error = None;
        }
        if status.state == State::Ok && status.metrics.is_empty() {
            if let Some(dir) = &status.run_dir {
                status.metrics = results::final_metrics(dir);
            }
        }
        status
    }

    pub fn statuses(&self) -> Vec<PointStatus> {
        (0..self.points.len())
            .map(|i| self.current_status(i))
            .collect()
    }
}
