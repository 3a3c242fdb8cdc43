//! The `gptlab` command line: parse, dispatch, print. Everything else lives in the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gptlab::infer::probe::{continuation_prob, top_tokens};
use gptlab::infer::{Ask, Prompt};
use gptlab::model::sample::SampleOptions;
use gptlab::runner::{self, RunOptions};
use gptlab::spec::{data_root_from, expand_spec_args, load_spec, LoadOptions};
use gptlab::tokenizer::Tokenizer;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gptlab",
    version,
    about = "Train small GPTs through pretrain, SFT, reward and RLHF, from TOML experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct SpecArgs {
    /// Override any spec key, e.g. `--set stages.base.lr=3e-4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Where `$DATA/...` paths point (default: $GPTLAB_DATA, else ./datasets).
    #[arg(long)]
    data_root: Option<PathBuf>,
}

impl SpecArgs {
    fn load_options(&self) -> LoadOptions {
        LoadOptions {
            data_root: data_root_from(self.data_root.clone()),
            sets: self.sets.clone(),
        }
    }
}

/// `gptlab eval`'s choice of records: what a stage held out of the file.
#[derive(clap::Args, Clone)]
struct HeldOutArgs {
    /// Only the validation split a stage with this val_fraction held out of the file...
    #[arg(long)]
    held_out: Option<f64>,
    /// ...with this experiment seed...
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// ...and this val_group: hold out whole groups of records sharing this field's value.
    #[arg(long, value_name = "FIELD", requires = "held_out")]
    held_out_group: Option<String>,
}

impl HeldOutArgs {
    fn split(self) -> Option<gptlab::data::HeldOut> {
        Some(gptlab::data::HeldOut {
            fraction: self.held_out?,
            seed: self.seed,
            group: self.held_out_group,
        })
    }
}

/// `gptlab eval`'s gold measures: a judge of the run's spec scoring sampled answers.
#[derive(clap::Args, Clone)]
struct GoldArgs {
    /// Judge S sampled answers per question with this `[judges.NAME]` of the run's spec.toml
    /// (prints gold/rate; with --baseline also the win rate and KL, as [report] eval does).
    #[arg(long, value_name = "NAME")]
    judge: Option<String>,
    /// Answers sampled per question for the judge.
    #[arg(long, default_value_t = 4, requires = "judge")]
    samples: usize,
    /// The stage to compare with (its folder): win rate against it and KL to it.
    #[arg(long, value_name = "RUN/STAGE", requires = "judge")]
    baseline: Option<PathBuf>,
    /// Longest answer, in tokens (the report's default).
    #[arg(long, default_value_t = 48, requires = "judge")]
    max_new_tokens: usize,
    /// The sampling seed (the report's default, so the numbers match its).
    #[arg(long, default_value_t = 0, requires = "judge")]
    sample_seed: u64,
}

#[derive(clap::Args, Clone)]
struct Sampling {
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    #[arg(long, default_value_t = 20)]
    top_k: usize,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Always pick the most likely token (same as --temperature 0).
    #[arg(long)]
    greedy: bool,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
}

