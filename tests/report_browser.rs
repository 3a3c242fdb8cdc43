//! The report as a reader sees it: a real run's report.html opened in headless Chromium loads
//! with no failed requests, and its charts are there.

mod common;
use common::*;
use std::process::Command;

fn spec() -> String {
    base_spec("browser")
        .base(
            r#"
steps = 30
batch_size = 8
eval_every = 10
"#,
        )
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
prompts = ["中国的首都是哪里?", "香蕉是"]
probes = [{ prompt = "我今天想去游乐园玩", candidates = ["过山车", "大风车"] }]
compare = ["base", "assistant"]
sampling = { temperature = 0.0, max_new_tokens = 8 }
"#,
        )
        .text()
}

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

#[test]
fn report_loads_in_headless_chromium_with_its_charts() {
    let Some(browser) = chromium() else {
        return skip(
            "report_loads_in_headless_chromium_with_its_charts",
            "chromium (apt-get install chromium)",
        );
    };
    let tmp = tempdir();
    let spec = write_spec(tmp.path(), "browser.toml", &spec());
    let run = run_dir(&gptlab(&["run", spec.to_str().unwrap()], tmp.path()));
    let page = run.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("中国的首都是哪里?"),
        "the answers table is missing"
    );

    let shot = tmp.path().join("report.png");
    let profile = tmp.path().join("profile");
    let url = format!("file://{}", page.display());
    let common_flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ];
    let out = output_within(
        Command::new(browser)
            .args(common_flags)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg("--window-size=1280,2400")
            .arg(&url),
        COMMAND_TIMEOUT,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {log}");
    for failure in ["Failed to load resource", "net::ERR_"] {
        assert!(
            !log.contains(failure),
            "the page made a failed request: {log}"
        );
    }
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.len() > 20_000,
        "screenshot is suspiciously small ({} bytes): a blank page?",
        png.len()
    );

    // The DOM as rendered: charts are inline SVG elements with drawn paths.
    let dom = output_within(
        Command::new(browser)
            .args(common_flags)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(&url),
        COMMAND_TIMEOUT,
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let svgs = dom.matches("<svg").count();
    assert!(
        svgs >= 4,
        "expected the loss, metric and probe charts, found {svgs} <svg> elements"
    );
    assert!(
        dom.contains("<path") || dom.contains("<polyline"),
        "charts have no curves"
    );
    assert!(dom.contains("assistant") && dom.contains("base"));
}
