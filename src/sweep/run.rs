//! Running a sweep's points. Each point is a child process of this same binary
//! (`gptlab run BASE --set k=v ... --results <sweep>/runs`), so a crash or kill of one point
//! cannot take the sweep down, `--jobs N` is N children at once, and a point interrupted in
//! any way resumes through the ordinary run resume (same resolved spec, same run folder).

use super::pilot;
use super::points::OpenSweep;
use super::status::{now, this_host, PointStatus, State};
use super::summary::{build_comparison, summary_table, update_summary};
use super::watch::{clock, Watch};
use crate::results::final_metrics;
use crate::results::sweep::SUMMARY_CSV;
use crate::train::trainer::INTERRUPTED;
use anyhow::{Context, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct RunSettings {
    /// Points run at once.
    pub jobs: usize,
    /// Run failed points again (otherwise they stay failed).
    pub rerun_failed: bool,
    /// Each point trains every stage itself (`gptlab run --no-reuse`).
    pub no_reuse: bool,
    /// Kill a point whose process uses no CPU and writes nothing for this long (None: never).
    pub stall_after: Option<Duration>,
}

/// What to do with one point, given what is on disk.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Run,
    /// Its run is complete.
    Done,
    /// It failed before and `--rerun-failed` was not given.
    KeepFailed,
    /// Another live process on this host is running it.
    Busy(u32),
    /// Its spec does not load: it fails without running.
    Invalid(String),
    /// An earlier point has the same resolved spec, so the same run.
    SameAs(usize),
}

pub fn decide(open: &OpenSweep, index: usize, rerun_failed: bool) -> Decision {
    if let Err(error) = &open.points[index].spec {
        return Decision::Invalid(error.clone());
    }
    if let Some(first) = open.duplicate_of(index) {
        return Decision::SameAs(first);
    }
    if open.is_complete(index) {
        return Decision::Done;
    }
    let status = open.current_status(index);
    if status.is_live() {
        return Decision::Busy(status.pid.unwrap_or(0));
    }
    if status.state == State::Failed && !rerun_failed {
        return Decision::KeepFailed;
    }
    Decision::Run
}

/// Runs every point that needs it, `jobs` at a time; keeps summary.csv current; prints the
/// summary table and builds the comparison at the end. True when every point is ok.
pub fn run_sweep(open: &OpenSweep, settings: RunSettings) -> Result<bool> {
    let n = open.points.len();
    println!(
        "sweep `{}`: {n} points of {} -> {}",
        open.sweep.name,
        open.sweep.base.display(),
        open.dirs.root.display()
    );
    update_summary(open)?;
    let jobs = settings.jobs.clamp(1, n.max(1));
    let watch = Watch::new(settings.stall_after);
    let mut order: Vec<usize> = (0..n).collect();
    let mut errors = Vec::new();
    if let Some(pilot) = pilot_for(open, jobs, settings) {
        println!(
            "point {} first, alone on every core: the other points take its stages {}",
            pilot.index,
            pilot.stages.join(", ")
        );
        order.retain(|&i| i != pilot.index);
        errors = run_lanes(open, &[pilot.index], 1, None, settings, &watch);
    }
    let threads = threads_per_point(jobs);
    errors.extend(run_lanes(open, &order, jobs, threads, settings, &watch));
    copy_duplicate_statuses(open)?;
    let statuses = update_summary(open)?;
    println!("\n{}", summary_table(&statuses));
    println!("summary: {}", open.dirs.summary_csv().display());
    if INTERRUPTED.load(Ordering::SeqCst) {
        println!("interrupted: run the same command again to resume the sweep");
        return Ok(false);
    }
    report_comparison(open);
    let ok = statuses.iter().filter(|s| s.state == State::Ok).count();
    if ok < n {
        println!(
            "{} of {n} points did not finish ok (rerun failed ones with --rerun-failed)",
            n - ok
        );
    }
    Ok(ok == n && errors.is_empty())
}

/// The pilot (`pilot.rs`) when points share the cores and take stages from each other.
fn pilot_for(open: &OpenSweep, jobs: usize, settings: RunSettings) -> Option<pilot::Pilot> {
    if jobs < 2 || settings.no_reuse || std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return None;
    }
    let to_run: Vec<usize> = (0..open.points.len())
        .filter(|&i| decide(open, i, settings.rerun_failed) == Decision::Run)
        .collect();
    pilot::choose(open, &to_run)
}

