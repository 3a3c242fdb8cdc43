//! `gptlab serve RUN`: the run's stages over an OpenAI-compatible API, with a chat page to rate
//! and rank answers (`crate::serve`).

use super::device::{on_device, DeviceArg};
use crate::serve::ServeOptions;
use anyhow::Result;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// The run folder (results/NAME/RUN_ID).
    pub run: PathBuf,
    /// Stages to serve, comma-separated (default: every finished stage but reward models).
    #[arg(long, value_delimiter = ',')]
    pub stages: Vec<String>,
    /// Address to listen on; anything but loopback is reachable from other machines.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port (0 picks a free one; the address is printed on the first line).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` on every /v1 route.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Worker threads per stage, each with its own copy of the model and its own batch
    /// (one batch already keeps every core busy: concurrent requests join it).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Requests that may wait per stage; more get 503.
    #[arg(long, default_value_t = 32)]
    pub queue: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

pub fn run(args: ServeArgs) -> Result<bool> {
    let device = args.device.chosen(&args.run)?;
    let options = ServeOptions {
        run: args.run,
        stages: args.stages,
        host: args.host,
        port: args.port,
        api_key: args.api_key,
        workers: args.workers,
        queue: args.queue,
    };
    on_device!(
        device,
        opener | open | crate::serve::run(&options, open).map(|()| true)
    )
}
