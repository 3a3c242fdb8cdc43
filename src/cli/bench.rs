//! `gptlab bench`: training and generation speed per preset, as JSON.

use super::device::{on_device, DeviceArg};
use crate::spec::Device;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Presets to measure (default: nano, small, medium; gpt2 on request).
    #[arg(long, value_delimiter = ',')]
    pub presets: Vec<String>,
    /// cpu (the default), or cuda in a build with --features cuda.
    #[command(flatten)]
    pub device: DeviceArg,
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
    let device = args.device.device.unwrap_or(Device::Cpu);
    let name = format!("{device:?}").to_lowercase();
    let report = on_device!(device, |dev| crate::bench::run_bench(
        &dev,
        &name,
        &args.presets,
        args.steps,
        !args.no_generate
    ))?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(out) = args.out {
        crate::util::write_atomic(&out, json.as_bytes())?;
    }
    println!("{json}");
    Ok(true)
}