/// Runs the points `order` names, `lanes` at a time, each child with `threads` compute
/// threads; returns the errors.
fn run_lanes(
    open: &OpenSweep,
    order: &[usize],
    lanes: usize,
    threads: Option<usize>,
    settings: RunSettings,
    watch: &Watch,
) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // These threads only start child processes and wait for them: none of them computes, so
    // none calls into the compute thread pool that this (main) thread belongs to.
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..lanes)
            .map(|_| {
                scope.spawn(|| loop {
                    if INTERRUPTED.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(&index) = order.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        break;
                    };
                    let point = Point {
                        open,
                        index,
                        threads,
                        watch,
                        no_reuse: settings.no_reuse,
                    };
                    if let Err(e) = handle_point(&point, settings.rerun_failed) {
                        let message = format!("point {index}: {e:#}");
                        eprintln!("error: {message}");
                        errors.lock().unwrap().push(message);
                    }
                })
            })
            .collect();
        watch.until(|| workers.iter().all(|w| w.is_finished()));
    });
    errors.into_inner().unwrap()
}

/// Runs point `index` alone (a Slurm array task): the same skip and resume rules; the last
/// point to settle builds the comparison. True when the point is ok.
pub fn run_single_point(open: &OpenSweep, index: usize, settings: RunSettings) -> Result<bool> {
    anyhow::ensure!(
        index < open.points.len(),
        "--point {index}: the sweep `{}` has points 0..={}",
        open.sweep.name,
        open.points.len().saturating_sub(1)
    );
    let watch = Watch::new(settings.stall_after);
    let point = Point {
        open,
        index,
        threads: None,
        watch: &watch,
        no_reuse: settings.no_reuse,
    };
    // As in run_sweep, the thread only waits for the child process.
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| handle_point(&point, settings.rerun_failed));
        watch.until(|| worker.is_finished());
        worker.join().expect("the point's thread panicked")
    })?;
    copy_duplicate_statuses(open)?;
    let statuses = update_summary(open)?;
    report_comparison(open);
    Ok(statuses[index].state == State::Ok)
}

/// With N points at once, each child gets cores/N compute threads (unless the user set
/// RAYON_NUM_THREADS), so N children do not fight over the same cores.
fn threads_per_point(jobs: usize) -> Option<usize> {
    if jobs <= 1 || std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    Some((cores / jobs).max(1))
}

fn report_comparison(open: &OpenSweep) {
    match build_comparison(open) {
        Ok(Some(html)) => println!("comparison: {}", html.display()),
        Ok(None) => {}
        Err(e) => eprintln!("warning: the comparison report could not be built: {e:#}"),
    }
}

/// A point to run, and what its child process is given and watched by.
struct Point<'a> {
    open: &'a OpenSweep,
    index: usize,
    /// RAYON_NUM_THREADS for the child, when several points share the cores.
    threads: Option<usize>,
    watch: &'a Watch,
    no_reuse: bool,
}

fn handle_point(point: &Point, rerun_failed: bool) -> Result<()> {
    let (open, index) = (point.open, point.index);
    let n = open.points.len();
    let label = open.label(index);
    let tag = format!("[point {index}/{n}] {label}:");
    match decide(open, index, rerun_failed) {
        Decision::Done => {
            println!("{tag} already complete, skipping");
            let mut status = open.current_status(index);
            if status.finished.is_none() {
                status.finished = Some(now());
            }
            status.write(&open.dirs.status(index))?;
        }
        Decision::KeepFailed => {
            println!("{tag} failed before, skipping (--rerun-failed runs it again)");
        }
        Decision::Busy(pid) => {
            println!("{tag} being run by process {pid} on this host, skipping");
        }
        Decision::SameAs(first) => {
            println!("{tag} same resolved spec as point {first}, shares its run");
        }
        Decision::Invalid(error) => {
            let mut status = open.current_status(index);
            status.state = State::Failed;
            status.error = Some(error.clone());
            status.finished = Some(now());
            status.write(&open.dirs.status(index))?;
            println!("{tag} failed: {}", first_line(&error));
        }
        Decision::Run => {
            println!("{tag} running (log: {})", open.dirs.log(index).display());
            let status = run_point(point)?;
            match status.state {
                State::Ok => println!(
                    "{tag} ok in {:.1}s -> {}",
                    status.wall_s.unwrap_or(0.0),
                    status.run_dir.as_deref().unwrap_or(Path::new("")).display()
                ),
                state => println!(
                    "{tag} {}: {}",
                    state.as_str(),
                    first_line(status.error.as_deref().unwrap_or(""))
                ),
            }
        }
    }
    if let Err(e) = update_summary(open) {
        eprintln!("warning: {} not updated: {e:#}", SUMMARY_CSV);
    }
    Ok(())
}

