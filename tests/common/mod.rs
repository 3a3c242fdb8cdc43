//! Helpers for end-to-end tests: run the real `gptlab` binary on specs written to a temp dir.
#![allow(dead_code)]

mod hf_stand_in;
#[allow(unused_imports)]
pub use hf_stand_in::*;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long one `gptlab` command of a test may take before it counts as hung. Every test
/// command here runs tiny experiments in seconds; a deadlock must fail the test in minutes,
/// not eat CI's whole time limit.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared corpora, if present (`$GPTLAB_DATA`, else `../shared/datasets`).
pub fn shared_data() -> Option<PathBuf> {
    let p = std::env::var_os("GPTLAB_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/datasets"));
    p.join("tinyshakespeare").is_dir().then_some(p)
}

/// `gptlab ARGS` in `cwd` with results under `cwd/results`; panics if it runs past
/// [`COMMAND_TIMEOUT`].
pub fn gptlab(args: &[&str], cwd: &Path) -> Output {
    output_within(&mut gptlab_command(args, cwd), COMMAND_TIMEOUT)
}

/// The command [`gptlab`] runs, to add environment variables before running it.
pub fn gptlab_command(args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gptlab"));
    command
        .args(args)
        .current_dir(cwd)
        .env("GPTLAB_RESULTS", cwd.join("results"));
    command
}

/// Runs `command` to the end and returns its output, like `Command::output`, but kills it
/// (and its process group, so sweep points die too) and panics with what it printed when it
/// runs past `limit`: a hang fails the test instead of blocking it forever.
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            let output = Output {
                status: std::process::ExitStatus::default(),
                stdout: stdout.join().unwrap(),
                stderr: stderr.join().unwrap(),
            };
            panic!(
                "{command:?} did not finish within {} s (a hang?); it printed:\n{}",
                limit.as_secs(),
                text(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The run folder a successful `gptlab run` printed last.
pub fn run_dir(o: &Output) -> PathBuf {
    assert!(o.status.success(), "gptlab failed:\n{}", text(o));
    let out = String::from_utf8_lossy(&o.stdout);
    PathBuf::from(out.lines().last().expect("output").trim())
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The one base spec of the end-to-end tests: a nano model, a char tokenizer and a `base`
/// pretrain stage on the demo text. Each test changes what it needs with the methods below
/// and writes the result with [`write_spec`].
pub fn base_spec(name: &str) -> Spec {
    Spec {
        top: format!("name = \"{name}\"\n"),
        block_size: 32,
        data: r#"["{demo}/amusement_park.txt", "{demo}/corpus.txt"]"#.to_string(),
        base: String::new(),
        rest: String::new(),
    }
}

pub struct Spec {
    top: String,
    block_size: usize,
    data: String,
    base: String,
    rest: String,
}

impl Spec {
    /// Top-level keys besides the name (`seed = 7`).
    pub fn top(mut self, lines: &str) -> Spec {
        self.top += &with_newline(lines);
        self
    }

    pub fn block_size(mut self, block_size: usize) -> Spec {
        self.block_size = block_size;
        self
    }

    /// The `base` stage's `data` value, as TOML.
    pub fn data(mut self, toml: &str) -> Spec {
        self.data = toml.to_string();
        self
    }

    /// More keys of the `base` stage.
    pub fn base(mut self, lines: &str) -> Spec {
        self.base += &with_newline(lines);
        self
    }

    /// Tables after the `base` stage: more stages, `[report]`.
    pub fn then(mut self, tables: &str) -> Spec {
        self.rest += &with_newline(tables);
        self
    }

    pub fn text(&self) -> String {
        format!(
            "{}[model]\npreset = \"nano\"\nblock_size = {}\n[tokenizer]\nkind = \"char\"\nvocab_size = 512\n\
             [[stages]]\nname = \"base\"\nkind = \"pretrain\"\ndata = {}\n{}{}",
            self.top, self.block_size, self.data, self.base, self.rest
        )
    }
}

fn with_newline(lines: &str) -> String {
    let lines = lines.trim_start_matches('\n');
    match lines.ends_with('\n') {
        true => lines.to_string(),
        false => format!("{lines}\n"),
    }
}

/// Writes `spec` (with `{demo}` replaced by the demo data folder) to `dir/name`.
pub fn write_spec(dir: &Path, name: &str, spec: &str) -> PathBuf {
    let p = dir.join(name);
    let demo = repo().join("datasets/demo");
    std::fs::write(&p, spec.replace("{demo}", demo.to_str().unwrap())).unwrap();
    p
}

pub fn read_metric(csv_path: &Path, column: &str) -> Vec<f64> {
    let mut r = csv::Reader::from_path(csv_path).unwrap();
    let headers = r.headers().unwrap().clone();
    let i = headers
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("no column {column} in {headers:?}"));
    r.records()
        .filter_map(|rec| rec.unwrap().get(i).and_then(|v| v.parse().ok()))
        .collect()
}

/// Says that `test` did not run because `needs` is missing, where `cargo test` itself shows it
/// (see [`say`]). CI installs every such tool (.ci/run) and sets `CI`, so there a missing one
/// fails the test instead.
pub fn skip(test: &str, needs: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} needs {needs}, which .ci/run installs"
    );
    say(&format!("SKIPPED {test}: needs {needs}"));
}

/// A line in `cargo test`'s own output: written straight to stderr, which the test harness
/// does not capture (it captures only `print!`/`eprint!`), so a skipped test or check never
/// passes as a quiet "ok".
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The Latin-only fonts the font tests limit fontconfig to.
pub const DEJAVU: &str = "/usr/share/fonts/truetype/dejavu";

/// A fontconfig setup that knows DejaVu and nothing else.
pub fn latin_only_fontconfig(dir: &Path) -> PathBuf {
    let conf = dir.join("fonts.conf");
    std::fs::write(
        &conf,
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig>\n\
             <dir>{DEJAVU}</dir>\n<cachedir>{}</cachedir>\n</fontconfig>\n",
            dir.join("fc-cache").display()
        ),
    )
    .unwrap();
    conf
}

/// `(path relative to src, code before its first #[cfg(test)])` of every `.rs` file under
/// `src`, test files excluded: what the grep-style tests read.
pub fn source_files(src: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if !rel.ends_with(".rs") || rel.ends_with("tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            files.push((rel, code));
        }
    }
    files
}

/// The quickstart with steps cut so that two runs side by side take about a minute on 2
/// cores, every stage kept: for tests that compare whole runs made two ways.
const SHORT_QUICKSTART: &[&str] = &[
    "stages.base.steps=60",
    "stages.base.eval_every=20",
    "stages.assistant.steps=60",
    "stages.assistant.eval_every=20",
    "stages.rate.samples=2",
    "stages.rm.steps=20",
    "stages.rm.eval_every=10",
    "stages.rlhf.steps=4",
    "stages.rlhf.eval_every=2",
];

/// Runs the short quickstart in `dir` with the environment variable `var` set to `value`;
/// returns its run folder.
pub fn short_quickstart(dir: &Path, var: &str, value: &str) -> PathBuf {
    let spec = repo().join("experiments/quickstart.toml");
    let mut args = vec!["run", spec.to_str().unwrap()];
    for set in SHORT_QUICKSTART {
        args.extend(["--set", set]);
    }
    let mut command = gptlab_command(&args, dir);
    command.env(var, value);
    run_dir(&output_within(&mut command, Duration::from_secs(600)))
}