impl Sampling {
    fn options(&self) -> SampleOptions {
        SampleOptions {
            max_new_tokens: self.max_new_tokens,
            temperature: if self.greedy { 0.0 } else { self.temperature },
            top_k: self.top_k,
            top_p: self.top_p,
            stop: vec![],
            use_cache: true,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run experiments (paths or globs); each prints its run folder last.
    Run {
        #[arg(required = true)]
        specs: Vec<String>,
        #[command(flatten)]
        spec: SpecArgs,
        /// Results folder (default: $GPTLAB_RESULTS, else ./results).
        #[arg(long)]
        results: Option<PathBuf>,
    },
    /// Check experiment specs without running them.
    Validate {
        #[arg(required = true)]
        specs: Vec<String>,
        #[command(flatten)]
        spec: SpecArgs,
    },
    /// Sample text from a trained stage: RUN/STAGE (a stage folder of a run).
    Generate {
        stage: PathBuf,
        #[arg(long)]
        prompt: String,
        /// Ask through the chat template (default: for every stage but pretrain).
        #[arg(long)]
        chat: Option<bool>,
        #[command(flatten)]
        sampling: Sampling,
    },
    /// The next-token distribution after a prompt, and probabilities of whole continuations.
    Probe {
        stage: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Comma-separated continuations to score, e.g. `过山车,大风车`.
        #[arg(long, value_delimiter = ',')]
        candidates: Vec<String>,
        #[arg(long)]
        chat: Option<bool>,
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a stage on a data file: exact match (questions with answers), preference
    /// accuracy (chosen/rejected pairs) or loss and bits per byte (plain text).
    Eval {
        stage: PathBuf,
        #[arg(long)]
        data: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Evaluate at most N records.
        #[arg(long)]
        limit: Option<usize>,
        /// Ask questions through the chat template (default: for every stage but pretrain).
        #[arg(long)]
        chat: Option<bool>,
        #[command(flatten)]
        held_out: HeldOutArgs,
        #[command(flatten)]
        gold: GoldArgs,
    },
    /// Talk to a stage; rate answers with + / - to collect feedback for a reward stage.
    Chat {
        stage: PathBuf,
        /// Feedback file (default: RUN/feedback.jsonl).
        #[arg(long)]
        feedback: Option<PathBuf>,
        #[command(flatten)]
        sampling: Sampling,
    },
    /// Serve a run's stages: an OpenAI-compatible API and a chat page to rate and rank answers.
    Serve(gptlab::serve::ServeArgs),
    /// Rebuild a run's report.html / report.md from its folder.
    Report { run: PathBuf },
    /// Training and generation speed per preset vs the measured matmul peak (JSON).
    Bench {
        /// Presets to measure (default: nano, small, medium; gpt2 on request).
        #[arg(long, value_delimiter = ',')]
        presets: Vec<String>,
        /// cpu, or cuda in a build with --features cuda.
        #[arg(long, default_value = "cpu")]
        device: String,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Measure training only (generation takes a while on the larger presets).
        #[arg(long)]
        no_generate: bool,
        /// Write the JSON here as well as to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Overlay several runs (or every run under a folder) in one report.
    Compare {
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[arg(long, default_value = "results/compare")]
        out: PathBuf,
        /// Sort the table by this metric (`stage/metric`, `-` prefix for descending).
        #[arg(long)]
        sort_by: Option<String>,
        /// A final metric (`stage/metric`) to chart against the keys that differ between the
        /// runs (repeatable; default: every val/loss and eval/exact_match).
        #[arg(long = "metric", value_name = "STAGE/METRIC")]
        metrics: Vec<String>,
    },
    /// Run a sweep's points (grid / random over spec keys), resumably, or emit a Slurm script.
    Sweep(gptlab::sweep::SweepArgs),
    /// Write a stage as a Hugging Face transformers GPT-2 folder.
    Export(gptlab::export::hf_gpt2::ExportArgs),
    /// Read a Hugging Face GPT-2 folder (of a compiled preset's shape) into a stage folder.
    Import(gptlab::export::import::ImportArgs),
    /// Print a stage's raw logits for given token ids (and a greedy continuation), for cross-checks.
    Logits(gptlab::export::logits::LogitsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    gptlab::util::memory::reuse_freed_memory();
    // The main thread works in rayon's pool instead of sleeping while it runs: the training
    // step is a chain of short parallel ops, and handing each one to another thread and
    // waking up afterwards cost more than the op itself at small model sizes. `serve` computes
    // on its worker threads while the main thread waits on the network, so it keeps them all.
    // The rule this imposes: code on the main thread never blocks waiting for another thread
    // that needs the pool (with one thread, main is the pool's only worker: a deadlock). Work
    // done in parallel goes through rayon itself (`runner/report_eval.rs`); the threads
    // `sweep` starts only wait for child processes.
    if !matches!(cli.command, Command::Serve(_)) {
        let _ = rayon::ThreadPoolBuilder::new()
            .use_current_thread()
            .build_global();
    }
    let _ = ctrlc::set_handler(gptlab::train::trainer::on_interrupt);
    match dispatch(cli.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn results_root(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("GPTLAB_RESULTS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("results"))
}

/// A trained stage folder: its model, the run's tokenizer, and whether it is a chat model.
fn open_stage(
    stage: &Path,
) -> Result<(
    Box<dyn gptlab::model::LanguageModel<dfdx::tensor::Cpu>>,
    Tokenizer,
    bool,
)> {
    let s = gptlab::infer::open_stage(stage, &dfdx::tensor::Cpu::default())?;
    let chat = s.is_chat();
    Ok((s.model, s.tokenizer, chat))
}

fn dispatch(command: Command) -> Result<bool> {
    match command {
        Command::Run {
            specs,
            spec,
            results,
        } => run_specs(&specs, &spec, results),
        Command::Validate { specs, spec } => validate_specs(&specs, &spec),
        Command::Generate {
            stage,
            prompt,
            chat,
            sampling,
        } => generate(&stage, &prompt, chat, &sampling),
        Command::Probe {
            stage,
            prompt,
            top,
            candidates,
            chat,
            json,
        } => probe(&stage, &prompt, top, &candidates, chat, json),
        Command::Eval {
            stage,
            data,
            json,
            limit,
            chat,
            held_out,
            gold,
        } => match gold.judge.clone() {
            Some(judge) => eval_gold(&stage, &data, limit, held_out, &judge, &gold),
            None => eval(&stage, &data, json, limit, chat, held_out.split()),
        },
        Command::Chat {
            stage,
            feedback,
            sampling,
        } => chat(&stage, feedback, &sampling),
        Command::Compare {
            runs,
            out,
            sort_by,
            metrics,
        } => compare(&runs, &out, sort_by.as_deref(), &metrics),
        Command::Bench {
            presets,
            device,
            steps,
            no_generate,
            out,
        } => bench(&device, &presets, steps, !no_generate, out),
        Command::Export(args) => {
            println!("{}", gptlab::export::hf_gpt2::run(&args)?.display());
            Ok(true)
        }
        Command::Import(args) => {
            println!("{}", gptlab::export::import::run(&args)?.display());
            Ok(true)
        }
        Command::Logits(args) => gptlab::export::logits::run(&args).map(|()| true),
        Command::Report { run } => {
            let path = gptlab::report::write_run_report(&run)?;
            println!("{}", path.display());
            Ok(true)
        }
        Command::Sweep(args) => gptlab::sweep::run_cli(args),
        Command::Serve(args) => gptlab::serve::run(&args).map(|()| true),
    }
}

/// `gptlab run`: every spec in turn; one failing does not stop the others.
fn run_specs(specs: &[String], spec: &SpecArgs, results: Option<PathBuf>) -> Result<bool> {
    let opts = RunOptions {
        results_root: results_root(results),
        load: spec.load_options(),
    };
    let paths = expand_spec_args(specs)?;
    let mut failed = Vec::new();
    for path in &paths {
        match runner::run_spec(path, &opts) {
            Ok(dir) => println!("{}", dir.display()),
            Err(e) => {
                // Most errors already start with the spec's `file:line`.
                let message = format!("{e:#}");
                match message.contains(&*path.to_string_lossy()) {
                    true => eprintln!("error: {message}"),
                    false => eprintln!("error: {}: {message}", path.display()),
                }
                failed.push(path.display().to_string());
            }
        }
    }
    if paths.len() > 1 && !failed.is_empty() {
        eprintln!(
            "{} of {} experiments failed: {}",
            failed.len(),
            paths.len(),
            failed.join(", ")
        );
    }
    Ok(failed.is_empty())
}

fn validate_specs(specs: &[String], spec: &SpecArgs) -> Result<bool> {
    let mut ok = true;
    for path in expand_spec_args(specs)? {
        match load_spec(&path, &spec.load_options()) {
            Ok(l) => println!("ok {}: {}", path.display(), l.summary()),
            Err(e) => {
                eprintln!("error: {e:#}");
                ok = false;
            }
        }
    }
    Ok(ok)
}

fn generate(stage: &Path, prompt: &str, chat: Option<bool>, sampling: &Sampling) -> Result<bool> {
    let (model, tok, is_chat) = open_stage(stage)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(sampling.seed);
    let opts = sampling.options();
    let chat = chat.unwrap_or(is_chat);
    let answer = Ask::new(model.as_ref(), &tok).one(&Prompt::user(prompt, chat), &opts, &mut rng);
    // A completion is shown after the text it continues.
    let text = match chat {
        true => answer,
        false => format!("{prompt}{answer}"),
    };
    println!("{text}");
    Ok(true)
}

fn probe(
    stage: &Path,
    prompt: &str,
    top: usize,
    candidates: &[String],
    chat: Option<bool>,
    json: bool,
) -> Result<bool> {
    let (model, tok, is_chat) = open_stage(stage)?;
    let ids = Prompt::user(prompt, chat.unwrap_or(is_chat))
        .build(&tok)
        .ids;
    let tops = top_tokens(model.as_ref(), &tok, &ids, top);
    let cands: Vec<(String, f64)> = candidates
        .iter()
        .map(|c| {
            (
                c.clone(),
                continuation_prob(model.as_ref(), &ids, &tok.encode(c), tok.vocab_size()),
            )
        })
        .collect();
    if json {
        let c: Vec<_> = cands
            .iter()
            .map(|(t, p)| serde_json::json!({"text": t, "prob": p}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"prompt": prompt, "top": tops, "candidates": c})
        );
    } else {
        println!("next token after {prompt:?}:");
        for t in &tops {
            println!("  {:>8.4}  {}", t.prob, t.token);
        }
        let total: f64 = cands.iter().map(|(_, p)| p).sum();
        for (t, p) in &cands {
            println!(
                "  P({t}) = {p:.4}  ({:.1}% of the candidates)",
                100.0 * p / total.max(1e-300)
            );
        }
    }
    Ok(true)
}

/// `gptlab bench`: the report as JSON, printed and optionally saved.
fn bench(
    device: &str,
    presets: &[String],
    steps: usize,
    generate: bool,
    out: Option<PathBuf>,
) -> Result<bool> {
    let report = gptlab::bench::run_bench(device, presets, steps, generate)?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(out) = out {
        gptlab::util::write_atomic(&out, json.as_bytes())?;
    }
    println!("{json}");
    Ok(true)
}

/// `gptlab compare`: one page over several runs.
fn compare(
    runs: &[PathBuf],
    out: &Path,
    sort_by: Option<&str>,
    metrics: &[String],
) -> Result<bool> {
    let options = gptlab::report::CompareOptions {
        sort_by,
        keys: None,
        metrics,
    };
    let path = gptlab::report::write_comparison_with(runs, out, &options)?;
    println!("{}", path.display());
    Ok(true)
}

/// `gptlab chat`: feedback goes to the run folder's feedback file unless one is named.
fn chat(stage: &Path, feedback: Option<PathBuf>, sampling: &Sampling) -> Result<bool> {
    let (model, tok, _) = open_stage(stage)?;
    let run = stage
        .parent()
        .context("a stage folder lies inside a run folder")?;
    let feedback = feedback.unwrap_or_else(|| run.join(gptlab::results::FEEDBACK_FILE));
    let opts = gptlab::chat::ChatOptions {
        sampling: sampling.options(),
        seed: sampling.seed,
        feedback: &feedback,
        model_name: &stage.display().to_string(),
        interactive: std::io::IsTerminal::is_terminal(&std::io::stdin()),
    };
    let stdin = std::io::stdin();
    gptlab::chat::run_chat(model.as_ref(), &tok, &opts, stdin.lock(), std::io::stdout())?;
    Ok(true)
}

/// `gptlab eval`: the stage's context is the run's block size (else the preset's).
fn eval(
    stage: &Path,
    data: &Path,
    json: bool,
    limit: Option<usize>,
    chat: Option<bool>,
    held_out: Option<gptlab::data::HeldOut>,
) -> Result<bool> {
    let (model, tok, is_chat) = open_stage(stage)?;
    let block = gptlab::results::read_meta(stage.parent().unwrap_or(stage))
        .map(|m| m.block_size)
        .filter(|&b| b > 0)
        .unwrap_or(model.config().n_ctx);
    let report = gptlab::eval::dataset::evaluate_file(
        model.as_ref(),
        &tok,
        data,
        chat.unwrap_or(is_chat),
        limit,
        block,
        held_out.as_ref(),
    )?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}: {}", data.display(), report.describe());
    }
    Ok(true)
}

/// `gptlab eval --judge NAME`: the gold measures of a stage's sampled answers, as JSON.
fn eval_gold(
    stage: &Path,
    data: &Path,
    limit: Option<usize>,
    held_out: HeldOutArgs,
    judge: &str,
    gold: &GoldArgs,
) -> Result<bool> {
    use gptlab::eval::gold::{gold_numbers, gold_sampling, Asked};
    let run = stage.parent().unwrap_or(stage);
    let judge = gptlab::eval::judge::Judge::of_run(run, judge)?;
    let seed = held_out.seed;
    let split = held_out.split();
    let conversations = gptlab::eval::dataset::read_conversations(data, limit, split.as_ref())?;
    let (model, tok, chat) = open_stage(stage)?;
    let base = gold.baseline.as_deref().map(open_stage).transpose()?;
    let baseline = base.as_ref().map(|(m, _, chat)| {
        let name = gold.baseline.as_deref().and_then(Path::file_name);
        let name = name
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (
            name,
            Asked {
                model: m.as_ref(),
                chat: *chat,
            },
        )
    });
    let numbers = gold_numbers(
        Asked {
            model: model.as_ref(),
            chat,
        },
        baseline.as_ref().map(|(n, a)| {
            (
                n.as_str(),
                Asked {
                    model: a.model,
                    chat: a.chat,
                },
            )
        }),
        &tok,
        &judge,
        &conversations,
        gold.samples,
        &gold_sampling(gold.max_new_tokens),
        (gold.sample_seed, seed),
    );
    println!("{}", serde_json::to_string(&numbers)?);
    Ok(true)
}
