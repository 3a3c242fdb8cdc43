//! `[report] eval`: the runner asks every compared stage the same questions, stores exact match
//! by task in summary.json, and the report draws those numbers as grouped bars.

mod common;
use common::*;
use std::collections::BTreeMap;

/// The shared base spec, an assistant, and `[report] eval` on the SFT questions.
fn spec() -> String {
    base_spec("by-task")
        .base("steps = 20\nbatch_size = 8\neval_every = 10")
        .then(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{demo}/sft.jsonl"
val_data = "{demo}/sft_val.jsonl"
steps = 200
batch_size = 16
lr = 3e-3
eval_every = 20
eval_batches = 1
[report]
compare = ["base", "assistant"]
eval = { data = "{demo}/sft.jsonl", limit = 40 }
sampling = { temperature = 0.0, max_new_tokens = 8 }
"#,
        )
        .text()
}

/// `(fill, height)` of every filled `<rect>` of the SVG, in drawing order.
fn filled_rects(svg: &str) -> Vec<(String, f64)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        Some(tag[start..].split('"').next()?.to_string())
    };
    svg.split("<rect")
        .skip(1)
        .filter_map(|tag| {
            let tag = tag.split('>').next()?;
            let height = attr(tag, "height")?.parse().ok()?;
            Some((attr(tag, "fill")?.to_lowercase(), height))
        })
        .filter(|(fill, _)| fill != "none" && fill != "#ffffff")
        .collect()
}

#[test]
fn compared_stages_are_scored_by_task_and_charted() {
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "by-task.toml", &spec());
    let run = run_dir(&gptlab(&["run", spec.to_str().unwrap()], tmp.path()));
    let summary: BTreeMap<String, BTreeMap<String, f64>> =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    // The first 40 training questions hold these tasks (and english).
    let tasks = [
        "animal", "capital", "color", "greeting", "identity", "math", "yesno",
    ];
    let mut values = Vec::new();
    for stage in ["base", "assistant"] {
        let m = &summary[stage];
        assert!(m.contains_key("val/loss"), "training numbers stay: {m:?}");
        let overall = m["eval/exact_match"];
        assert!((0.0..=1.0).contains(&overall));
        let found: Vec<&str> = tasks
            .iter()
            .copied()
            .filter(|t| m.contains_key(&format!("eval/{t}/exact_match")))
            .collect();
        assert!(found.len() >= 4, "{stage}: tasks {found:?} of {m:?}");
        values.push(m.clone());
    }

    // One bar per (stage, task), in the stage's colour, as tall as its number.
    let svg = std::fs::read_to_string(run.join("by-task.svg")).unwrap();
    let rects = filled_rects(&svg);
    let task_names: Vec<String> = summary["base"]
        .keys()
        .chain(summary["assistant"].keys())
        .filter_map(|k| k.strip_prefix("eval/")?.strip_suffix("/exact_match"))
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let expected: Vec<f64> = values
        .iter()
        .flat_map(|m| {
            task_names
                .iter()
                .filter_map(move |t| m.get(&format!("eval/{t}/exact_match")).copied())
        })
        .collect();
    assert!(
        expected.iter().any(|v| *v > 0.0),
        "200 SFT steps answer some training questions right: {expected:?}"
    );
    let bars = &rects[..expected.len()];
    let (tallest, top) = bars
        .iter()
        .zip(&expected)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(bar, v)| (bar.1, *v))
        .unwrap();
    for ((_, height), value) in bars.iter().zip(&expected) {
        let want = if top > 0.0 {
            value / top * tallest
        } else {
            0.0
        };
        assert!(
            (height - want).abs() <= 1.5,
            "a bar of {height}px for {value} (the tallest: {tallest}px for {top}): {bars:?}"
        );
    }
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Exact match by task"));
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("![exact match by task](by-task.png)"), "{md}");
}

