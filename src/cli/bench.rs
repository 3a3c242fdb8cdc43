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
    /// Compare a LoRA training step with full fine-tuning instead (gpt2 preset, batch 4 x
    /// 256, CPU; each mode in its own process, for its peak memory). --steps counts the timed
    /// steps of each run (2 or 3 are plenty: a step takes seconds).
    #[arg(long)]
    pub lora: bool,
    /// One measurement of the --lora comparison (the children it runs).
    #[arg(long, hide = true)]
    pub lora_child: Option<String>,
}

/// `gptlab bench`: the report as JSON, printed and optionally saved.
pub fn run(args: BenchArgs) -> Result<bool> {
    if let Some(mode) = &args.lora_child {
        println!("{}", crate::bench::lora::child(mode, args.steps)?);
        return Ok(true);
    }
    if args.lora {
        anyhow::ensure!(
            matches!(args.device.device, None | Some(Device::Cpu)),
            "bench --lora measures the CPU; drop --device"
        );
        let json = serde_json::to_string_pretty(&crate::bench::lora::run(args.steps)?)?;
        return finish(json, args.out);
    }
    let device = args.device.device.unwrap_or(Device::Cpu);
    let name = format!("{device:?}").to_lowercase();
    let report = on_device!(device, |dev| crate::bench::run_bench(
        &dev,
        &name,
        &args.presets,
        args.steps,
        !args.no_generate
    ))?;
    finish(serde_json::to_string_pretty(&report)?, args.out)
}

fn finish(json: String, out: Option<PathBuf>) -> Result<bool> {
    if let Some(out) = out {
        crate::util::write_atomic(&out, json.as_bytes())?;
    }
    println!("{json}");
    Ok(true)
}
