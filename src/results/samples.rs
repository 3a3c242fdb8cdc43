//! `samples.jsonl` and `probes.jsonl`: what each compared stage answered to the report's
//! prompts, and its next-token probabilities after the probe prompts.

use serde::{Deserialize, Serialize};

/// A line of `samples.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SampleLine {
    pub stage: String,
    /// The prompt, or a conversation's turns on lines of their own (`spec::conversation_key`).
    pub prompt: String,
    pub completion: String,
    /// A conversation's turns (user first, alternating, ending on the user's); empty for a
    /// plain prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<String>,
}

/// A line of `probes.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeLine {
    pub stage: String,
    pub prompt: String,
    #[serde(default)]
    pub top: Vec<TokenProb>,
    #[serde(default)]
    pub candidates: Vec<CandidateProb>,
}

/// One of the most likely next tokens.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenProb {
    pub token: String,
    #[serde(default)]
    pub id: u32,
    pub prob: f64,
}

/// The probability of a whole continuation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CandidateProb {
    pub text: String,
    pub prob: f64,
}
