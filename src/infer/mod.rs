//! Asking a trained model something: the one place that knows how.
//!
//! - [`stage`]: a trained stage opened from its folder (model, tokenizer, typed kind), and
//!   which kinds answer through the chat template;
//! - [`prompt`]: a prompt from messages or raw text, as ids plus the ids that end its answer:
//!   the chat template and the stop rule are written here and nowhere else;
//! - [`ask`]: answers, completions and samples for many prompts at once, batched through the
//!   model's generator ([`crate::model::generate`]), each prompt with its own random stream;
//! - [`probe`]: the next-token distribution, a continuation's probability, attention maps;
//! - [`sampling`]: the spec's sampling settings as the model's `SampleOptions`, the one
//!   conversion every caller goes through.
//!
//! Callers (the CLI, serve, chat, export, the runner's samples and probes, eval, the report's
//! evaluation, RLHF rollouts and the feedback stage) go through it.

pub mod ask;
pub mod probe;
pub mod prompt;
pub mod sampling;
pub mod stage;

pub use ask::Ask;
pub use prompt::{Built, Prompt};
pub use stage::{is_chat, open_stage, Stage};
