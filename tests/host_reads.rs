//! Every device-to-host read in src/ goes through `src/util/readback.rs`, which counts it, so
//! that tests and `gptlab bench` can bound how often a step waits for a GPU. This test refuses
//! a read written anywhere else. Test code may read as it likes. Likewise every upload of the
//! generation path goes through `src/util/upload.rs`, so that a decode step's uploads are
//! counted too.

mod common;
use common::*;
use gptlab::util::readback;
use std::path::Path;

/// What a device-to-host read looks like in dfdx 0.13 and cudarc.
const READS: [&str; 5] = [
    ".as_vec()",
    ".array()",
    ".copy_into(",
    "dtoh_sync_copy",
    "dtoh_",
];

/// Files allowed to: the counting helper itself, and the CPU-only fast path, whose copies of
/// its own host buffers are no device reads: the fused kernels, and the host KV cache, which
/// only a device that keeps its fast path on the host uses (`Backend::host_cache`: the CPU
/// without `GPTLAB_KERNELS=portable`).
const ALLOWED: [&str; 4] = [
    "util/readback.rs",
    "model/kernels/host.rs",
    "model/kernels/frozen.rs",
    "model/batch_cache.rs",
];

/// `path:line: text` for every read outside the allowed files, test code excluded. A line that
/// hands its read to the helper (`readback::raw(|| ...)`) is counted, so it passes.
fn strays(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (rel, code) in source_files(src) {
        if ALLOWED.iter().any(|a| rel == *a) {
            continue;
        }
        for (i, line) in code.lines().enumerate() {
            let read = READS.iter().any(|r| line.contains(r));
            if read && !line.contains("readback::") && !line.trim_start().starts_with("//") {
                found.push(format!("src/{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    found.sort();
    found
}

/// What a host-to-device upload looks like in dfdx 0.13 and cudarc.
const UPLOADS: [&str; 5] = [
    "tensor_from_vec(",
    ".tensor(",
    "copy_from(",
    "htod_sync_copy",
    "htod_",
];

/// The files of generation (prefill and decode). The host cache's copies back into tensors
/// (`model/batch_cache.rs`) are left out for the same reason as its reads: only the CPU runs it.
const GENERATION: [&str; 7] = [
    "model/generate.rs",
    "model/lm.rs",
    "model/gpt.rs",
    "model/block.rs",
    "model/attention.rs",
    "model/kv_cache.rs",
    "model/device_cache.rs",
];

/// `path:line: text` for every upload in the generation files that does not go through the
/// counting helper, test code excluded.
fn stray_uploads(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (rel, code) in source_files(src) {
        if !GENERATION.iter().any(|g| rel == *g) {
            continue;
        }
        for (i, line) in code.lines().enumerate() {
            let upload = UPLOADS.iter().any(|u| line.contains(u));
            if upload && !line.contains("upload::") && !line.trim_start().starts_with("//") {
                found.push(format!("src/{rel}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_upload_of_generation_goes_through_the_counting_helper() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let strays = stray_uploads(&src);
    assert!(
        strays.is_empty(),
        "uploads in generation outside src/util/upload.rs (use upload::tensor, so they are \
         counted):\n{}",
        strays.join("\n")
    );
}

#[test]
fn the_check_finds_an_upload() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("model")).unwrap();
    let file = tmp.path().join("model/device_cache.rs");
    std::fs::write(&file, "fn f() { let t = dev.tensor_from_vec(v, (n,)); }\n").unwrap();
    assert_eq!(
        stray_uploads(tmp.path()),
        vec!["src/model/device_cache.rs:1: fn f() { let t = dev.tensor_from_vec(v, (n,)); }"]
    );
    std::fs::write(&file, "fn f() { let t = upload::tensor(&dev, v, (n,)); }\n").unwrap();
    assert!(stray_uploads(tmp.path()).is_empty());
}

#[test]
fn every_host_read_goes_through_the_counting_helper() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let strays = strays(&src);
    assert!(
        strays.is_empty(),
        "device-to-host reads outside src/util/readback.rs (use readback::to_vec / scalar / \
         scalars / raw, so they are counted):\n{}",
        strays.join("\n")
    );
}

#[test]
fn the_check_finds_a_read() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("stages")).unwrap();
    let file = tmp.path().join("stages/x.rs");
    std::fs::write(
        &file,
        "fn f() { let v = t.as_vec(); }\n#[cfg(test)]\nmod tests { fn g() { t.array(); } }\n",
    )
    .unwrap();
    assert_eq!(
        strays(tmp.path()),
        vec!["src/stages/x.rs:1: fn f() { let v = t.as_vec(); }"]
    );
    std::fs::write(&file, "fn f() { let v = readback::to_vec(&t); }\n").unwrap();
    assert!(strays(tmp.path()).is_empty());
}

/// Reads on this thread for a whole `gptlab run` of `spec` (in process) with these steps of
/// the pretrain and SFT stages.
fn reads_of_run(dir: &Path, spec: &Path, base_steps: usize, sft_steps: usize) -> u64 {
    let options = gptlab::runner::RunOptions {
        results_root: dir.join("results"),
        load: gptlab::spec::LoadOptions {
            data_root: repo().join("datasets"),
            sets: vec![
                format!("stages.base.steps={base_steps}"),
                format!("stages.assistant.steps={sft_steps}"),
            ],
        },
        // Every run trains its stages: one taken from an earlier run would read nothing.
        reuse: gptlab::runner::Reuse::Off,
    };
    let before = readback::count();
    gptlab::runner::run_spec(spec, &options).unwrap();
    readback::count() - before
}

/// A training step reads back a constant number of scalars (the loss, with SFT's accuracy
/// stacked beside it, and the gradient norm), whatever the model size and however many
/// micro-batches it accumulates: per step, not per parameter or per micro-batch. Steps are
/// told apart from the run's fixed reads (evaluation, checkpoints) by running more of them.
/// SFT holds out no questions: its exact match generates answers whose length, and so whose
/// decode reads, depend on how far the model trained.
#[test]
fn a_training_step_reads_back_at_most_two_scalars() {
    let tmp = tempdir();
    for preset in ["nano", "small"] {
        let spec = base_spec(&format!("reads-{preset}"))
            .block_size(16)
            .base("batch_size = 2\ngrad_accum = 2\nlr = 1e-3\neval_every = 0")
            .then(
                r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{demo}/sft.jsonl"
batch_size = 2
grad_accum = 2
eval_every = 0
val_fraction = 0.0
"#,
            )
            .text()
            .replace("preset = \"nano\"", &format!("preset = \"{preset}\""));
        let spec = write_spec(tmp.path(), &format!("{preset}.toml"), &spec);
        let base = reads_of_run(tmp.path(), &spec, 2, 2);
        let pretrain = reads_of_run(tmp.path(), &spec, 6, 2) as f64 - base as f64;
        let sft = reads_of_run(tmp.path(), &spec, 2, 6) as f64 - base as f64;
        say(&format!(
            "{preset}: {:.2} reads per pretrain step, {:.2} per SFT step",
            pretrain / 4.0,
            sft / 4.0
        ));
        assert!(
            pretrain / 4.0 <= 2.0,
            "{preset}: pretrain reads {pretrain} in 4 steps"
        );
        assert!(sft / 4.0 <= 2.0, "{preset}: SFT reads {sft} in 4 steps");
        assert!(
            pretrain > 0.0 && sft > 0.0,
            "the counter sees the steps' reads"
        );
    }
}
