//! A `[report] prompts` entry: one prompt, or a conversation to answer the last turn of.
//!
//! ```toml
//! prompts = [
//!     "中国的首都是哪里?",
//!     ["我叫小明。", "你好，小明!", "我叫什么名字?"],   # user, assistant, user: answer the last
//! ]
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A prompt, or a conversation (user, assistant, ..., user) whose last turn is answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum ReportPrompt {
    Text(String),
    /// Turns in order, the user's first, alternating user and assistant and ending on the
    /// user's: an odd number of them.
    Conversation(Vec<String>),
}

impl ReportPrompt {
    /// The turns, a plain prompt being one.
    pub fn turns(&self) -> Vec<String> {
        match self {
            ReportPrompt::Text(t) => vec![t.clone()],
            ReportPrompt::Conversation(turns) => turns.clone(),
        }
    }

    /// The name that samples.jsonl and the report's table know it by: the prompt, or the
    /// turns on lines of their own.
    pub fn key(&self) -> String {
        conversation_key(&self.turns())
    }

    /// What is wrong with it as a prompt, if anything.
    pub fn problem(&self) -> Option<String> {
        let turns = self.turns();
        if turns.iter().any(|t| t.trim().is_empty()) {
            return Some("a prompt or turn is empty".into());
        }
        (turns.len() % 2 == 0).then(|| {
            format!(
                "a conversation alternates user and assistant turns and ends on the user's, so it has an odd number of turns; found {}",
                turns.len()
            )
        })
    }
}

/// The key of a conversation with these turns (a single turn is the prompt itself).
pub fn conversation_key(turns: &[String]) -> String {
    turns.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_lists_of_turns_both_read() {
        #[derive(Deserialize)]
        struct R {
            prompts: Vec<ReportPrompt>,
        }
        let r: R = toml::from_str(
            r#"prompts = ["香蕉是", ["我叫小明。", "你好，小明!", "我叫什么名字?"]]"#,
        )
        .unwrap();
        assert_eq!(r.prompts[0], ReportPrompt::Text("香蕉是".into()));
        assert_eq!(r.prompts[1].turns().len(), 3);
        assert_eq!(r.prompts[1].key(), "我叫小明。\n你好，小明!\n我叫什么名字?");
        assert_eq!(r.prompts[0].key(), "香蕉是");
        assert!(r.prompts.iter().all(|p| p.problem().is_none()));
        let even = ReportPrompt::Conversation(vec!["a".into(), "b".into()]);
        assert!(even.problem().unwrap().contains("odd number"));
    }
}
