//! A reward model learns a trivially separable preference: the polite answer "好的。" is always
//! chosen over "不。", whatever the question. It must reach at least 95% validation accuracy.

mod common;
use common::*;

#[test]
fn reward_model_separates_a_trivial_preference() {
    let tmp = tempdir();
    let questions = [
        "你好",
        "中国的首都是哪里?",
        "小狗怎么叫?",
        "1+2等于几?",
        "香蕉是什么颜色?",
        "你叫什么名字?",
        "天是什么颜色?",
        "猫怎么叫?",
    ];
    let mut lines = String::new();
    for i in 0..80 {
        let q = format!(
            "{}{}",
            questions[i % questions.len()],
            "?".repeat(i / questions.len())
        );
        lines += &format!("{{\"prompt\":\"{q}\",\"chosen\":\"好的。\",\"rejected\":\"不。\"}}\n");
    }
    std::fs::write(tmp.path().join("prefs.jsonl"), lines).unwrap();
    let spec = write_spec(
        tmp.path(),
        "rm.toml",
        &base_spec("separable")
            .data(r#""{demo}/corpus.txt""#)
            .base(
                r#"
steps = 20
batch_size = 8
"#,
            )
            .then(
                r#"
[[stages]]
name = "rm"
kind = "reward"
from = "base"
data = "prefs.jsonl"
val_fraction = 0.25
steps = 40
batch_size = 16
lr = 1e-3
eval_every = 20
"#,
            )
            .text(),
    );
    let run = run_dir(&gptlab(&["run", spec.to_str().unwrap()], tmp.path()));
    let acc = read_metric(&run.join("rm/metrics.csv"), "val/accuracy");
    assert!(*acc.last().unwrap() >= 0.95, "validation accuracy {acc:?}");
}
