//! The amusement-park experiment: a base model's next-token distribution follows its data.
//! The demo text continues "我今天想去游乐园玩" with 过山车 75% and 大风车 25% of the time.

mod common;
use common::*;

#[test]
fn probe_share_matches_the_data_share() {
    let tmp = tempdir();
    let spec = write_spec(
        tmp.path(),
        "park.toml",
        &base_spec("park")
            .base(
                r#"
steps = 300
batch_size = 32
lr = 3e-3
warmup_steps = 20
eval_every = 0
"#,
            )
            .text(),
    );
    let run = run_dir(&gptlab(&["run", spec.to_str().unwrap()], tmp.path()));
    let out = gptlab(
        &[
            "probe",
            run.join("base").to_str().unwrap(),
            "--prompt",
            "我今天想去游乐园玩",
            "--candidates",
            "过山车,大风车",
            "--json",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p: Vec<f64> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["prob"].as_f64().unwrap())
        .collect();
    let share = p[0] / (p[0] + p[1]);
    assert!(
        (share - 0.75).abs() < 0.1,
        "P(过山车)/(P(过山车)+P(大风车)) = {share:.3}, data share 0.75"
    );
}
