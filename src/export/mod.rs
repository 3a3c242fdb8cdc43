//! Taking models elsewhere and back: `gptlab export --format hf-gpt2` writes a folder Python
//! `transformers` loads as `GPT2LMHeadModel`, `--format peft` a LoRA stage's adapter for
//! `peft` on top of such a folder, `gptlab import` reads such a folder back into a
//! stage, and `gptlab logits` prints raw logits so the two sides can be compared.
//!
//! `hf_model.rs` reads any HF GPT-2 folder into a model (the import and the `pretrained`
//! stage); `layout.rs` is the one tensor mapping both directions use; `hf_config.rs` the one
//! `config.json` mapping, which refuses what gptlab cannot compute exactly.

pub mod hf_config;
pub mod hf_files;
pub mod hf_gpt2;
pub mod hf_model;
pub mod import;
pub mod layout;
pub mod logits;
pub mod peft;

pub use hf_model::import_hf_model;

#[cfg(test)]
mod tests;
