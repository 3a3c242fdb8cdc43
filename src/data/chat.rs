//! The one chat template shared by sft, reward, rlhf, generate and chat:
//!
//! ```text
//! <|system|>content<|end|>        (optional)
//! <|user|>content<|end|>
//! <|assistant|>content<|end|>     (repeated)
//! ```
//!
//! Only assistant content and the `<|end|>` closing an assistant turn are training targets:
//! the model learns to answer and to stop, not to write the user's side.
//!
//! Each marker is the id sequence the tokenizer gives for it (`Tokenizer::marker`): one
//! reserved id in a tokenizer gptlab trained; in a pretrained one, the headers are their text
//! split into ordinary tokens and `<|end|>` is the tokenizer's own end token.

use std::fmt;

use crate::tokenizer::{Special, Tokenizer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The special token that opens a turn of this role.
    pub fn header(self) -> Special {
        match self {
            Role::System => Special::System,
            Role::User => Special::User,
            Role::Assistant => Special::Assistant,
        }
    }

    /// The role whose header starts `ids`, and the header's length.
    fn header_at(tok: &Tokenizer, ids: &[u32]) -> Option<(Role, usize)> {
        [Role::System, Role::User, Role::Assistant]
            .into_iter()
            .map(|r| (r, tok.marker(r.header())))
            .find(|(_, header)| !header.is_empty() && ids.starts_with(header))
            .map(|(r, header)| (r, header.len()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Message {
        Message::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new(Role::Assistant, content)
    }
    pub fn system(content: impl Into<String>) -> Message {
        Message::new(Role::System, content)
    }
}

/// A conversation as token ids, with which tokens are training targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedChat {
    pub ids: Vec<u32>,
    /// `loss_mask[i]`: `ids[i]` is a training target (assistant content and the `<|end|>`
    /// closing an assistant turn).
    pub loss_mask: Vec<bool>,
}

/// Encodes a whole conversation with the chat template.
pub fn encode_chat(tok: &Tokenizer, messages: &[Message]) -> EncodedChat {
    let mut chat = EncodedChat {
        ids: Vec::new(),
        loss_mask: Vec::new(),
    };
    for message in messages {
        let is_target = message.role == Role::Assistant;
        let header = tok.marker(message.role.header());
        let content = tok.encode(&message.content);
        let end = tok.marker(Special::EndOfTurn);
        chat.ids.extend(header);
        chat.loss_mask
            .extend(std::iter::repeat_n(false, header.len()));
        chat.loss_mask
            .extend(std::iter::repeat_n(is_target, content.len()));
        chat.ids.extend(content);
        chat.ids.extend(end);
        chat.loss_mask
            .extend(std::iter::repeat_n(is_target, end.len()));
    }
    chat
}

/// The conversation so far followed by an `<|assistant|>` header: what generation continues.
pub fn encode_prompt(tok: &Tokenizer, messages: &[Message]) -> Vec<u32> {
    let mut ids = encode_chat(tok, messages).ids;
    ids.extend(tok.marker(Special::Assistant));
    ids
}

/// Drops the oldest turns until the conversation plus `room` tokens of answer fits a context
/// of `ctx` tokens, keeping it starting at a user turn; returns how many messages were
/// dropped. `gptlab chat` and the serve page keep long conversations going this way.
pub fn fit_history(tok: &Tokenizer, history: &mut Vec<Message>, ctx: usize, room: usize) -> usize {
    let before = history.len();
    while history.len() > 1 && encode_prompt(tok, history).len() + room > ctx {
        history.remove(0);
        while history.len() > 1 && history[0].role != Role::User {
            history.remove(0);
        }
    }
    before - history.len()
}

/// The messages in `ids` (the inverse of [`encode_chat`]). A turn still open at the end (a
/// generated answer that never emitted `<|end|>`) is kept; tokens outside any turn are ignored.
pub fn decode_chat(tok: &Tokenizer, ids: &[u32]) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut open: Option<(Role, usize)> = None;
    let end = tok.marker(Special::EndOfTurn);
    let mut i = 0;
    while i < ids.len() {
        if let Some((role, len)) = Role::header_at(tok, &ids[i..]) {
            if let Some((role, start)) = open.take() {
                messages.push(Message::new(role, tok.decode(&ids[start..i])));
            }
            open = Some((role, i + len));
            i += len;
        } else if !end.is_empty() && ids[i..].starts_with(end) {
            if let Some((role, start)) = open.take() {
                messages.push(Message::new(role, tok.decode(&ids[start..i])));
            }
            i += end.len();
        } else {
            i += 1;
        }
    }
    if let Some((role, start)) = open {
        messages.push(Message::new(role, tok.decode(&ids[start..])));
    }
    messages
}

/// A conversation as readable text for logs and reports: one `role: content` block per turn.
pub fn render_chat(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|m| format!("{}: {}\n", m.role, m.content))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::TokenizerKind;

    fn conversation() -> Vec<Message> {
        vec![
            Message::system("你是一个助手。"),
            Message::user("中国的首都是哪里?"),
            Message::assistant("北京。"),
            Message::user("Thanks!\nAnd 2+2?"),
            Message::assistant("4"),
        ]
    }

    fn tokenizers() -> Vec<Tokenizer> {
        let text = render_chat(&conversation()).repeat(10);
        vec![
            Tokenizer::train(TokenizerKind::Char, &[&text], 200).unwrap(),
            Tokenizer::train(TokenizerKind::Bpe, &[&text], 300).unwrap(),
        ]
    }

    /// A pretrained (HF pipeline) tokenizer, whose turn headers are several plain ids.
    fn pretrained() -> Tokenizer {
        let text = render_chat(&conversation()).repeat(10);
        let hf = crate::tokenizer::pretrained::stand_in_gpt2_tokenizer(&[&text], 300);
        Tokenizer::pretrained(hf).unwrap()
    }

    #[test]
    fn decode_inverts_encode() {
        for tok in tokenizers().into_iter().chain([pretrained()]) {
            let chat = encode_chat(&tok, &conversation());
            assert_eq!(chat.ids.len(), chat.loss_mask.len());
            assert_eq!(decode_chat(&tok, &chat.ids), conversation());
        }
    }

    #[test]
    fn layout_is_header_content_end() {
        let tok = &tokenizers()[0];
        let ids = encode_chat(tok, &[Message::user("ab")]).ids;
        let mut expected = vec![tok.special(Special::User)];
        expected.extend(tok.encode("ab"));
        expected.push(tok.special(Special::EndOfTurn));
        assert_eq!(ids, expected);
    }

    #[test]
    fn mask_covers_exactly_assistant_content_and_its_end() {
        for tok in tokenizers().into_iter().chain([pretrained()]) {
            let chat = encode_chat(&tok, &conversation());
            let mut expected = Vec::new();
            for m in conversation() {
                let n = tok.encode(&m.content).len();
                let target = m.role == Role::Assistant;
                let header = tok.marker(m.role.header()).len();
                expected.extend(std::iter::repeat_n(false, header));
                expected.extend(std::iter::repeat_n(target, n));
                expected.push(target); // <|end|>
            }
            assert_eq!(chat.loss_mask, expected);
            let targets: Vec<u32> = chat
                .ids
                .iter()
                .zip(&chat.loss_mask)
                .filter(|(_, &m)| m)
                .map(|(&id, _)| id)
                .collect();
            let mut answer_ids = tok.encode("北京。");
            answer_ids.push(tok.special(Special::EndOfTurn));
            answer_ids.extend(tok.encode("4"));
            answer_ids.push(tok.special(Special::EndOfTurn));
            assert_eq!(targets, answer_ids);
        }
    }

    #[test]
    fn a_pretrained_tokenizer_writes_headers_as_text_and_ends_turns_with_its_end_token() {
        let tok = pretrained();
        let end = tok.hf().token_to_id("<|endoftext|>").unwrap();
        assert_eq!(tok.marker(Special::EndOfTurn), [end]);
        assert_eq!(tok.special(Special::Pad), end);
        let user = tok.marker(Special::User);
        assert!(user.len() > 1, "plain text, several ids: {user:?}");
        assert_eq!(user, tok.encode("<|user|>"));
        assert_eq!(tok.decode(user), "<|user|>");
        let ids = encode_chat(&tok, &[Message::user("ab")]).ids;
        let mut expected = user.to_vec();
        expected.extend(tok.encode("ab"));
        expected.push(end);
        assert_eq!(ids, expected);
        let mut prompt = encode_prompt(&tok, &[Message::user("2+2?")]);
        assert!(prompt.ends_with(tok.marker(Special::Assistant)));
        prompt.extend(tok.encode("4"));
        assert_eq!(
            decode_chat(&tok, &prompt),
            vec![Message::user("2+2?"), Message::assistant("4")]
        );
    }

    #[test]
    fn prompt_ends_with_the_assistant_header() {
        let tok = &tokenizers()[0];
        let history = &conversation()[..2];
        let prompt = encode_prompt(tok, history);
        assert_eq!(prompt.last(), Some(&tok.special(Special::Assistant)));
        assert_eq!(
            &prompt[..prompt.len() - 1],
            encode_chat(tok, history).ids.as_slice()
        );
    }

    #[test]
    fn an_unfinished_answer_decodes_as_an_open_turn() {
        let tok = &tokenizers()[0];
        let mut ids = encode_prompt(tok, &[Message::user("2+2?")]);
        ids.extend(tok.encode("4"));
        assert_eq!(
            decode_chat(tok, &ids),
            vec![Message::user("2+2?"), Message::assistant("4")]
        );
    }

    #[test]
    fn roles_serialize_lowercase_and_render_readably() {
        let json = serde_json::to_string(&Message::assistant("hi")).unwrap();
        assert_eq!(json, r#"{"role":"assistant","content":"hi"}"#);
        assert_eq!(
            render_chat(&[Message::user("q"), Message::assistant("a")]),
            "user: q\nassistant: a\n"
        );
    }
}
