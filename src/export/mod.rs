//! Taking models elsewhere and back: `gptlab export --format hf-gpt2` writes a folder Python
//! `transformers` loads as `GPT2LMHeadModel`, `--format peft` a LoRA stage's adapter for
//! `peft` on top of such a folder, `gptlab import` reads such a folder back into a
//! stage, and `gptlab logits` prints raw logits so the two sides can be compared.
//!
//! The format itself (config.json, the tensor layout, reading a folder) is `crate::hf`,
//! below the runner, which imports a `pretrained` stage with it.

pub mod hf_files;
pub mod hf_gpt2;
pub mod import;
pub mod logits;
pub mod peft;

#[cfg(test)]
mod tests;
