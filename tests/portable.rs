//! The portable path (`GPTLAB_KERNELS=portable`: the composed dfdx ops and the device KV
//! cache, the code CUDA runs) against the CPU's fused kernels, on the quickstart with fewer
//! steps, every stage: pretrain and SFT losses agree at every logged step, reward and RLHF
//! finish (their final metrics are printed side by side), and the trained assistant gives the
//! same greedy answers to the 99 held-out questions on both paths.

mod common;
use common::*;
use gptlab::infer::{open_stage, Prompt};
use gptlab::model::kernels::portable::with_portable;
use std::path::{Path, PathBuf};

fn quickstart(kernels: &str, dir: &Path) -> PathBuf {
    short_quickstart(dir, "GPTLAB_KERNELS", kernels)
}

fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn the_portable_quickstart_matches_the_fused_one() {
    let (fused_dir, portable_dir) = (tempdir(), tempdir());
    let (fused, portable) = std::thread::scope(|s| {
        let fused = s.spawn(|| quickstart("fused", fused_dir.path()));
        let portable = s.spawn(|| quickstart("portable", portable_dir.path()));
        (fused.join().unwrap(), portable.join().unwrap())
    });
    for stage in ["base", "assistant"] {
        let csv = |run: &Path| read_metric(&run.join(stage).join("metrics.csv"), "loss");
        let (a, b) = (csv(&fused), csv(&portable));
        assert_eq!(a.len(), b.len(), "{stage}: logged steps");
        assert!(!a.is_empty());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-3 * x.abs(),
                "{stage} loss at log line {i}: fused {x}, portable {y}"
            );
        }
    }
    let (a, b) = (summary(&fused), summary(&portable));
    for stage in ["rm", "rlhf"] {
        assert!(
            a[stage].is_object() && b[stage].is_object(),
            "{stage} finished"
        );
        say(&format!("{stage} fused:    {}", a[stage]));
        say(&format!("{stage} portable: {}", b[stage]));
    }
    same_greedy_answers(&fused.join("assistant"));
}

/// The assistant's greedy answers to the 99 held-out questions, fused vs portable.
fn same_greedy_answers(stage_dir: &Path) {
    let questions: Vec<Prompt> =
        std::fs::read_to_string(repo().join("datasets/demo/sft_val.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                Prompt::user(v["prompt"].as_str().unwrap(), true)
            })
            .collect();
    assert_eq!(questions.len(), 99);
    let stage = open_stage(stage_dir, &dfdx::prelude::Cpu::default()).unwrap();
    let answers = |portable| with_portable(portable, || stage.ask().greedy(&questions, 48));
    let (fused, portable) = (answers(false), answers(true));
    let differ: Vec<_> = fused
        .iter()
        .zip(&portable)
        .filter(|(a, b)| a != b)
        .collect();
    assert!(
        differ.is_empty(),
        "{} answers differ: {differ:?}",
        differ.len()
    );
}
