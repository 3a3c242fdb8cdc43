//! A hand-written results run folder for the report tests (and for looking at a report).

use crate::results::{
    MetricsWriter, META_FILE, METRICS_FILE, PROBES_FILE, SAMPLES_FILE, SPEC_FILE, SUMMARY_FILE,
};
use std::path::Path;

pub const PROMPTS: [&str; 3] = ["香蕉是", "中国的首都是哪里?", "你叫什么名字?"];

/// Writes a four-stage run into `dir`; `lr` and `preset` vary between fixture runs.
pub fn write_run(dir: &Path, run_id: &str, lr: f64, preset: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let spec = format!(
        r#"name = "quickstart"
seed = 1337
device = "cpu"

[model]
preset = "{preset}"
block_size = 64

[tokenizer]
kind = "char"
vocab_size = 512

[[stages]]
name = "base"
kind = "pretrain"
data = ["corpus.txt"]
steps = 200
lr = {lr}

[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "sft.jsonl"
steps = 100

[[stages]]
name = "rm"
kind = "reward"
from = "assistant"
data = "prefs.jsonl"

[[stages]]
name = "rlhf"
kind = "rlhf"
algorithm = "ppo"
from = "assistant"
reward_model = "rm"
prompts = "prompts.jsonl"

[report]
prompts = ["香蕉是", "中国的首都是哪里?", "你叫什么名字?"]
compare = ["base", "assistant", "rlhf"]
probes = [{{ prompt = "我今天想去游乐园玩", candidates = ["过山车", "大风车"] }}]
"#
    );
    std::fs::write(dir.join(SPEC_FILE), spec).unwrap();
    std::fs::write(
        dir.join(META_FILE),
        format!(
            r#"{{"name":"quickstart","run_id":"{run_id}","started":"2025-01-02T03:04:05Z","finished":"2025-01-02T03:10:00Z",
            "complete":true,"git_rev":"abc1234","host":"ci","device":"cpu","preset":"{preset}","params":812544,
            "stages":[{{"name":"base","kind":"pretrain","tokens":204800,"wall_s":61.5,"tok_per_sec":3330,"steps":200}},
                      {{"name":"assistant","kind":"sft","tokens":51200,"wall_s":15.2,"tok_per_sec":3368,"steps":100}},
                      {{"name":"rm","kind":"reward","tokens":25600,"wall_s":8.0,"tok_per_sec":3200,"steps":50}},
                      {{"name":"rlhf","kind":"rlhf","tokens":40960,"wall_s":30.0,"tok_per_sec":1365,"steps":60}}]}}"#
        ),
    )
    .unwrap();
    let scale = (lr / 1e-3).sqrt();
    let noise = |s: u64| ((s * 7919 % 17) as f64 / 17.0 - 0.5) * 0.15;

    let mut base = MetricsWriter::create(
        &dir.join("base").join(METRICS_FILE),
        &["loss", "lr", "grad_norm"],
    )
    .unwrap();
    for s in 1..=200u64 {
        let loss = 6.2 / (1.0 + scale * s as f64 / 15.0) + 0.35 + noise(s);
        let lr_now = if s < 20 {
            lr * s as f64 / 20.0
        } else {
            lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * (s - 20) as f64 / 180.0).cos()))
        };
        base.log(
            s,
            s * 1024,
            &[
                ("loss", loss),
                ("lr", lr_now),
                ("grad_norm", 1.0 + noise(s)),
                ("tok_per_sec", 3300.0 + 200.0 * noise(s)),
            ],
        )
        .unwrap();
        if s % 20 == 0 {
            base.log(
                s,
                s * 1024,
                &[
                    ("val/loss", loss + 0.15),
                    ("val/bpb", (loss + 0.15) / std::f64::consts::LN_2 / 3.0),
                ],
            )
            .unwrap();
        }
    }
    base.flush().unwrap();

    let mut sft =
        MetricsWriter::create(&dir.join("assistant").join(METRICS_FILE), &["loss"]).unwrap();
    for s in 1..=100u64 {
        let loss = 2.4 / (1.0 + s as f64 / 30.0) + 0.5 + noise(s);
        sft.log(
            s,
            s * 512,
            &[
                ("loss", loss),
                ("mean_token_accuracy", 1.0 - loss / 3.0),
                ("lr", 5e-4),
            ],
        )
        .unwrap();
        if s % 25 == 0 {
            sft.log(
                s,
                s * 512,
                &[
                    ("val/loss", loss + 0.1),
                    ("val/exact_match", s as f64 / 150.0),
                ],
            )
            .unwrap();
        }
    }
    sft.flush().unwrap();

    let mut rm = MetricsWriter::create(&dir.join("rm").join(METRICS_FILE), &["loss"]).unwrap();
    for s in 1..=50u64 {
        let x = s as f64 / 50.0;
        rm.log(
            s,
            s * 512,
            &[
                ("loss", 0.69 * (1.0 - 0.6 * x) + noise(s) * 0.3),
                ("accuracy", 0.5 + 0.4 * x),
                ("margin", 2.0 * x),
            ],
        )
        .unwrap();
    }
    rm.flush().unwrap();

    let mut rl = MetricsWriter::create(&dir.join("rlhf").join(METRICS_FILE), &["loss"]).unwrap();
    for s in 1..=60u64 {
        let x = s as f64 / 60.0;
        rl.log(
            s,
            s * 682,
            &[
                ("loss", 0.3 - 0.2 * x + noise(s) * 0.2),
                ("objective/rlhf_reward", -0.5 + 1.5 * x + noise(s)),
                ("objective/kl", 0.2 * x),
                ("objective/entropy", 2.0 - x),
                ("policy/clipfrac_avg", 0.1 + noise(s) * 0.2),
            ],
        )
        .unwrap();
    }
    rl.flush().unwrap();

    let mut summary = serde_json::Map::new();
    for (stage, path) in [
        ("base", "base"),
        ("assistant", "assistant"),
        ("rm", "rm"),
        ("rlhf", "rlhf"),
    ] {
        let t = crate::results::read_metrics_csv(&dir.join(path).join(METRICS_FILE)).unwrap();
        let finals: serde_json::Map<String, serde_json::Value> = t
            .metric_names()
            .iter()
            .filter_map(|m| Some((m.to_string(), serde_json::json!(t.last(m)?))))
            .collect();
        summary.insert(stage.into(), serde_json::Value::Object(finals));
    }
    std::fs::write(
        dir.join(SUMMARY_FILE),
        serde_json::Value::Object(summary).to_string(),
    )
    .unwrap();

    let answers = [
        (
            "base",
            [
                "一种黄色的水果,香蕉是一种",
                "中国的首都是哪里?上海的首都是哪里?北京",
                "你叫什么名字?你叫什么名字?我",
            ],
        ),
        (
            "assistant",
            [
                "一种水果,味道很甜。",
                "中国的首都是北京。",
                "我是一个小助手 <3 & 很高兴认识你。",
            ],
        ),
        (
            "rlhf",
            [
                "一种又甜又软的黄色水果。",
                "北京。",
                "我是gptlab训练的助手。",
            ],
        ),
    ];
    let mut samples = String::new();
    for (stage, completions) in answers {
        for (p, c) in PROMPTS.iter().zip(completions) {
            samples.push_str(
                &serde_json::json!({"stage": stage, "prompt": p, "completion": c}).to_string(),
            );
            samples.push('\n');
        }
    }
    std::fs::write(dir.join(SAMPLES_FILE), samples).unwrap();

    let probes = [
        serde_json::json!({"stage":"base","prompt":"我今天想去游乐园玩","top":[{"token":"过","prob":0.52},{"token":"大","prob":0.31},{"token":",","prob":0.08},{"token":"\n","prob":0.03},{"token":"。","prob":0.02}],
            "candidates":[{"text":"过山车","prob":0.41},{"text":"大风车","prob":0.22}]}),
        serde_json::json!({"stage":"assistant","prompt":"我今天想去游乐园玩","top":[{"token":"过","prob":0.61},{"token":"大","prob":0.27},{"token":"。","prob":0.05}],
            "candidates":[{"text":"过山车","prob":0.55},{"text":"大风车","prob":0.19}]}),
    ];
    let probes: String = probes.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(dir.join(PROBES_FILE), probes).unwrap();
}
