//! Reading training data: file patterns, text corpora, JSONL datasets in the TRL schemas,
//! the chat template, and validation splits (every file opened by `open`, gzip or not); and writing ratings in those schemas.

pub mod batches;
pub mod chat;
pub mod corpus_source;
pub mod jsonl;
pub mod mixture;
pub mod open;
pub mod pairing;
pub mod paths;
pub mod ratings;
pub mod records;
pub mod split;
pub mod text;
pub mod verse;

pub use chat::{decode_chat, encode_chat, encode_prompt, render_chat, EncodedChat, Message, Role};
pub use jsonl::{
    read_labelled, read_preferences, read_prompts, read_sft, sniff_jsonl_kind, Feedback, JsonlKind,
    PreferencePair, PreferenceRecord, PromptExample, SftExample,
};
pub use paths::expand_paths;
pub use split::{split_off_validation, HeldOut};
pub use text::read_text_corpus;

#[cfg(test)]
mod shipped_datasets;
