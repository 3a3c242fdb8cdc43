//! Judges: declared rules (`[judges.NAME]`, `spec::JudgeSpec`) that score an assistant's
//! answer to a prompt in [0, 1]. They stand for one person's taste, so a feedback stage can
//! rate answers as that person would and evaluation can use them as the gold measure beside
//! a reward model's learned proxy. Pure and deterministic: the same answer always gets the
//! same score.

use anyhow::{anyhow, Result};
use regex::Regex;

use crate::spec::validate::compile_pattern;
use crate::spec::{Experiment, JudgeSpec};

/// A judge ready to score: its spec's rules as criteria, patterns compiled once.
#[derive(Debug, Clone)]
pub struct Judge {
    name: String,
    criteria: Vec<Criterion>,
    applies_to: Option<Regex>,
    threshold: f64,
}

/// One rule of a judge; each holds (1) or not (0) for an answer, already trimmed.
#[derive(Debug, Clone)]
enum Criterion {
    Prefer(Vec<String>),
    Avoid(Vec<String>),
    Pattern(Regex),
    Length { min: usize, max: usize },
    EndsWith(Vec<String>),
}

impl Criterion {
    fn holds(&self, answer: &str) -> bool {
        match self {
            Criterion::Prefer(phrases) => phrases.iter().any(|p| answer.contains(p.as_str())),
            Criterion::Avoid(phrases) => !phrases.iter().any(|p| answer.contains(p.as_str())),
            Criterion::Pattern(regex) => regex.is_match(answer),
            Criterion::Length { min, max } => (*min..=*max).contains(&answer.chars().count()),
            Criterion::EndsWith(endings) => endings.iter().any(|e| answer.ends_with(e.as_str())),
        }
    }
}

impl Judge {
    /// The judge `name` declared by `spec`. Fails on what validation rejects too (no rule, a
    /// pattern that does not compile), for judges built in code rather than loaded.
    pub fn new(name: &str, spec: &JudgeSpec) -> Result<Judge> {
        let compile = |key: &str, pattern: &str| {
            compile_pattern(pattern).map_err(|message| {
                anyhow!("judge `{name}`: invalid `{key}` {pattern:?}: {message}")
            })
        };
        if !spec.has_rule() {
            return Err(anyhow!("judge `{name}` has no rule"));
        }
        let mut criteria = Vec::new();
        if !spec.prefer.is_empty() {
            criteria.push(Criterion::Prefer(spec.prefer.clone()));
        }
        if !spec.avoid.is_empty() {
            criteria.push(Criterion::Avoid(spec.avoid.clone()));
        }
        if let Some(pattern) = &spec.regex {
            criteria.push(Criterion::Pattern(compile("regex", pattern)?));
        }
        if spec.min_chars.is_some() || spec.max_chars.is_some() {
            let min = spec.min_chars.unwrap_or(0);
            let max = spec.max_chars.unwrap_or(usize::MAX);
            criteria.push(Criterion::Length { min, max });
        }
        if !spec.ends_with.is_empty() {
            criteria.push(Criterion::EndsWith(spec.ends_with.clone()));
        }
        let applies_to = match &spec.applies_to {
            Some(pattern) => Some(compile("applies_to", pattern)?),
            None => None,
        };
        Ok(Judge {
            name: name.to_string(),
            criteria,
            applies_to,
            threshold: spec.threshold,
        })
    }

    /// The judge `name` of an experiment's `[judges]`: the one way the code that runs a spec
    /// (a feedback stage, a reward stage's raters, the report, `gptlab eval --judge`) gets one.
    pub fn declared(spec: &Experiment, name: &str) -> Result<Judge> {
        let Some(judge) = spec.judges.get(name) else {
            let names: Vec<&str> = spec.judges.keys().map(String::as_str).collect();
            return Err(anyhow!(
                "no judge `{name}` (the spec's judges: {})",
                match names.is_empty() {
                    true => "none".to_string(),
                    false => names.join(", "),
                }
            ));
        };
        Judge::new(name, judge)
    }

