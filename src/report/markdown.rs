//! The Markdown twin of the run page: same sections, charts linked as PNG files.

use super::bars::probability;
use super::format;
use super::html::{RunCost, RunFigures};
use super::run::{final_metric, RunData};
use super::widgets::{cell, table};
use crate::results::meta::recorded;

/// A fenced code block whose fence is longer than any backtick run inside.
pub fn code_block(lang: &str, text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}\n\n", text.trim_end())
}

pub fn run_markdown(run: &RunData, figures: &RunFigures) -> String {
    let mut md = header(run);
    md.push_str(&super::gold::section_markdown(run, figures.gold.as_ref()));
    md.push_str(&super::by_task::section_markdown(
        run,
        figures.by_task.as_ref(),
    ));
    md.push_str(&answers(run));
    md.push_str(&stage_table(run));
    md.push_str(&mixture_table(run));
    md.push_str(&stage_sections(run, figures));
    md.push_str(&probes(run, figures));
    if let Some(spec) = &run.spec_text {
        md.push_str("## Resolved spec\n\n");
        md.push_str(&code_block("toml", spec));
    }
    md
}

/// The title, status and what the run cost.
fn header(run: &RunData) -> String {
    let mut md = format!("# {}\n\n", run.name());
    let status = match &run.meta {
        Some(m) if m.complete => "complete".to_string(),
        Some(_) => "incomplete".to_string(),
        None => format!("no {}", crate::results::META_FILE),
    };
    md.push_str(&format!("Run `{}` · **{status}**", run.run_id()));
    if let Some(s) = run.meta.as_ref().and_then(|m| recorded(m.started.as_str())) {
        md.push_str(&format!(" · started {s}"));
    }
    md.push_str("\n\n");

    let cost = RunCost::of(run);
    let meta = run.meta.as_ref();
    let mut facts = Vec::new();
    if let Some(p) = cost.params {
        facts.push(format!("parameters **{}**", format::count(p)));
    }
    if let Some(t) = cost.tokens {
        facts.push(format!("tokens **{}**", format::count(t)));
    }
    if let Some(w) = cost.wall_s {
        facts.push(format!("wall time **{}**", format::duration(w)));
    }
    if let Some(r) = cost.tok_per_sec {
        facts.push(format!("**{}** tokens/s", format::count(r)));
    }
    if let Some(d) = meta.and_then(|m| recorded(m.device.as_str())) {
        facts.push(format!("device **{d}**"));
    }
    if let Some(p) = meta.and_then(|m| recorded(m.preset.as_str())) {
        facts.push(format!("preset **{p}**"));
    }
    if !facts.is_empty() {
        md.push_str(&format!("{}\n\n", facts.join(" · ")));
    }
    md
}

/// The same prompts answered by every compared stage.
fn answers(run: &RunData) -> String {
    let mut md = String::new();
    let prompts = run.prompts();
    let stages = run.compared_stages();
    if !prompts.is_empty() && !stages.is_empty() {
        md.push_str("## Same prompts, every stage\n\nThe base model continues the text; the assistant answers.\n\n");
        let mut header = vec!["prompt".to_string()];
        header.extend(stages.iter().map(|s| cell(s)));
        let rows: Vec<Vec<String>> = prompts
            .iter()
            .map(|p| {
                // A conversation's turns in one cell: `user: …<br>assistant: …<br>user: …`.
                let turns = run.turns(p);
                let shown = if turns.len() > 1 {
                    turns
                        .iter()
                        .enumerate()
                        .map(|(i, t)| {
                            let role = if i % 2 == 0 { "user" } else { "assistant" };
                            format!("{role}: {}", cell(t))
                        })
                        .collect::<Vec<_>>()
                        .join("<br>")
                } else {
                    cell(p)
                };
                let mut row = vec![format!("**{shown}**")];
                row.extend(
                    stages
                        .iter()
                        .map(|s| run.completion(s, p).map(cell).unwrap_or_else(|| "—".into())),
                );
                row
            })
            .collect();
        md.push_str(&table(&header, &rows));
    }
    md
}

