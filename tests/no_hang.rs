//! Nothing hangs: the product run the way people run it, with fewer compute threads than a
//! laptop has. A sweep with `--jobs 2` on 2 cores gives each point one thread, a Slurm task
//! with one CPU does too, and so does a one-core container; a run with `[report] eval` must
//! still finish. Each command runs under a timeout, so a deadlock fails here in minutes.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Well above what these tiny runs take (seconds) on a busy 2-core machine.
const LIMIT: Duration = Duration::from_secs(180);

/// A quickstart-shaped run in miniature: pretrain, SFT, and `[report] eval` asking both
/// stages held-out questions once they have trained.
fn spec() -> String {
    base_spec("tiny-eval")
        .top("seed = 3")
        .base("steps = 20\nbatch_size = 8\neval_every = 10\neval_batches = 1")
        .then(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{demo}/sft.jsonl"
val_data = "{demo}/sft_val.jsonl"
steps = 20
batch_size = 8
eval_every = 10
eval_batches = 1
[report]
prompts = ["香蕉是"]
compare = ["base", "assistant"]
eval = { held_out = "assistant", limit = 6 }
sampling = { temperature = 0.0, max_new_tokens = 6 }
"#,
        )
        .text()
}

const SWEEP: &str = r#"
base = "tiny-eval.toml"
name = "lr"
[grid]
"stages.base.lr" = [1e-3, 3e-3]
"#;

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempdir();
    write_spec(tmp.path(), "tiny-eval.toml", &spec());
    let sweep = write_spec(tmp.path(), "sweep.toml", SWEEP);
    (tmp, sweep)
}

/// Both stages were evaluated: the run went through `[report] eval` to the end.
fn assert_evaluated(run: &Path) {
    let summary = std::fs::read_to_string(run.join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    for stage in ["base", "assistant"] {
        assert!(
            summary[stage]["eval/exact_match"].is_number(),
            "{stage} has no eval/exact_match in {summary}"
        );
    }
}

#[test]
fn a_run_with_one_compute_thread_finishes_its_report_eval() {
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "tiny-eval.toml", &spec());
    let mut command = gptlab_command(&["run", spec.to_str().unwrap()], tmp.path());
    command.env("RAYON_NUM_THREADS", "1");
    assert_evaluated(&run_dir(&output_within(&mut command, LIMIT)));
}

#[test]
fn a_run_pinned_to_one_core_finishes_its_report_eval() {
    let has_taskset = Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_taskset {
        // A line in cargo test's own output, not only in captured stderr.
        println!("SKIPPED: taskset is not installed (util-linux); the one-thread run test covers the same path");
        return;
    }
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "tiny-eval.toml", &spec());
    let mut command = Command::new("taskset");
    command
        .args(["-c", "0", env!("CARGO_BIN_EXE_gptlab"), "run"])
        .arg(&spec)
        .current_dir(tmp.path())
        .env("GPTLAB_RESULTS", tmp.path().join("results"))
        .env_remove("RAYON_NUM_THREADS");
    assert_evaluated(&run_dir(&output_within(&mut command, LIMIT)));
}

#[test]
fn a_sweep_with_two_jobs_finishes_every_point() {
    let (tmp, sweep) = setup();
    let mut command = gptlab_command(
        &["sweep", sweep.to_str().unwrap(), "--jobs", "2"],
        tmp.path(),
    );
    // On 2 cores (CI's) each point gets one compute thread.
    command.env_remove("RAYON_NUM_THREADS");
    let out = output_within(&mut command, 2 * LIMIT);
    assert!(out.status.success(), "{}", text(&out));
    let root = tmp.path().join("results/lr");
    let summary = std::fs::read_to_string(root.join("summary.csv")).unwrap();
    assert_eq!(summary.matches(",ok,").count(), 2, "{summary}");
    for line in std::fs::read_dir(root.join("runs/tiny-eval")).unwrap() {
        assert_evaluated(&line.unwrap().path());
    }
}

#[test]
fn a_slurm_task_with_one_cpu_finishes_its_point() {
    let (tmp, sweep) = setup();
    let out = gptlab(
        &["sweep", sweep.to_str().unwrap(), "--emit", "slurm"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut task = Command::new("bash");
    task.arg(tmp.path().join("results/lr/sweep.sbatch"))
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("SLURM_CPUS_PER_TASK", "1")
        .current_dir(tmp.path());
    let out = output_within(&mut task, LIMIT);
    assert!(out.status.success(), "{}", text(&out));
    let status = std::fs::read_to_string(tmp.path().join("results/lr/points/0.json")).unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["state"], "ok", "{status}");
    assert_evaluated(Path::new(status["run_dir"].as_str().unwrap()));
}