/// Runs one point as a child `gptlab run`, its output appended to points/<i>.log; the status
/// file says `running` (with the child's pid) while it runs and the outcome after.
fn run_point(point: &Point) -> Result<PointStatus> {
    let (open, index) = (point.open, point.index);
    let status_path = open.dirs.status(index);
    let log_path = open.dirs.log(index);
    let mut status = open.current_status(index);
    status.state = State::Running;
    status.error = None;
    status.metrics.clear();
    status.attempts += 1;
    status.started = Some(now());
    status.finished = None;
    status.host = this_host();

    let mut command = point_command(open, index, point.no_reuse)?;
    if let Some(threads) = point.threads {
        command.env("RAYON_NUM_THREADS", threads.to_string());
    }
    std::fs::create_dir_all(open.dirs.points())
        .with_context(|| format!("cannot create {}", open.dirs.points().display()))?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open the log {}", log_path.display()))?;
    let log_start = log.seek(SeekFrom::End(0))?;
    writeln!(
        log,
        "=== attempt {} at {}: {command:?}",
        status.attempts,
        now()
    )?;
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?);

    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `gptlab run` for point {index}"))?;
    status.pid = Some(child.id());
    status.write(&status_path)?;
    let label = open.label(index);
    point
        .watch
        .started(index, label, child.id(), log_path.clone());
    let exit = wait_forwarding_interrupt(&mut child);
    let stalled = point.watch.finished(index);
    let exit = exit?;

    status.wall_s = Some(started.elapsed().as_secs_f64());
    status.finished = Some(now());
    let output = read_from(&log_path, log_start);
    if open.is_complete(index) {
        status.state = State::Ok;
        status.metrics = status
            .run_dir
            .as_deref()
            .map(final_metrics)
            .unwrap_or_default();
    } else if let Some(quiet) = stalled {
        status.state = State::Failed;
        status.error = Some(format!(
            "stalled: the run used no CPU and wrote nothing for {}, so the sweep stopped it \
             (a hang is a bug: please report it with the point's log)",
            clock(quiet)
        ));
    } else if INTERRUPTED.load(Ordering::SeqCst) || output.contains("interrupted at step") {
        status.state = State::Interrupted;
        status.error = Some(
            "stopped by an interrupt (checkpoint saved); run the sweep again to resume".into(),
        );
    } else {
        status.state = State::Failed;
        status.error = Some(failure_message(&output, exit));
    }
    status.write(&status_path)?;
    Ok(status)
}

/// `gptlab run BASE --results <sweep>/runs --data-root D --set shared... --set point...`.
/// The points share `<sweep>/runs`, so a stage that several points need with the same inputs
/// (all but the swept ones, often) trains once and the others take it.
pub fn point_command(open: &OpenSweep, index: usize, no_reuse: bool) -> Result<Command> {
    let mut command = Command::new(gptlab_exe()?);
    command
        .arg("run")
        .arg(&open.sweep.base)
        .arg("--results")
        .arg(open.dirs.runs())
        .arg("--data-root")
        .arg(&open.shared.data_root);
    for set in open.points[index].point.load_options(&open.shared).sets {
        command.arg("--set").arg(set);
    }
    if no_reuse {
        command.arg("--no-reuse");
    }
    Ok(command)
}

/// This program, for the points' child processes. When the binary was rebuilt while the
/// sweep runs, Linux reports the old path as "... (deleted)"; /proc/self/exe still starts the
/// program this sweep began with, so every point of one sweep runs the same code.
pub fn gptlab_exe() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe().context("cannot find the gptlab executable")?;
    let deleted = exe.to_string_lossy().ends_with(" (deleted)") || !exe.exists();
    if deleted && Path::new("/proc/self/exe").exists() {
        return Ok("/proc/self/exe".into());
    }
    Ok(exe)
}

/// Waits for the child; on Ctrl-C / SIGTERM to this process, passes SIGINT on so the child
/// saves a checkpoint (a terminal's Ctrl-C reaches it anyway; `kill` of the sweep does not).
fn wait_forwarding_interrupt(child: &mut Child) -> Result<std::process::ExitStatus> {
    let mut forwarded = false;
    loop {
        if let Some(exit) = child.try_wait()? {
            return Ok(exit);
        }
        if !forwarded && INTERRUPTED.load(Ordering::SeqCst) {
            forwarded = true;
            #[cfg(unix)]
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGINT);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

/// The child's last `error:` line, else how it ended.
fn failure_message(output: &str, exit: std::process::ExitStatus) -> String {
    if let Some(line) = output.lines().rev().find(|l| l.starts_with("error: ")) {
        return line.trim_start_matches("error: ").to_string();
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = exit.signal() {
            return format!("`gptlab run` was killed by signal {signal}");
        }
    }
    format!("`gptlab run` ended with {exit}")
}

/// A point sharing an earlier point's run shows that point's outcome.
fn copy_duplicate_statuses(open: &OpenSweep) -> Result<()> {
    for index in 0..open.points.len() {
        if let Some(first) = open.duplicate_of(index) {
            let mut status = open.current_status(first);
            status.index = index;
            status.label = open.label(index);
            status.sets = open.points[index].point.set_args();
            status.write(&open.dirs.status(index))?;
        }
    }
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}