/// Per stage: what it cost and where its loss ended.
fn stage_table(run: &RunData) -> String {
    let mut md = String::new();
    if !run.stages.is_empty() {
        md.push_str("## Stages\n\n");
        let header: Vec<String> = [
            "stage",
            "kind",
            "steps",
            "tokens",
            "wall time",
            "tokens/s",
            "final loss",
            "final val/loss",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let dash = || "—".to_string();
        let rows: Vec<Vec<String>> = run
            .stages
            .iter()
            .map(|s| {
                let c = s.cost.as_ref();
                vec![
                    cell(&s.name),
                    cell(&s.kind),
                    c.and_then(|c| recorded(c.steps as f64))
                        .map(format::count)
                        .unwrap_or_else(dash),
                    c.and_then(|c| recorded(c.tokens as f64))
                        .map(format::count)
                        .unwrap_or_else(dash),
                    c.and_then(|c| recorded(c.wall_s))
                        .map(format::duration)
                        .unwrap_or_else(dash),
                    c.and_then(|c| recorded(c.tok_per_sec))
                        .map(format::count)
                        .unwrap_or_else(dash),
                    final_metric(run, &s.name, "loss")
                        .map(format::number)
                        .unwrap_or_else(dash),
                    final_metric(run, &s.name, "val/loss")
                        .map(format::number)
                        .unwrap_or_else(dash),
                ]
            })
            .collect();
        md.push_str(&table(&header, &rows));
    }
    md
}

/// Per source of each weighted-data stage: share, size, passes and held-out loss.
fn mixture_table(run: &RunData) -> String {
    let rows: Vec<Vec<String>> = super::mixture::rows(run)
        .iter()
        .map(|r| r.iter().map(|c| cell(c)).collect())
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let header: Vec<String> = super::mixture::HEADER
        .iter()
        .map(|h| h.to_string())
        .collect();
    format!("## Data mixture\n\n{}", table(&header, &rows))
}

/// A section per stage: its final metrics and charts.
fn stage_sections(run: &RunData, figures: &RunFigures) -> String {
    let mut md = String::new();
    for (stage, charts) in &figures.stages {
        let kind = run.stage_kind(stage);
        md.push_str(&format!(
            "## {stage}{}\n\n",
            if kind.is_empty() {
                String::new()
            } else {
                format!(" ({kind})")
            }
        ));
        if let Some(finals) = run.summary.get(stage).filter(|m| !m.is_empty()) {
            let list: Vec<String> = finals
                .iter()
                .map(|(k, v)| format!("`{k}` {}", format::number(*v)))
                .collect();
            md.push_str(&format!("Final: {}\n\n", list.join(" · ")));
        }
        for c in charts {
            md.push_str(&format!("![{}]({})\n\n", cell(&c.title), c.png));
        }
    }
    md
}

/// The probes: candidate probabilities per stage, and the next-token charts.
fn probes(run: &RunData, figures: &RunFigures) -> String {
    let mut md = String::new();
    if !run.probes.is_empty() {
        md.push_str("## Probes: the next-token distribution\n\n");
        for (prompt, charts) in &figures.probes {
            md.push_str(&format!("### {} → ?\n\n", cell(prompt)));
            let (rows, candidates) = run.probe_rows(prompt);
            if !candidates.is_empty() {
                let mut header = vec!["candidate".to_string()];
                header.extend(rows.iter().map(|r| cell(&r.stage)));
                let body: Vec<Vec<String>> = candidates
                    .iter()
                    .map(|c| {
                        let mut row = vec![cell(c)];
                        row.extend(rows.iter().map(|r| {
                            r.candidates
                                .iter()
                                .find(|x| x.text == *c)
                                .map(|x| probability(x.prob))
                                .unwrap_or_else(|| "—".into())
                        }));
                        row
                    })
                    .collect();
                md.push_str(&table(&header, &body));
            }
            for (_, c) in charts {
                md.push_str(&format!("![{}]({})\n\n", cell(&c.title), c.png));
            }
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_fence_outgrows_backticks_inside() {
        let block = code_block("toml", "x = \"```\"");
        assert!(block.starts_with("````toml\n"), "{block}");
    }
}
