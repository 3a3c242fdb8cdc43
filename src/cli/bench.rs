//! `gptlab bench`: training and generation speed per preset, as JSON.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Presets to measure (default: nano, small, medium; gpt2 on request).
    #[arg(long, value_delimiter = ',')]
    pub presets: Vec<String>,
    /// cpu, or cuda in a build with --features cuda.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Measure training only (generation takes a while on the larger presets).
    #[arg(long)]
    pub no_generate: bool,
    /// Write the JSON here as well as to stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `gptlab bench`: the report as JSON, printed and optionally saved.
pub fn run(args: BenchArgs) -> Result<bool> {
    let report =
        crate::bench::run_bench(&args.device, &args.presets, args.steps, !args.no_generate)?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(out) = args.out {
        crate::util::write_atomic(&out, json.as_bytes())?;
    }
    println!("{json}");
    Ok(true)
}
