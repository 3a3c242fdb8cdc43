//! gptlab: train small GPT language models through the whole ChatGPT recipe.
pub mod model;
pub mod train;
