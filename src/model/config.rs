//! The runtime description of a model: which preset, and the sizes its types were compiled with.

use serde::{Deserialize, Serialize};

/// Written as `config.json` beside every checkpoint (GPT-2 key names where they exist).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub preset: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    /// Maximum context the position embedding holds (GPT-2's `n_positions`).
    pub n_ctx: usize,
    /// Compiled vocabulary size (a bucket >= the tokenizer's size; unused ids never occur).
    pub vocab_size: usize,
    /// Whether the model carries a scalar (reward / value) head.
    #[serde(default)]
    pub score_head: bool,
}

impl ModelConfig {
    /// Training FLOPs per token: 6N for the matmuls plus attention (nanoGPT/PaLM estimate),
    /// N without the position embedding.
    pub fn flops_per_token(&self, params: usize, seq: usize) -> f64 {
        let n = (params - self.n_ctx * self.n_embd) as f64;
        6.0 * n + 12.0 * (self.n_layer * self.n_embd * seq) as f64
    }
}