/// A run with a judge: the report's eval samples answers from every compared stage and
/// stores the gold measures beside exact match.
fn gold_spec() -> String {
    base_spec("gold")
        .top("seed = 7")
        .base("steps = 20\nbatch_size = 8\neval_every = 10")
        .then(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{demo}/sft.jsonl"
val_data = "{demo}/sft_val.jsonl"
steps = 60
batch_size = 16
lr = 3e-3
eval_every = 20
eval_batches = 1
[[stages]]
name = "rm"
kind = "reward"
from = "assistant"
data = "{demo}/prefs.jsonl"
steps = 10
batch_size = 8
eval_every = 5
[[stages]]
name = "dpo"
kind = "rlhf"
algorithm = "dpo"
from = "assistant"
data = "{demo}/prefs.jsonl"
steps = 10
batch_size = 8
eval_every = 5
[judges.full_stop]
ends_with = ["。"]
avoid = ["的的"]
[report]
compare = ["base", "assistant", "dpo"]
eval = { held_out = "assistant", limit = 12, judge = "full_stop", samples = 3 }
sampling = { temperature = 0.0, max_new_tokens = 8, seed = 3 }
"#,
        )
        .text()
}

#[test]
fn a_judge_gives_every_stage_gold_numbers_and_the_report_draws_them() {
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "gold.toml", &gold_spec());
    let run = run_dir(&gptlab(&["run", spec.to_str().unwrap()], tmp.path()));
    let summary: BTreeMap<String, BTreeMap<String, f64>> =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    for stage in ["base", "assistant", "dpo"] {
        let m = &summary[stage];
        let rate = m["gold/rate"];
        assert!((0.0..=1.0).contains(&rate), "{stage}: {m:?}");
        assert!(m["eval/reward"].is_finite(), "{stage}: {m:?}");
    }
    // The baseline is the held-out stage: the others are compared with it, it is not.
    let dpo = &summary["dpo"];
    let (win, low, high) = (
        dpo["gold/win_vs/assistant"],
        dpo["gold/win_vs/assistant/low"],
        dpo["gold/win_vs/assistant/high"],
    );
    assert!(
        low <= win && win <= high && (0.0..=1.0).contains(&win),
        "{dpo:?}"
    );
    assert!(dpo["kl_vs/assistant"].is_finite(), "{dpo:?}");
    assert!(!summary["assistant"].contains_key("gold/win_vs/assistant"));
    // Best-of-n of the baseline by the reward model: no training, only more samples.
    for n in [1, 4, 16] {
        let rate = summary["assistant"][&format!("gold/best_of_{n}")];
        assert!((0.0..=1.0).contains(&rate), "best-of-{n}: {rate}");
    }
    assert!(
        !summary["base"].contains_key("kl_vs/assistant"),
        "a base model is not a chat model"
    );
    assert_gold_chart(&run, &summary);
    // What the answers say: how many differ, their entropy, the share with the avoided term.
    for stage in ["base", "assistant", "dpo"] {
        let m = &summary[stage];
        let (distinct, entropy) = (m["gold/distinct"], m["gold/entropy"]);
        assert!((1.0..=36.0).contains(&distinct), "{stage}: {m:?}");
        assert!(
            (0.0..=36f64.ln() + 1e-9).contains(&entropy),
            "{stage}: {m:?}"
        );
        assert!(
            (0.0..=1.0).contains(&m["gold/share/的的"]),
            "{stage}: {m:?}"
        );
    }
    // `gptlab eval --judge` asks as the report asked (its questions, 3 samples, 8 tokens,
    // sampling seed 3, bootstrap seed 7, baseline `assistant`), so with no other flag it
    // gives the same numbers, bit for bit.
    let dpo = run.join("dpo");
    let eval = |json: bool| {
        let mut args = vec!["eval", dpo.to_str().unwrap(), "--judge", "full_stop"];
        if json {
            args.push("--json");
        }
        let out = gptlab(&args, tmp.path());
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let cli: BTreeMap<String, f64> = serde_json::from_str(&eval(true)).unwrap();
    let report = &summary["dpo"];
    for (key, value) in report {
        if key.starts_with("gold/") || key.starts_with("kl_vs/") {
            assert_eq!(cli.get(key), Some(value), "{key}: {cli:?} vs {report:?}");
        }
    }
    assert!(cli.contains_key("gold/win_vs/assistant/low") && cli.contains_key("gold/entropy"));
    // Without --json, lines a person reads.
    let lines = eval(false);
    assert!(
        !lines.trim_start().starts_with('{') && lines.contains("gold/rate"),
        "{lines}"
    );
}

