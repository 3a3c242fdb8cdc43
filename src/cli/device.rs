//! `--device cpu|cuda`: the one place a command that opens a stage picks its device. Without
//! the flag a stage runs where its run trained (`device` in the run's spec.toml), and on the
//! CPU for a folder without one. `gptlab run` takes the spec's own `device` (src/runner.rs).

use crate::spec::Device;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// The `--device` flag of the commands that open a stage or a run.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DeviceArg {
    /// cpu or cuda (default: the run's `device` from its spec.toml; cpu for a folder without one).
    #[arg(long, value_parser = parse_device)]
    pub device: Option<Device>,
}

impl DeviceArg {
    /// The device for `folder` (a run folder or a stage folder inside one): the flag, else the
    /// run's.
    pub fn chosen(&self, folder: &Path) -> Result<Device> {
        match self.device {
            Some(d) => Ok(d),
            None => run_device(folder),
        }
    }
}

fn parse_device(s: &str) -> Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda),
        other => bail!("unknown device `{other}`: expected cpu or cuda"),
    }
}

/// `device` of the spec.toml in `folder` or its parent (a stage's run); cpu where neither has one.
fn run_device(folder: &Path) -> Result<Device> {
    let spec = [Some(folder), folder.parent()]
        .into_iter()
        .flatten()
        .map(|f| f.join(crate::results::SPEC_FILE))
        .find(|p| p.is_file());
    let Some(spec) = spec else {
        return Ok(Device::Cpu);
    };
    let text = std::fs::read_to_string(&spec)
        .with_context(|| format!("cannot read {}", spec.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", spec.display()))?;
    match table.get("device").map(|d| d.as_str()) {
        None => Ok(Device::Cpu),
        Some(Some(d)) => {
            parse_device(d).with_context(|| format!("{}: key `device`", spec.display()))
        }
        Some(None) => bail!(
            "{}: key `device` should be a string, cpu or cuda",
            spec.display()
        ),
    }
}

/// The CPU, for a command that only turns files into files (`import` reads weights into a
/// model and writes them out again, computing nothing): no device choice to make.
pub fn files_only() -> dfdx::tensor::Cpu {
    dfdx::tensor::Cpu::default()
}

/// Runs `$body` with `$dev` bound to the device `$device` names (a `spec::Device`), built
/// here: the CPU, or the first CUDA GPU with an error that says what is missing when there is
/// none (or the build has no CUDA). `$body` is generic code over `D: Backend` returning a
/// `Result`; it is compiled once per device.
macro_rules! on_device {
    ($device:expr, |$dev:ident| $body:expr) => {
        match $device {
            $crate::spec::Device::Cpu => {
                let $dev = dfdx::tensor::Cpu::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::spec::Device::Cuda => {
                let $dev = $crate::model::device::open_cuda(0)?;
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::spec::Device::Cuda => Err($crate::model::device::no_cuda_build()),
        }
    };
    // `$open` bound to a function that opens the device, for code that opens one per thread.
    ($device:expr, opener |$open:ident| $body:expr) => {
        match $device {
            $crate::spec::Device::Cpu => {
                let $open: fn() -> anyhow::Result<dfdx::tensor::Cpu> =
                    || Ok(dfdx::tensor::Cpu::default());
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::spec::Device::Cuda => {
                // Opened here first, so that a missing GPU stops the command before it starts.
                $crate::model::device::open_cuda(0)?;
                let $open: fn() -> anyhow::Result<dfdx::tensor::Cuda> =
                    || $crate::model::device::open_cuda(0);
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::spec::Device::Cuda => Err($crate::model::device::no_cuda_build()),
        }
    };
}
pub(crate) use on_device;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_runs_where_its_run_trained_unless_told() {
        let run = tempfile::tempdir().unwrap();
        let stage = run.path().join("base");
        std::fs::create_dir(&stage).unwrap();
        assert_eq!(DeviceArg::default().chosen(&stage).unwrap(), Device::Cpu);
        std::fs::write(
            run.path().join("spec.toml"),
            "name = \"x\"\ndevice = \"cuda\"\n",
        )
        .unwrap();
        assert_eq!(DeviceArg::default().chosen(&stage).unwrap(), Device::Cuda);
        assert_eq!(
            DeviceArg::default().chosen(run.path()).unwrap(),
            Device::Cuda
        );
        let flag = DeviceArg {
            device: Some(Device::Cpu),
        };
        assert_eq!(flag.chosen(&stage).unwrap(), Device::Cpu);
        std::fs::write(run.path().join("spec.toml"), "device = \"tpu\"\n").unwrap();
        let e = format!("{:#}", DeviceArg::default().chosen(&stage).unwrap_err());
        assert!(e.contains("spec.toml") && e.contains("tpu"), "{e}");
    }
}
