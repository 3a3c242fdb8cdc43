//! Evaluation: answers and exact match, character-overlap F1, answer
//! log-probabilities, judges (declared rules that score answers) and the gold measures built
//! on them (judge rate, win rate, KL per answer, what the answers say), and the `gptlab eval` dispatcher over data
//! kinds.
pub mod answers;
pub mod dataset;
pub mod diversity;
pub mod gold;
pub mod judge;
pub mod logprob;
pub mod loss;
pub mod overlap;
pub mod preference;
