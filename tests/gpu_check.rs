//! scripts/gpu-check.sh runs end to end with the CPU standing in for CUDA (its dry run at
//! reduced sizes), so the script's own logic is tested before anyone takes it to a GPU.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn the_gpu_check_runs_end_to_end_with_the_cpu_standing_in() {
    for tool in ["curl", "python3"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return skip("the GPU check's dry run", tool);
        }
    }
    let tmp = tempdir();
    let out = tmp.path().join("check");
    let mut command = Command::new("bash");
    command
        .arg(repo().join("scripts/gpu-check.sh"))
        .env("GPU_CHECK_DEVICE", "cpu")
        .env("GPTLAB", env!("CARGO_BIN_EXE_gptlab"))
        .env("OUT", &out);
    let o = output_within(&mut command, Duration::from_secs(110));
    assert!(o.status.success(), "gpu-check.sh failed:\n{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("gpu-check.json")).unwrap())
            .unwrap();
    assert_eq!(json["device"], "cpu");
    for stage in ["base", "assistant"] {
        assert!(
            json["stages"][stage]["steps"].as_u64().unwrap() > 0,
            "{json}"
        );
    }
    assert_eq!(json["answers"].as_array().unwrap().len(), 4, "{json}");
    let train = &json["bench"]["train"][0];
    assert!(train["tokens_per_sec"].as_f64().unwrap() > 0.0, "{json}");
    assert!(train["reads_per_step"].as_f64().unwrap() <= 2.0, "{json}");
    assert_eq!(
        json["bench"]["generate"][0]["batched"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(json["serve_stream_bytes"].as_u64().unwrap() > 0);
    assert!(
        text(&o).contains("greedy answers identical"),
        "{}",
        text(&o)
    );
}
