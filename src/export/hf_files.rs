//! The small JSON files `transformers` reads beside the weights: the tokenizer's config and
//! special-token map, and the generation defaults.

use crate::infer::prompt::stop_tokens;
use crate::tokenizer::Special;
use serde_json::{json, Value};

/// Renders gptlab's chat template (`src/data/chat.rs`) for `apply_chat_template`:
/// `<|role|>content<|end|>` per turn, then `<|assistant|>` when asking for an answer.
const CHAT_TEMPLATE: &str = "{% for message in messages %}<|{{ message['role'] }}|>\
{{ message['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

fn specials() -> Value {
    json!({
        "bos_token": Special::EndOfText.name(),
        "eos_token": Special::EndOfText.name(),
        "unk_token": Special::Unk.name(),
        "pad_token": Special::Pad.name(),
        "additional_special_tokens": [
            Special::System.name(),
            Special::User.name(),
            Special::Assistant.name(),
            Special::EndOfTurn.name(),
        ],
    })
}

pub fn special_tokens_map() -> Value {
    specials()
}

/// `tokenizer.json` holds the vocabulary; this says which class wraps it and its limits.
pub fn tokenizer_config(n_ctx: usize) -> Value {
    let mut v = specials();
    let extra = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": n_ctx,
        "add_bos_token": false,
        "add_eos_token": false,
        "clean_up_tokenization_spaces": false,
        "chat_template": CHAT_TEMPLATE,
    });
    v.as_object_mut()
        .expect("an object")
        .extend(extra.as_object().expect("an object").clone());
    v
}

/// Generation defaults matching `gptlab generate`: stop where gptlab stops (`<|endoftext|>`,
/// and `<|end|>` closing an assistant turn for chat models), and never pick the padding ids
/// of the compiled vocabulary bucket beyond the tokenizer's last id.
pub fn generation_config(
    n_ctx: usize,
    tokenizer_vocab: usize,
    vocab_size: usize,
    chat: bool,
) -> Value {
    // The ids gptlab stops at, as a list for a chat model and a single id otherwise.
    let stops: Vec<u32> = stop_tokens(chat).iter().map(|s| s.id()).collect();
    let eos = match stops.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    let mut v = json!({
        "bos_token_id": Special::EndOfText.id(),
        "eos_token_id": eos,
        "pad_token_id": Special::Pad.id(),
        "max_length": n_ctx,
    });
    if tokenizer_vocab < vocab_size {
        v["suppress_tokens"] = json!((tokenizer_vocab..vocab_size).collect::<Vec<_>>());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_ids_are_suppressed_and_chat_models_stop_at_end_of_turn() {
        let g = generation_config(128, 300, 512, true);
        let s = g["suppress_tokens"].as_array().unwrap();
        assert_eq!(
            (s.len(), s[0].as_u64(), s[211].as_u64()),
            (212, Some(300), Some(511))
        );
        assert_eq!(g["eos_token_id"], json!([6, 2]));
        let g = generation_config(128, 512, 512, false);
        assert!(g.get("suppress_tokens").is_none());
        assert_eq!(g["eos_token_id"], json!(2));
        assert_eq!(tokenizer_config(128)["pad_token"], "<|pad|>");
    }
}
