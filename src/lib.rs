//! gptlab: train small GPT language models through the whole ChatGPT recipe.
//!
//! Data flows one way: spec -> runner -> stage -> (data, tokenizer, model, train) ->
//! metrics and checkpoints -> report.
pub mod bench;
pub mod chat;
pub mod cli;
pub mod data;
pub mod eval;
pub mod export;
pub mod hf;
pub mod infer;
pub mod model;
pub mod report;
pub mod results;
pub mod runner;
pub mod serve;
pub mod spec;
pub mod stages;
pub mod sweep;
pub mod tokenizer;
pub mod train;
pub mod util;
