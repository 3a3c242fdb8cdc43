//! `gptlab chat`: a multi-turn assistant in the terminal. After each answer the user may rate
//! it with `+` or `-`; each rating is appended to a feedback file in TRL's unpaired-preference
//! format, which a reward stage reads. Works from a pipe (one message or rating per line).

use crate::data::chat::{fit_history, Message, Role};
use crate::data::ratings::{Provenance, RatingWriter, SamplingNote};
use crate::infer::{Ask, Prompt};
use crate::model::sample::SampleOptions;
use crate::model::{Backend, LanguageModel};
use crate::tokenizer::Tokenizer;
use anyhow::{Context, Result};
use std::io::{BufRead, Write};
use std::path::Path;

pub struct ChatOptions<'a> {
    pub sampling: SampleOptions,
    pub seed: u64,
    pub feedback: &'a Path,
    /// Recorded in each feedback line.
    pub model_name: &'a str,
    /// Print prompts and hints (a terminal); off when piped.
    pub interactive: bool,
}

/// Appends a thumbs up/down on the last answer to the feedback file; false when there was
/// nothing to rate.
fn rate(
    opts: &ChatOptions,
    unrated: Option<(Vec<Message>, String)>,
    label: bool,
    out: &mut impl Write,
) -> Result<bool> {
    let Some((prompt, completion)) = unrated else {
        if opts.interactive {
            writeln!(out, "(nothing to rate yet)")?;
        }
        return Ok(false);
    };
    let about = Provenance {
        stage: opts.model_name.to_string(),
        ts: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        rater: None,
        sampling: SamplingNote {
            temperature: Some(opts.sampling.temperature),
            top_k: Some(opts.sampling.top_k),
            top_p: Some(opts.sampling.top_p),
            max_tokens: Some(opts.sampling.max_new_tokens),
            seed: Some(opts.seed),
        },
    };
    // Only 👍/👎 come from chat, so the rankings file is never written.
    let writer = RatingWriter::new(opts.feedback, Path::new(""));
    writer.rate(&prompt, &completion, label, &about)?;
    if opts.interactive {
        writeln!(out, "(saved to {})", opts.feedback.display())?;
    }
    Ok(true)
}

pub fn run_chat<D: Backend>(
    model: &dyn LanguageModel<D>,
    tok: &Tokenizer,
    opts: &ChatOptions,
    input: impl BufRead,
    mut out: impl Write,
) -> Result<usize> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut history: Vec<Message> = Vec::new();
    // The conversation before the last answer, and the answer, until it is rated.
    let mut unrated: Option<(Vec<Message>, String)> = None;
    let mut ratings = 0;
    if opts.interactive {
        writeln!(
            out,
            "Chat with {} — rate an answer with + or -, /reset to start over, /quit to leave.",
            opts.model_name
        )?;
    }
    let mut lines = input.lines();
    loop {
        if opts.interactive {
            write!(out, "you> ")?;
            out.flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("reading input")?;
        let line = line.trim();
        match line {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                history.clear();
                unrated = None;
                continue;
            }
            "+" | "-" => {
                ratings += rate(opts, unrated.take(), line == "+", &mut out)? as usize;
                continue;
            }
            _ => {}
        }
        history.push(Message {
            role: Role::User,
            content: line.to_string(),
        });
        fit_history(
            tok,
            &mut history,
            model.config().n_ctx,
            opts.sampling.max_new_tokens,
        );
        let reply =
            Ask::new(model, tok).one(&Prompt::Chat(history.clone()), &opts.sampling, &mut rng);
        writeln!(
            out,
            "{}{}",
            if opts.interactive { "assistant> " } else { "" },
            reply.trim()
        )?;
        unrated = Some((history.clone(), reply.clone()));
        history.push(Message {
            role: Role::Assistant,
            content: reply,
        });
    }
    Ok(ratings)
}
