//! `gptlab serve` from the outside: the official `openai` Python client, a headless Chromium
//! driven by Selenium on the page, and ratings posted through the API that train a reward stage
//! in a new run. One tiny run (three stages, a few seconds) is trained once and copied for each
//! server, so tests that write feedback do not see each other's lines.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The served run: the shared base spec, an assistant, and a stage that answers with HTML.
fn spec(dir: &Path) -> String {
    base_spec("serve")
        .block_size(96)
        .base("steps = 20\nbatch_size = 8")
        .then(&format!(
            r#"
[[stages]]
name = "assistant"
kind = "sft"
from = "base"
data = "{{demo}}/sft.jsonl"
steps = 10
batch_size = 8
# A stage that answers every question with HTML, to check that the page shows it as text.
[[stages]]
name = "html"
kind = "sft"
from = "base"
data = "{dir}/html.jsonl"
steps = 60
batch_size = 8
lr = 3e-3
"#,
            dir = dir.display()
        ))
        .text()
}

/// What the `html` stage learns to answer: markup that would run if the page rendered it.
const HTML_ANSWER: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";

/// The trained run, shared by every test (each serves a copy of it).
fn trained_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempdir().keep();
        let lines: String = ["hi", "hello", "show me html", "你好"]
            .iter()
            .map(|q| serde_json::json!({"prompt": q, "completion": HTML_ANSWER}).to_string() + "\n")
            .collect();
        std::fs::write(dir.join("html.jsonl"), lines).unwrap();
        let spec = write_spec(&dir, "serve.toml", &spec(&dir));
        run_dir(&gptlab(&["run", spec.to_str().unwrap()], &dir))
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A running `gptlab serve` on a free port of 127.0.0.1, stopped when dropped.
struct Server {
    child: Child,
    url: String,
    run: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Server::start_with(extra, &[])
    }

    /// [`Server::start`] with environment variables (`GPTLAB_KERNELS`).
    fn start_with(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempdir();
        let run = dir.path().join("run");
        copy_dir(trained_run(), &run);
        let mut child = Command::new(env!("CARGO_BIN_EXE_gptlab"))
            .args(["serve", run.to_str().unwrap(), "--port", "0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gptlab serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(
            first.starts_with("http://127.0.0.1:"),
            "serve printed {first:?}"
        );
        Server {
            child,
            url: first.trim().to_string(),
            run,
            _dir: dir,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether python3 can import `modules`. CI installs them (.ci/run), so there a missing one
/// is a failure; elsewhere `test` is skipped, saying so in `cargo test`'s output.
fn python_has(test: &str, modules: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(
            test,
            &format!("python3 modules {modules} (pip install {modules})"),
        );
    }
    ok
}

/// Runs a test script; returns its standard output.
fn python(script: &str, args: &[&str]) -> String {
    python_with(script, args, &[])
}

/// [`python`] with environment variables (they reach the browser the script starts).
fn python_with(script: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut command = Command::new("python3");
    command.arg(repo().join("tests").join(script)).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = output_within(&mut command, COMMAND_TIMEOUT);
    assert!(out.status.success(), "{script} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}

#[test]
fn the_official_openai_client_works_against_the_server() {
    if !python_has(
        "the_official_openai_client_works_against_the_server",
        "openai",
    ) {
        return;
    }
    let server = Server::start(&["--api-key", "test-key"]);
    python("serve_openai.py", &[&server.url, "test-key"]);
}

/// The same client against a server on the portable path (composed ops and the device KV
/// cache, the code CUDA runs).
#[test]
fn the_official_openai_client_works_against_the_portable_server() {
    if !python_has(
        "the_official_openai_client_works_against_the_portable_server",
        "openai",
    ) {
        return;
    }
    let env = [("GPTLAB_KERNELS", "portable")];
    let server = Server::start_with(&["--api-key", "test-key"], &env);
    python("serve_openai.py", &[&server.url, "test-key"]);
}

fn chromedriver(test: &str) -> bool {
    let ok = Path::new("/usr/bin/chromedriver").exists();
    if !ok {
        skip(test, "chromedriver (apt-get install chromium-driver)");
    }
    ok
}

#[test]
fn the_page_in_headless_chromium_shows_answers_as_text_and_saves_ratings() {
    const TEST: &str = "the_page_in_headless_chromium_shows_answers_as_text_and_saves_ratings";
    if !chromedriver(TEST) || !python_has(TEST, "selenium") {
        return;
    }
    let server = Server::start(&[]);
    let shot = server.run.join("page.png");
    // The browser knows only Latin fonts: the page's Chinese must come from its own font
    // (the script waits until it has loaded).
    let conf = latin_only_fontconfig(&server.run);
    let out = python_with(
        "serve_page.py",
        &[&server.url, shot.to_str().unwrap()],
        &[("FONTCONFIG_FILE", &conf)],
    );
    let rated: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 20_000,
        "a blank screenshot?"
    );

    // The 👍 is one feedback line for the assistant's answer, with the page's sampling settings;
    // the second is the two-turn conversation's.
    let feedback = lines(&server.run.join("feedback.jsonl"));
    assert_eq!(feedback.len(), 2, "{feedback:?}");
    let [first, second] = [&rated["conversation"][0], &rated["conversation"][1]];
    let said: Vec<(&serde_json::Value, &serde_json::Value)> = feedback[1]["prompt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (&m["role"], &m["content"]))
        .collect();
    assert_eq!(
        said,
        [
            (&"user".into(), &"我叫小明。".into()),
            (&"assistant".into(), first),
            (&"user".into(), &"我叫什么名字?".into())
        ],
        "the whole conversation up to the rated answer"
    );
    assert_eq!(&feedback[1]["completion"][0]["content"], second);
    assert_eq!(feedback[1]["label"], true);
    assert_eq!(feedback[0]["label"], true);
    assert_eq!(feedback[0]["stage"], "assistant");
    assert_eq!(feedback[0]["completion"][0]["content"], rated["liked"]);
    assert_eq!(feedback[0]["prompt"][0]["content"], "中国的首都是哪里?");
    assert_eq!(feedback[0]["sampling"]["seed"], 3);
    // The ranking of three is its three pairs, best first.
    let prefs = lines(&server.run.join("preferences.jsonl"));
    let r = &rated["ranking"];
    let pairs: Vec<_> = prefs
        .iter()
        .map(|p| (&p["chosen"][0]["content"], &p["rejected"][0]["content"]))
        .collect();
    assert_eq!(pairs, [(&r[0], &r[1]), (&r[0], &r[2]), (&r[1], &r[2])]);
    // Both files are what a reward stage reads.
    for file in ["feedback.jsonl", "preferences.jsonl"] {
        gptlab::data::read_preferences(&server.run.join(file)).unwrap();
    }
}

#[test]
fn a_conversation_too_long_for_the_context_loses_its_oldest_turns_when_asked_to() {
    let server = Server::start(&[]);
    let turns: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            serde_json::json!({"role": role, "content": format!("第{i}句话。")})
        })
        .chain([serde_json::json!({"role": "user", "content": "你好!"})])
        .collect();
    let url = format!("{}v1/chat/completions", server.url);
    let body = |fit: bool| {
        serde_json::json!({"model": "assistant", "messages": turns, "max_tokens": 8,
                           "fit_context": fit, "seed": 1})
    };
    // Refused as OpenAI would, unless the client asks for the oldest turns to go.
    match ureq::post(&url).send_json(body(false)) {
        Err(ureq::Error::Status(400, r)) => {
            assert!(r.into_string().unwrap().contains("context_length_exceeded"))
        }
        other => panic!("expected 400, got {other:?}"),
    }
    let r = ureq::post(&url).send_json(body(true)).expect("answered");
    let dropped: usize = r
        .header("x-gptlab-dropped-messages")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        dropped > 0 && dropped < 41 && dropped % 2 == 0,
        "{dropped} dropped"
    );
    let answer: serde_json::Value = r.into_json().unwrap();
    // Room for the 8 tokens asked for is left in the 96-token context.
    assert!(answer["usage"]["prompt_tokens"].as_u64().unwrap() <= 96 - 8);
}

#[test]
fn an_unknown_request_field_is_refused_with_a_400_that_names_it() {
    let server = Server::start(&[]);
    for (route, body) in [
        (
            "chat/completions",
            serde_json::json!({"model": "assistant", "max_tokens": 4,
                "messages": [{"role": "user", "content": "你好!"}], "temprature": 0.5}),
        ),
        (
            "completions",
            serde_json::json!({"model": "base", "prompt": "你好", "max_tokens": 4, "temprature": 0.5}),
        ),
    ] {
        match ureq::post(&format!("{}v1/{route}", server.url)).send_json(body) {
            Err(ureq::Error::Status(400, r)) => {
                let e: serde_json::Value = r.into_json().unwrap();
                assert_eq!(e["error"]["param"], "temprature", "{route}: {e}");
                let message = e["error"]["message"].as_str().unwrap();
                assert!(message.contains("temprature"), "{route}: {e}");
            }
            other => panic!("{route}: expected 400, got {other:?}"),
        }
    }
}

#[test]
fn the_page_brings_its_own_cjk_font() {
    let server = Server::start(&[]);
    let css = ureq::get(&format!("{}style.css", server.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(css.contains("url(/font.ttf)"), "{css}");
    let font = ureq::get(&format!("{}font.ttf", server.url))
        .call()
        .unwrap();
    assert_eq!(font.content_type(), "font/ttf");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut font.into_reader(), &mut bytes).unwrap();
    assert_eq!(bytes, gptlab::report::builtin_font::BUILTIN_FONT);
}

#[test]
fn ratings_posted_through_the_api_train_a_reward_stage_and_kto_in_a_new_run() {
    let server = Server::start(&[]);
    let post = &|body: serde_json::Value| {
        ureq::post(&format!("{}v1/feedback", server.url))
            .send_json(body)
            .expect("feedback accepted")
            .into_json::<serde_json::Value>()
            .unwrap()
    };
    // 50 ratings at once: exactly 50 whole lines.
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..50)
            .map(|i| {
                scope.spawn(move || {
                    post(serde_json::json!({
                        "model": "assistant",
                        "messages": [{"role": "user", "content": format!("问题{}", i % 5)}],
                        "completion": if i % 2 == 0 { "北京。" } else { "不知道" },
                        "label": i % 2 == 0,
                        "sampling": {"temperature": 0.8, "seed": i},
                    }))
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap()["written"], 1);
        }
    });
    let ranked = post(serde_json::json!({
        "model": "assistant",
        "messages": [{"role": "user", "content": "中国的首都是哪里?"}],
        "ranking": ["北京。", "上海。", "不知道"],
    }));
    assert_eq!(ranked["written"], 3);
    let feedback = lines(&server.run.join("feedback.jsonl"));
    assert_eq!(feedback.len(), 50);
    assert_eq!(feedback.iter().filter(|l| l["label"] == true).count(), 25);
    assert!(feedback
        .iter()
        .all(|l| l["stage"] == "assistant" && l["sampling"]["temperature"] == 0.8));
    let prefs = lines(&server.run.join("preferences.jsonl"));
    assert_eq!(prefs.len(), 3);
    assert_eq!(prefs[2]["chosen"][0]["content"], "上海。");

    // A new run whose reward stage trains on exactly those files.
    let tmp = tempdir();
    let spec = base_spec("loop")
        .base("steps = 5\nbatch_size = 4")
        .then(&format!(
            r#"
[[stages]]
name = "rm"
kind = "reward"
from = "base"
data = ["{run}/feedback.jsonl", "{run}/preferences.jsonl"]
val_fraction = 0.0
steps = 4
batch_size = 8

[[stages]]
name = "kto"
kind = "rlhf"
algorithm = "kto"
from = "base"
data = "{run}/feedback.jsonl"
val_fraction = 0.0
steps = 3
batch_size = 8
"#,
            run = server.run.display()
        ))
        .text();
    let spec = write_spec(tmp.path(), "loop.toml", &spec);
    let run = run_dir(&gptlab(&["run", spec.to_str().unwrap()], tmp.path()));
    let done: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("rm/done.json")).unwrap()).unwrap();
    assert_eq!(done["steps"], 4, "{done}");
    let loss = read_metric(&run.join("rm/metrics.csv"), "loss");
    assert_eq!(loss.len(), 4, "one loss per step on the rated answers");
    // And KTO trains straight on the 👍/👎 the page and the API wrote.
    let kto_loss = read_metric(&run.join("kto/metrics.csv"), "loss");
    assert_eq!(
        kto_loss.len(),
        3,
        "one KTO loss per step on the rated answers"
    );
}

#[test]
fn requests_beyond_the_queue_are_refused_with_503_not_kept_waiting() {
    // One worker and one waiting place: of many simultaneous long requests, the first runs,
    // one waits, and the rest are refused at once in OpenAI's error shape.
    let server = Server::start(&["--workers", "1", "--queue", "1"]);
    let url = format!("{}v1/completions", server.url);
    let statuses: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let url = &url;
                scope.spawn(move || {
                    let body = serde_json::json!({"model": "base", "prompt": "我", "n": 8, "max_tokens": 90});
                    match ureq::post(url).send_json(body) {
                        Ok(r) => (r.status(), r.into_json().unwrap()),
                        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let busy: Vec<_> = statuses.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!(ok + busy.len(), 16, "only 200 or 503: {statuses:?}");
    assert!(
        ok >= 1 && !busy.is_empty(),
        "{ok} answered, {} refused",
        busy.len()
    );
    assert_eq!(busy[0].1["error"]["code"], "overloaded");
}
