//! The dfdx GPT: layers, attention, blocks, the model, its presets and generation.
//! Knows nothing about files, stages or specs.

pub mod adapters;
pub mod attention;
pub mod batch_cache;
pub mod block;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod device_cache;
pub mod generate;
pub mod gpt;
pub mod kernels;
pub mod kv_cache;
pub mod layers;
pub mod lm;
pub mod lora;
pub mod params;
pub mod presets;
pub mod raw;
pub mod sample;

pub use config::ModelConfig;
pub use lm::{LanguageModel, Logits, Tokens};
pub use lora::LoraSpec;
pub use params::Param;
pub use presets::{build_model, preset_info, PresetInfo, PRESETS};

/// Everything a device must offer to run gptlab: dfdx's ops plus raw buffer access.
pub trait Backend: dfdx::tensor_ops::Device<f32> + raw::RawStorage + lora::FrozenLinear {}
impl<D: dfdx::tensor_ops::Device<f32> + raw::RawStorage + lora::FrozenLinear> Backend for D {}
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vocab_padding_tests;
