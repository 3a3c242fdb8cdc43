//! Evaluation: answers and exact match, next-token probes, answer log-probabilities.
pub mod answers;
pub mod logprob;
pub mod probe;
