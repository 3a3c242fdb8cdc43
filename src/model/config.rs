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
    /// The checkpoint's own vocabulary, when it is smaller than the compiled one: an imported
    /// model (GPT-2's 50,257 in the 50,304 bucket). Ids from it up are padding rows that the
    /// checkpoint never had, so the LM head masks them out of the logits and exports leave
    /// them out. `None` for models trained here, which keep every compiled row (absent from
    /// their `config.json`, so old files, run ids and outputs are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_vocab_size: Option<usize>,
    /// Whether the model carries a scalar (reward / value) head.
    #[serde(default)]
    pub score_head: bool,
}

impl ModelConfig {
    /// The ids that are the model's own: the checkpoint's vocabulary, else the compiled one.
    pub fn real_vocab(&self) -> usize {
        self.real_vocab_size.unwrap_or(self.vocab_size)
    }

    /// Training FLOPs per token: 6N for the matmuls plus attention (nanoGPT/PaLM estimate),
    /// N without the position embedding.
    pub fn flops_per_token(&self, params: usize, seq: usize) -> f64 {
        let n = (params - self.n_ctx * self.n_embd) as f64;
        6.0 * n + 12.0 * (self.n_layer * self.n_embd * seq) as f64
    }
}