    /// The phrases of its `prefer` rule, then those of its `avoid` rule.
    pub fn terms(&self) -> (Vec<&str>, Vec<&str>) {
        let (mut prefer, mut avoid) = (Vec::new(), Vec::new());
        for c in &self.criteria {
            match c {
                Criterion::Prefer(p) => prefer.extend(p.iter().map(String::as_str)),
                Criterion::Avoid(a) => avoid.extend(a.iter().map(String::as_str)),
                _ => {}
            }
        }
        (prefer, avoid)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The fraction of this judge's criteria the answer meets, or `None` when the judge has
    /// no opinion on `prompt` (its `applies_to` does not match it).
    pub fn score(&self, prompt: &str, answer: &str) -> Option<f64> {
        if let Some(applies_to) = &self.applies_to {
            if !applies_to.is_match(prompt) {
                return None;
            }
        }
        let answer = answer.trim();
        let met = self.criteria.iter().filter(|c| c.holds(answer)).count();
        Some(met as f64 / self.criteria.len() as f64)
    }

    /// Whether the judge likes the answer (👍): its score reaches the threshold.
    pub fn likes(&self, prompt: &str, answer: &str) -> Option<bool> {
        self.score(prompt, answer)
            .map(|score| score >= self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(spec: JudgeSpec) -> Judge {
        Judge::new("t", &spec).unwrap()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefer_needs_one_phrase_avoid_needs_none() {
        let prefer = judge(JudgeSpec {
            prefer: strings(&["香蕉", "苹果"]),
            ..JudgeSpec::default()
        });
        assert_eq!(prefer.score("水果", "我喜欢苹果。"), Some(1.0));
        assert_eq!(prefer.score("水果", "我喜欢西瓜。"), Some(0.0));
        let avoid = judge(JudgeSpec {
            avoid: strings(&["不知道", "抱歉"]),
            ..JudgeSpec::default()
        });
        assert_eq!(avoid.score("", "北京。"), Some(1.0));
        assert_eq!(avoid.score("", "抱歉，我不知道。"), Some(0.0));
        assert_eq!(avoid.score("", "我不知道"), Some(0.0));
    }

    #[test]
    fn several_criteria_give_their_mean() {
        // prefer holds, avoid fails (it mentions 过山车), ends_with holds: 2 of 3.
        let spec = JudgeSpec {
            prefer: strings(&["大风车"]),
            avoid: strings(&["过山车"]),
            ends_with: strings(&["。", "！"]),
            ..JudgeSpec::default()
        };
        let fun = judge(spec.clone());
        let answer = "  我想坐大风车，不想坐过山车！\n";
        let score = fun.score("我今天想去游乐园玩", answer).unwrap();
        assert!((score - 2.0 / 3.0).abs() < 1e-12, "{score}");
        assert_eq!(fun.likes("我今天想去游乐园玩", answer), Some(true));
        // prefer fails too: 1 of 3, below the default threshold of 0.5.
        assert_eq!(fun.likes("", "过山车！"), Some(false));
        let strict = judge(JudgeSpec {
            threshold: 0.7,
            ..spec
        });
        assert_eq!(strict.likes("", answer), Some(false));
        assert_eq!(strict.likes("", "大风车。"), Some(true));
    }

    #[test]
    fn applies_to_selects_prompts() {
        let capital = judge(JudgeSpec {
            prefer: strings(&["北京"]),
            applies_to: Some("首都".into()),
            ..JudgeSpec::default()
        });
        assert_eq!(capital.score("中国的首都是哪里?", "北京"), Some(1.0));
        assert_eq!(capital.score("中国的首都是哪里?", "上海"), Some(0.0));
        assert_eq!(capital.score("香蕉是", "北京"), None);
        assert_eq!(capital.likes("香蕉是", "北京"), None);
    }

    #[test]
    fn regex_searches_the_trimmed_answer() {
        let digits = judge(JudgeSpec {
            regex: Some(r"\d+".into()),
            ..JudgeSpec::default()
        });
        assert_eq!(digits.score("", "一共有 42 个"), Some(1.0));
        assert_eq!(digits.score("", "很多个"), Some(0.0));
        // Anchors see the answer without the whitespace sampling left around it.
        let sentence = judge(JudgeSpec {
            regex: Some("^[\\p{Han}，]+。$".into()),
            ..JudgeSpec::default()
        });
        assert_eq!(sentence.score("", " 床前明月光，疑是地上霜。\n"), Some(1.0));
        assert_eq!(sentence.score("", "床前明月光, moon。"), Some(0.0));
    }

    #[test]
    fn length_bounds_are_inclusive_and_count_characters() {
        let short = judge(JudgeSpec {
            min_chars: Some(2),
            max_chars: Some(4),
            ..JudgeSpec::default()
        });
        // 过山车 is 3 characters but 9 bytes.
        assert_eq!(short.score("", "过山车"), Some(1.0));
        assert_eq!(short.score("", "一"), Some(0.0));
        assert_eq!(short.score("", "一二"), Some(1.0));
        assert_eq!(short.score("", "一二三四"), Some(1.0));
        assert_eq!(short.score("", "一二三四五"), Some(0.0));
        // Surrounding whitespace, including the ideographic space, does not count.
        assert_eq!(short.score("", "\u{3000} 一二三四 \n"), Some(1.0));
        let at_most = judge(JudgeSpec {
            max_chars: Some(0),
            ..JudgeSpec::default()
        });
        assert_eq!(at_most.score("", "  "), Some(1.0));
        assert_eq!(at_most.score("", "a"), Some(0.0));
        let at_least = judge(JudgeSpec {
            min_chars: Some(3),
            ..JudgeSpec::default()
        });
        assert_eq!(at_least.score("", "大风车"), Some(1.0));
        assert_eq!(at_least.score("", "风车"), Some(0.0));
    }

    #[test]
    fn ends_with_reads_the_trimmed_answer() {
        let polite = judge(JudgeSpec {
            ends_with: strings(&["。", "吗？"]),
            ..JudgeSpec::default()
        });
        assert_eq!(polite.score("", "好的。\n"), Some(1.0));
        assert_eq!(polite.score("", "你好吗？"), Some(1.0));
        assert_eq!(polite.score("", "你好？"), Some(0.0));
    }

    #[test]
    fn judges_without_a_rule_or_with_a_bad_pattern_are_refused() {
        let error = Judge::new("empty", &JudgeSpec::default()).unwrap_err();
        assert!(error.to_string().contains("`empty` has no rule"), "{error}");
        let spec = JudgeSpec {
            prefer: strings(&["x"]),
            applies_to: Some("(首都".into()),
            ..JudgeSpec::default()
        };
        let error = Judge::new("capital", &spec).unwrap_err().to_string();
        assert!(error.contains("invalid `applies_to` \"(首都\""), "{error}");
        assert!(error.contains("unclosed group"), "{error}");
    }

    #[test]
    fn a_spec_gives_its_judges_by_name_and_names_them_when_one_is_missing() {
        let spec: Experiment = toml::from_str(
            "name = \"t\"\n[model]\npreset = \"nano\"\nblock_size = 8\n[tokenizer]\nkind = \"char\"\nvocab_size = 64\n[[stages]]\nname = \"s\"\nkind = \"pretrain\"\ndata = \"x\"\n[judges.short]\nmax_chars = 5\n[judges.fun]\nprefer = \"!\"\n",
        )
        .unwrap();
        let short = Judge::declared(&spec, "short").unwrap();
        assert_eq!((short.name(), short.threshold()), ("short", 0.5));
        assert_eq!(short.score("", "12345"), Some(1.0));
        let error = Judge::declared(&spec, "long").unwrap_err().to_string();
        assert_eq!(error, "no judge `long` (the spec's judges: fun, short)");
        let none = Experiment {
            judges: Default::default(),
            ..spec
        };
        let error = Judge::declared(&none, "short").unwrap_err().to_string();
        assert_eq!(error, "no judge `short` (the spec's judges: none)");
    }
}
