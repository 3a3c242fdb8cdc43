//! The small JSON files `transformers` reads beside the weights: the tokenizer's config and
//! special-token map, and the generation defaults. They name the tokenizer's own markers: a
//! trained tokenizer's special tokens, or a pretrained one's end token (its chat headers are
//! plain text, `src/tokenizer/hf_codec.rs`).

use crate::infer::prompt::stop_ids;
use crate::tokenizer::{Special, Tokenizer, TokenizerKind};
use serde_json::{json, Value};

/// Renders gptlab's chat template (`src/data/chat.rs`) for `apply_chat_template`:
/// `<|role|>content<|end|>` per turn, then `<|assistant|>` when asking for an answer; `<|end|>`
/// stands for the tokenizer's end of turn.
const CHAT_TEMPLATE: &str = "{% for message in messages %}<|{{ message['role'] }}|>\
{{ message['content'] }}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";

fn specials(tok: &Tokenizer) -> Value {
    if tok.kind() == TokenizerKind::Pretrained {
        let end = tok.end_of_turn_text();
        let unk = tok
            .marker(Special::Unk)
            .first()
            .map(|&id| tok.token_text(id));
        return json!({
            "bos_token": end,
            "eos_token": end,
            "unk_token": unk,
            "pad_token": end,
            "additional_special_tokens": [],
        });
    }
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

pub fn special_tokens_map(tok: &Tokenizer) -> Value {
    specials(tok)
}

/// `tokenizer.json` holds the vocabulary; this says which class wraps it and its limits.
pub fn tokenizer_config(tok: &Tokenizer, n_ctx: usize) -> Value {
    let mut v = specials(tok);
    let extra = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": n_ctx,
        "add_bos_token": false,
        "add_eos_token": false,
        "clean_up_tokenization_spaces": false,
        "chat_template": CHAT_TEMPLATE.replace("<|end|>", &tok.end_of_turn_text()),
    });
    v.as_object_mut()
        .expect("an object")
        .extend(extra.as_object().expect("an object").clone());
    v
}

/// Generation defaults matching `gptlab generate`: stop where gptlab stops (`<|endoftext|>`,
/// and `<|end|>` closing an assistant turn for chat models), and never pick the padding ids
/// of the compiled vocabulary bucket beyond the tokenizer's last id.
pub fn generation_config(tok: &Tokenizer, n_ctx: usize, vocab_size: usize, chat: bool) -> Value {
    let tokenizer_vocab = tok.vocab_size();
    // The ids gptlab stops at, as a list when there are several and a single id otherwise.
    let stops = stop_ids(tok, chat);
    let eos = match stops.as_slice() {
        [one] => json!(one),
        many => json!(many),
    };
    let mut v = json!({
        "bos_token_id": tok.special(Special::EndOfText),
        "eos_token_id": eos,
        "pad_token_id": tok.special(Special::Pad),
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

    fn trained(vocab_size: usize) -> Tokenizer {
        let text: String = (0x4E00..0x4E00 + 2000u32)
            .filter_map(char::from_u32)
            .collect();
        let tok = Tokenizer::train(TokenizerKind::Char, &[&text], vocab_size).unwrap();
        assert_eq!(tok.vocab_size(), vocab_size);
        tok
    }

    #[test]
    fn padding_ids_are_suppressed_and_chat_models_stop_at_end_of_turn() {
        let g = generation_config(&trained(300), 128, 512, true);
        let s = g["suppress_tokens"].as_array().unwrap();
        assert_eq!(
            (s.len(), s[0].as_u64(), s[211].as_u64()),
            (212, Some(300), Some(511))
        );
        assert_eq!(g["eos_token_id"], json!([6, 2]));
        let tok = trained(512);
        let g = generation_config(&tok, 128, 512, false);
        assert!(g.get("suppress_tokens").is_none());
        assert_eq!(g["eos_token_id"], json!(2));
        assert_eq!(tokenizer_config(&tok, 128)["pad_token"], "<|pad|>");
    }

    #[test]
    fn a_pretrained_tokenizer_exports_its_own_end_token_and_plain_text_headers() {
        let hf = crate::tokenizer::pretrained::stand_in_gpt2_tokenizer(&["hello world"; 4], 300);
        let tok = Tokenizer::pretrained(hf).unwrap();
        let end = tok.hf().token_to_id("<|endoftext|>").unwrap();
        let g = generation_config(&tok, 128, 512, true);
        assert_eq!(
            (g["eos_token_id"].clone(), g["pad_token_id"].clone()),
            (json!(end), json!(end))
        );
        let config = tokenizer_config(&tok, 128);
        assert_eq!(config["eos_token"], "<|endoftext|>");
        assert_eq!(config["additional_special_tokens"], json!([]));
        let template = config["chat_template"].as_str().unwrap();
        assert!(template.contains("}}<|endoftext|>{% endfor %}") && !template.contains("<|end|>"));
    }
}
