//! The Hugging Face GPT-2 folder as a format: `config.json` (`config.rs`, the one mapping,
//! which refuses what gptlab cannot compute exactly), the tensor layout (`layout.rs`, the one
//! mapping both directions use), and reading any such folder into a model at a compiled shape
//! (`model.rs`). Below the runner, which imports a `pretrained` stage with it, and `export`,
//! which writes the same format.

pub mod config;
pub mod layout;
pub mod model;

pub use model::import_hf_model;
