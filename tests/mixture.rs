//! Weighted data mixtures end to end: a pretraining stage on text and Q&A sources by share,
//! an SFT stage on two weighted files; the log, meta.json, metrics.csv and the report show
//! each source's share, size, passes and (pretraining) held-out loss.

mod common;
use common::*;

fn spec() -> String {
    base_spec("mixture")
        .data(
            r#"[
    "{demo}/corpus.txt",
    { path = "{demo}/amusement_park.txt", weight = 0.3, name = "park" },
    { path = "{demo}/sft.jsonl", weight = 0.2, name = "qa" },
]"#,
        )
        .base("steps = 30\nbatch_size = 8\neval_every = 15\neval_batches = 2")
        .then(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = [{ path = "{demo}/sft.jsonl", weight = 0.75 }, { path = "{demo}/sft_val.jsonl", weight = 0.25, name = "more" }]
steps = 10
batch_size = 8
eval_every = 10
eval_batches = 1
"#,
        )
        .text()
}

#[test]
fn every_source_is_reported_with_its_share_size_passes_and_loss() {
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "mixture.toml", &spec());
    let out = gptlab(&["run", spec.to_str().unwrap()], tmp.path());
    let run = run_dir(&out);
    let log = text(&out);
    assert!(log.contains("[base] mixture:"), "{log}");
    assert!(log.contains("park") && log.contains("0.300"), "{log}");

    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    let sources = meta["stages"][0]["sources"].as_array().unwrap();
    let names: Vec<&str> = sources
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["park", "qa", "corpus"]);
    let shares: Vec<f64> = sources
        .iter()
        .map(|s| s["share"].as_f64().unwrap())
        .collect();
    assert!(
        (shares[2] - 0.5).abs() < 1e-9,
        "the plain entry gets what is left: {shares:?}"
    );
    for s in sources {
        // passes = steps x batch x block_size x share / tokens
        let expected =
            30.0 * 8.0 * 32.0 * s["share"].as_f64().unwrap() / s["size"].as_f64().unwrap();
        assert!(
            (s["passes"].as_f64().unwrap() - expected).abs() < 1e-6,
            "{s}"
        );
        assert_eq!(s["unit"], "tokens");
    }
    let sft = meta["stages"][1]["sources"].as_array().unwrap();
    assert_eq!(sft.len(), 2);
    assert_eq!(sft[1]["name"], "more");
    assert_eq!(sft[1]["unit"], "records");

    let csv = run.join("base/metrics.csv");
    for source in ["park", "qa", "corpus"] {
        let losses = read_metric(&csv, &format!("val/loss/{source}"));
        assert_eq!(losses.len(), 3, "step 0, 15 and 30 for {source}");
        assert!(losses[2] < losses[0], "{source} learns: {losses:?}");
    }
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("## Data mixture"), "{report}");
    assert!(report.contains("| base | park | 30.0% |"), "{report}");
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("id=\"mixture\""));
}

#[test]
fn a_source_of_weight_zero_is_never_drawn_and_set_addresses_it_by_name() {
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "mixture.toml", &spec());
    let out = gptlab(
        &[
            "run",
            spec.to_str().unwrap(),
            "--set",
            "stages.base.data.park.weight=0",
            "--set",
            "stages.base.steps=4",
            "--set",
            "stages.base.eval_every=4",
        ],
        tmp.path(),
    );
    let run = run_dir(&out);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    let park = &meta["stages"][0]["sources"][0];
    assert_eq!(
        (park["name"].as_str(), park["passes"].as_f64()),
        (Some("park"), Some(0.0))
    );
    assert!((meta["stages"][0]["sources"][2]["share"].as_f64().unwrap() - 0.8).abs() < 1e-9);
    let spec_text = std::fs::read_to_string(run.join("spec.toml")).unwrap();
    assert!(spec_text.contains("weight = 0.0"), "{spec_text}");
}

#[test]
fn bad_weights_are_errors_naming_the_key() {
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "mixture.toml", &spec());
    let out = gptlab(
        &[
            "validate",
            spec.to_str().unwrap(),
            "--set",
            "stages.base.data.park.weight=0.9",
        ],
        tmp.path(),
    );
    let message = text(&out);
    assert!(!out.status.success());
    assert!(
        message.contains("stages.base.data") && message.contains("more than 1"),
        "{message}"
    );
}