/// The report's gold chart draws the summary's numbers, and the report opens with it.
fn assert_gold_chart(run: &std::path::Path, summary: &BTreeMap<String, BTreeMap<String, f64>>) {
    // Stage by stage, group by group: base and assistant have a gold rate only (base is no
    // chat model, assistant is the baseline); dpo has its rate and its win rate.
    let expected = [
        summary["base"]["gold/rate"],
        summary["assistant"]["gold/rate"],
        summary["dpo"]["gold/rate"],
        summary["dpo"]["gold/win_vs/assistant"],
    ];
    let svg = std::fs::read_to_string(run.join("gold.svg")).unwrap();
    let rects = filled_rects(&svg);
    let bars = &rects[..expected.len()];
    // The y axis runs from 0 to 1: every bar's height over its value is the same scale.
    let scales: Vec<f64> = bars
        .iter()
        .zip(&expected)
        .filter(|(_, v)| **v > 0.05)
        .map(|(bar, v)| bar.1 / v)
        .collect();
    assert!(!scales.is_empty(), "{expected:?}");
    for ((_, height), value) in bars.iter().zip(&expected) {
        assert!(
            (height - value * scales[0]).abs() <= 1.5,
            "a bar of {height}px for {value} at {} px per unit: {bars:?}",
            scales[0]
        );
    }
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let gold_at = html
        .find("Gold: what the rater thinks")
        .expect("a gold section");
    assert!(
        gold_at < html.find("Exact match by task").unwrap(),
        "the report opens with gold"
    );
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("(gold.png)") && md.contains("win rate vs assistant"),
        "{md}"
    );
    assert!(html.contains("<td>best-of-16</td>"), "a best-of-n row");
    // A best-of-n row fills every column of the table, in both forms.
    assert!(html.contains("<td colspan=\"4\"></td>"), "{html}");
    let cells = |line: &str| line.matches('|').count();
    let header = md
        .lines()
        .find(|l| l.starts_with("| stage | gold rate"))
        .unwrap();
    let best_of = md.lines().find(|l| l.starts_with("| best-of-16")).unwrap();
    assert_eq!(cells(best_of), cells(header), "{md}");
    assert_tables_fit_at_1400px(&run.join("report.html"));
}

/// Laid out by headless Chromium at 1,400 px wide, no table of the report is wider than its
/// box: the gold table's interval column used to be cut off behind a scroll bar.
fn assert_tables_fit_at_1400px(page: &std::path::Path) {
    let Some(browser) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        return skip(
            "the gold table's width check",
            "chromium (apt-get install chromium)",
        );
    };
    // The page's title becomes the sections whose table overflows, read back from the DOM.
    let probe = page.with_file_name("fit.html");
    let script = "<script>document.title = [...document.querySelectorAll('.scroll')]\
        .filter(e => e.scrollWidth > e.clientWidth + 1)\
        .map(e => e.closest('section').id).join(' ') || 'fits';</script>";
    let html = std::fs::read_to_string(page).unwrap() + script;
    std::fs::write(&probe, html).unwrap();
    let profile = page.with_file_name("chromium-profile");
    let out = output_within(
        std::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--window-size=1400,2000")
            .arg("--dump-dom")
            .arg(format!("file://{}", probe.display())),
        COMMAND_TIMEOUT,
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<title>fits</title>"),
        "tables cut off in: {}",
        {
            let start = dom.find("<title>").map_or(0, |i| i + 7);
            &dom[start..dom[start..].find('<').map_or(start, |e| start + e)]
        }
    );
}
