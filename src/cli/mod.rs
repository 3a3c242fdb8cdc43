//! The `gptlab` command line: the clap types of every command and what each one does. One file
//! per command holds its `Args` (flags, defaults, help) and its handler, which turns the
//! arguments into the plain options of the library module that does the work; arg groups that
//! several commands share are in `common.rs`. `src/main.rs` only parses and calls `dispatch`.

pub mod bench;
pub mod chat;
pub mod common;
pub mod compare;
pub mod device;
pub mod eval;
pub mod export;
pub mod generate;
pub mod import;
pub mod keys;
pub mod logits;
pub mod probe;
pub mod report;
pub mod run;
pub mod schema;
pub mod serve;
pub mod sweep;
pub mod validate;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gptlab",
    version,
    about = "Train small GPTs through pretrain, SFT, reward and RLHF, from TOML experiments"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run experiments (paths or globs); each prints its run folder last.
    Run(run::RunArgs),
    /// Check experiment specs without running them.
    Validate(validate::ValidateArgs),
    /// Print the JSON Schema of experiment files (or `--sweep` files), for editors.
    Schema(schema::SchemaArgs),
    /// Print the reference of every key of experiment files (or of one stage kind's or
    /// algorithm's keys): type, default, range, the stages that take it, its doc.
    Keys(keys::KeysArgs),
    /// Sample text from a trained stage: RUN/STAGE (a stage folder of a run).
    Generate(generate::GenerateArgs),
    /// The next-token distribution after a prompt, and probabilities of whole continuations.
    Probe(probe::ProbeArgs),
    /// Evaluate a stage on a data file: exact match (questions with answers), preference
    /// accuracy (chosen/rejected pairs) or loss and bits per byte (plain text).
    Eval(eval::EvalArgs),
    /// Talk to a stage; rate answers with + / - to collect feedback for a reward stage.
    Chat(chat::ChatArgs),
    /// Serve a run's stages: an OpenAI-compatible API and a chat page to rate and rank answers.
    Serve(serve::ServeArgs),
    /// Rebuild a run's report.html / report.md from its folder.
    Report(report::ReportArgs),
    /// Training and generation speed per preset vs the measured matmul peak (JSON).
    Bench(bench::BenchArgs),
    /// Overlay several runs (or every run under a folder) in one report.
    Compare(compare::CompareArgs),
    /// Run a sweep's points (grid / random over spec keys), resumably, or emit a Slurm script.
    Sweep(sweep::SweepArgs),
    /// Write a stage as a Hugging Face transformers GPT-2 folder.
    Export(export::ExportArgs),
    /// Read a Hugging Face GPT-2 folder (of a compiled preset's shape) into a stage folder.
    Import(import::ImportArgs),
    /// Print a stage's raw logits for given token ids (and a greedy continuation), for cross-checks.
    Logits(logits::LogitsArgs),
}

/// Runs a parsed command line: true when everything asked for succeeded; false when some part
/// failed and said so on stderr (`gptlab run` of several specs, `validate`, a sweep's points).
pub fn dispatch(cli: Cli) -> Result<bool> {
    prepare_process(&cli.command);
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Report(args) => report::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Export(args) => export::run(args),
        Command::Import(args) => import::run(args),
        Command::Logits(args) => logits::run(args),
    }
}

/// What every command's process sets up first: the allocator, the thread pool, Ctrl-C, and
/// what a closed stdout does.
fn prepare_process(command: &Command) {
    crate::util::memory::reuse_freed_memory();
    // Rust ignores SIGPIPE, so `gptlab logits ... | head` made println! panic when head left.
    // SIGPIPE's default action ends the process quietly instead, as with any Unix tool.
    // Not for `serve`: hyper writes sockets with writev, which raises SIGPIPE when a client
    // hangs up, and a server must outlive its clients. (Sweep points write to log files.)
    if !matches!(command, Command::Serve(_)) {
        // SAFETY: resets one signal's disposition to the default; no handler is involved.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // The main thread works in rayon's pool instead of sleeping while it runs: the training
    // step is a chain of short parallel ops, and handing each one to another thread and
    // waking up afterwards cost more than the op itself at small model sizes. `serve` computes
    // on its worker threads while the main thread waits on the network, so it keeps them all.
    // The rule this imposes: code on the main thread never blocks waiting for another thread
    // that needs the pool (with one thread, main is the pool's only worker: a deadlock). Work
    // done in parallel goes through rayon itself (`runner/report_eval.rs`); the threads
    // `sweep` starts only wait for child processes.
    if !matches!(command, Command::Serve(_)) {
        let _ = rayon::ThreadPoolBuilder::new()
            .use_current_thread()
            .build_global();
    }
    let _ = ctrlc::set_handler(crate::train::trainer::on_interrupt);
}
