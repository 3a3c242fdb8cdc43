//! Prompts as a model reads them. A chat stage reads the conversation through the chat
//! template and its answer ends at end of turn (or end of text); a completer (a base model)
//! continues raw text and stops at end of text.

use crate::data::chat::{encode_prompt, Message, Role};
use crate::tokenizer::{Special, Tokenizer};

#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// A conversation ending with a user turn, answered through the chat template.
    Chat(Vec<Message>),
    /// Raw text to continue.
    Text(String),
    /// Token ids to continue as text (`gptlab logits --generate`).
    Ids(Vec<u32>),
}

/// A prompt's ids, and the ids that end its answer (kept as the answer's last id).
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    pub ids: Vec<u32>,
    pub stop: Vec<u32>,
}

impl Prompt {
    /// One user message (`chat`) or the text itself.
    pub fn user(text: &str, chat: bool) -> Prompt {
        match chat {
            true => Prompt::Chat(vec![Message::user(text)]),
            false => Prompt::Text(text.to_string()),
        }
    }

    /// A conversation as a stage reads it: a chat stage through the template; a completer has
    /// no turns, so it continues their text, a line each.
    pub fn conversation(messages: &[Message], chat: bool) -> Prompt {
        match chat {
            true => Prompt::Chat(messages.to_vec()),
            false => Prompt::Text(
                messages
                    .iter()
                    .map(|m| m.content.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        }
    }

    /// Turns of a conversation (the user's first, then alternating) as a stage reads them.
    pub fn turns(turns: &[String], chat: bool) -> Prompt {
        let messages: Vec<Message> = turns
            .iter()
            .enumerate()
            .map(|(i, t)| Message {
                role: if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                },
                content: t.clone(),
            })
            .collect();
        Prompt::conversation(&messages, chat)
    }

    pub fn is_chat(&self) -> bool {
        matches!(self, Prompt::Chat(_))
    }

    /// The ids and stop ids, whole.
    pub fn build(&self, tok: &Tokenizer) -> Built {
        match self {
            Prompt::Chat(messages) => Built {
                ids: encode_prompt(tok, messages),
                stop: stop_ids(tok, true),
            },
            Prompt::Text(text) => Built {
                ids: tok.encode(text),
                stop: stop_ids(tok, false),
            },
            Prompt::Ids(ids) => Built {
                ids: ids.clone(),
                stop: stop_ids(tok, false),
            },
        }
    }

    /// [`Prompt::build`], cut from the left so that it and `max_new_tokens` fit in `n_ctx`
    /// (at least one prompt token stays).
    pub fn build_within(&self, tok: &Tokenizer, n_ctx: usize, max_new_tokens: usize) -> Built {
        let mut built = self.build(tok);
        let room = n_ctx.saturating_sub(max_new_tokens).max(1);
        if built.ids.len() > room {
            built.ids.drain(..built.ids.len() - room);
        }
        built
    }
}

/// The tokens that end an answer: end of turn or end of text for a chat answer, end of text
/// for a completion.
pub fn stop_tokens(chat: bool) -> &'static [Special] {
    match chat {
        true => &[Special::EndOfTurn, Special::EndOfText],
        false => &[Special::EndOfText],
    }
}

/// [`stop_tokens`] as ids of `tok`, each once (a pretrained tokenizer ends a turn and a text
/// with the same token).
pub fn stop_ids(tok: &Tokenizer, chat: bool) -> Vec<u32> {
    let mut ids: Vec<u32> = Vec::new();
    for id in stop_tokens(chat).iter().map(|&s| tok.special(s)) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::TokenizerKind;

    fn tok() -> Tokenizer {
        Tokenizer::train(TokenizerKind::Char, &["你好吗?我很好。abc"], 64).unwrap()
    }

    #[test]
    fn chat_prompts_use_the_template_and_stop_at_end_of_turn() {
        let tok = tok();
        let built = Prompt::user("你好", true).build(&tok);
        assert_eq!(built.ids, encode_prompt(&tok, &[Message::user("你好")]));
        assert_eq!(built.stop[0], tok.special(Special::EndOfTurn));
        let text = Prompt::user("你好", false).build(&tok);
        assert_eq!(text.ids, tok.encode("你好"));
        assert_eq!(text.stop, vec![tok.special(Special::EndOfText)]);
    }

    #[test]
    fn a_completer_reads_a_conversations_turns_a_line_each() {
        let turns = ["你好".to_string(), "我很好".to_string(), "abc".to_string()];
        assert_eq!(
            Prompt::turns(&turns, false),
            Prompt::Text("你好\n我很好\nabc".into())
        );
        let Prompt::Chat(messages) = Prompt::turns(&turns, true) else {
            panic!("a chat prompt")
        };
        assert_eq!(messages[1].role, Role::Assistant);
    }

    #[test]
    fn a_prompt_is_cut_from_the_left_to_leave_room_for_the_answer() {
        let tok = tok();
        let built = Prompt::user("abcabcabc", false).build_within(&tok, 8, 5);
        assert_eq!(built.ids, tok.encode("abc"));
    }
}
