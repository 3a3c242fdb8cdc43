//! `samples.jsonl` and `probes.jsonl`: what each compared stage answered to the report's
//! prompts, and its next-token probabilities after the probe prompts.

use serde::{Deserialize, Serialize};

/// A line of `samples.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SampleLine {
    pub stage: String,
    pub prompt: String,
    pub completion: String,
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
