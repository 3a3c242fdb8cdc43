//! The gold measures of `[report] eval`'s judge (see `eval::gold`), read from summary.json:
//! each stage's gold rate and win rate against the baseline as grouped bars (the exact-match
//! chart's bars), and a table that puts them beside the KL to the baseline and the reward
//! model's proxy score. Gold rising with the proxy is progress; the proxy rising alone is the
//! reward model being gamed.

use super::by_task::{percent, ByTask};
use super::format;
use super::gold_shares::Said;
use super::run::RunData;
use super::widgets::{cell, escape, figure, render_chart, stage_chip, table, RenderedChart};
use crate::results::{
    gold_best_of_key, gold_win_key, kl_key, proxy_win_key, BEST_OF, EVAL_REWARD, GOLD_RATE,
};
use anyhow::Result;
use std::path::Path;

/// The stages with a gold rate, their numbers, and the baseline they were compared with.
struct Gold {
    bars: ByTask,
    baseline: Option<String>,
    /// Per stage: win, low, high, KL, proxy reward, proxy win rate.
    rows: Vec<[Option<f64>; 6]>,
    /// The baseline's best-of-n by the reward model: (n, gold rate).
    best_of: Vec<(usize, f64)>,
}

impl Gold {
    fn of(run: &RunData) -> Option<Gold> {
        let mut stages = Vec::new();
        let mut baseline = None;
        for s in &run.stages {
            let Some(m) = run
                .summary
                .get(&s.name)
                .filter(|m| m.contains_key(GOLD_RATE))
            else {
                continue;
            };
            stages.push((s.name.clone(), run.stage_colour(&s.name)));
            let win = m
                .keys()
                .find_map(|k| k.strip_prefix("gold/win_vs/").filter(|b| !b.contains('/')));
            baseline = baseline.or(win.map(str::to_string));
        }
        if stages.is_empty() {
            return None;
        }
        let get = |stage: &str, key: &str| run.summary.get(stage).and_then(|m| m.get(key)).copied();
        let rates: Vec<Option<f64>> = stages.iter().map(|(s, _)| get(s, GOLD_RATE)).collect();
        let rows = stages
            .iter()
            .map(|(s, _)| {
                let b = baseline.as_deref().unwrap_or_default();
                let win = gold_win_key(b);
                [
                    get(s, &win),
                    get(s, &format!("{win}/low")),
                    get(s, &format!("{win}/high")),
                    get(s, &kl_key(b)),
                    get(s, EVAL_REWARD),
                    get(s, &proxy_win_key(b)),
                ]
            })
            .collect::<Vec<_>>();
        let mut tasks = vec!["gold rate".to_string()];
        let mut values = vec![rates.clone()];
        if let Some(b) = &baseline {
            tasks.push(format!("win rate vs {b}"));
            values.push(rows.iter().map(|r| r[0]).collect());
            // The reward model's verdict on the same answers, next to the judge's.
            if rows.iter().any(|r| r[5].is_some()) {
                tasks.push(format!("proxy win rate vs {b}"));
                values.push(rows.iter().map(|r| r[5]).collect());
            }
        }
        let bars = ByTask {
            tasks,
            stages,
            values,
            overall: rates,
            title: "held-out answers: gold (the judge) and proxy (reward model)",
            measure: "rate",
        };
        let best_of = BEST_OF
            .iter()
            .filter_map(|&n| Some((n, get(baseline.as_deref()?, &gold_best_of_key(n))?)))
            .collect();
        Some(Gold {
            bars,
            baseline,
            rows,
            best_of,
        })
    }

    fn header(&self) -> Vec<String> {
        let b = self.baseline.as_deref().unwrap_or("baseline");
        vec![
            "stage".into(),
            "gold rate".into(),
            format!("win rate vs {b} (95% interval)"),
            format!("KL to {b} (nats/answer)"),
            "proxy reward".into(),
            format!("proxy win rate vs {b}"),
        ]
    }

    /// `best-of-4` and its gold rate, for each n.
    fn best_of_rows(&self) -> Vec<(String, f64)> {
        let label = |n| format!("best-of-{n}");
        self.best_of
            .iter()
            .map(|&(n, rate)| (label(n), rate))
            .collect()
    }

    /// The numbers of stage `i` as table cells.
    fn cells(&self, i: usize) -> Vec<String> {
        let [win, low, high, kl, proxy, proxy_win] = self.rows[i];
        let win = match (win, low, high) {
            (Some(w), Some(l), Some(h)) => format!(
                "{} ({}–{})",
                percent(Some(w)),
                percent(Some(l)),
                percent(Some(h))
            ),
            _ => "—".into(),
        };
        let number = |v: Option<f64>| v.map(format::number).unwrap_or_else(|| "—".into());
        vec![
            percent(self.bars.overall[i]),
            win,
            number(kl),
            number(proxy),
            match proxy_win {
                Some(_) => percent(proxy_win),
                None => "—".into(),
            },
        ]
    }
}

/// Writes `gold.svg|png` into the run folder when the run was judged.
pub fn write_gold_chart(run: &RunData, run_dir: &Path) -> Result<Option<RenderedChart>> {
    let Some(gold) = Gold::of(run) else {
        return Ok(None);
    };
    render_chart(&gold.bars, run_dir, "", "gold").map(Some)
}

const INTRO: &str = "The judge stands for the rater; no stage optimised it. Answers are sampled \
(temperature 1) for held-out questions. Gold rising with the proxy reward is progress; the proxy \
rising alone is the reward model being gamed. A best-of-n row samples n answers from the \
baseline and keeps the one the reward model likes best: what the reward model achieves without \
any training.";

/// The section of report.html: the chart with the table beside it, or below it where the
/// six columns need the width (`.beside` in html.rs).
pub fn section_html(run: &RunData, chart: Option<&RenderedChart>) -> String {
    let (Some(gold), Some(chart)) = (Gold::of(run), chart) else {
        return String::new();
    };
    let mut t = String::from("<table><thead><tr>");
    for h in gold.header() {
        t.push_str(&format!("<th>{}</th>", escape(&h)));
    }
    t.push_str("</tr></thead><tbody>\n");
    for (i, (s, colour)) in gold.bars.stages.iter().enumerate() {
        t.push_str(&format!("<tr><td>{}</td>", stage_chip(s, "", *colour)));
        for c in gold.cells(i) {
            t.push_str(&format!("<td class=\"num\">{}</td>", escape(&c)));
        }
        t.push_str("</tr>\n");
    }
    // A best-of-n row has a gold rate only: one empty cell spans the other columns.
    let rest = gold.header().len() - 2;
    for (label, rate) in gold.best_of_rows() {
        t.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td colspan=\"{rest}\"></td></tr>\n",
            escape(&label),
            percent(Some(rate))
        ));
    }
    t.push_str("</tbody></table>");
    let said = Said::of(run, &gold.bars.stages)
        .map(|s| s.html())
        .unwrap_or_default();
    format!(
        "<section id=\"gold\">\n<h2>Gold: what the rater thinks</h2>\n<p>{}</p>\n<div class=\"beside\">{}<div class=\"scroll\">{t}</div></div>\n{said}</section>\n",
        escape(INTRO),
        figure(chart)
    )
}

/// The same for report.md.
pub fn section_markdown(run: &RunData, chart: Option<&RenderedChart>) -> String {
    let (Some(gold), Some(chart)) = (Gold::of(run), chart) else {
        return String::new();
    };
    let rows: Vec<Vec<String>> = gold
        .bars
        .stages
        .iter()
        .enumerate()
        .map(|(i, (s, _))| std::iter::once(cell(s)).chain(gold.cells(i)).collect())
        .chain(gold.best_of_rows().into_iter().map(|(label, rate)| {
            let rest = vec!["—".to_string(); gold.header().len() - 2];
            [cell(&label), percent(Some(rate))]
                .into_iter()
                .chain(rest)
                .collect()
        }))
        .collect();
    let said = Said::of(run, &gold.bars.stages)
        .map(|s| format!("\n{}", s.markdown()))
        .unwrap_or_default();
    format!(
        "## Gold: what the rater thinks\n\n{INTRO}\n\n![{}]({})\n\n{}{said}\n",
        cell(&chart.title),
        chart.png,
        table(&gold.header(), &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    /// The fixture run, judged by `mine` (likes 唱歌 and 做饭, dislikes 挖洞): the assistant
    /// spreads over both liked habits, rlhf collapsed onto 唱歌.
    fn judged_run(dir: &Path) -> RunData {
        fixture::write_run(dir, "aaa", 1e-3, "nano");
        let spec = dir.join(crate::results::SPEC_FILE);
        let text = std::fs::read_to_string(&spec).unwrap().replace(
            "[report]\n",
            "[judges.mine]\nprefer = [\"唱歌\", \"做饭\"]\navoid = [\"挖洞\"]\n\n[report]\neval = { judge = \"mine\", held_out = \"assistant\" }\n",
        );
        std::fs::write(&spec, text).unwrap();
        let summary = serde_json::json!({
            "assistant": {"gold/rate": 0.3, "gold/distinct": 40.0, "gold/entropy": 3.2,
                "gold/share/唱歌": 0.25, "gold/share/做饭": 0.2, "gold/share/挖洞": 0.3,
                "gold/best_of_1": 0.3, "gold/best_of_4": 0.6},
            "rlhf": {"gold/rate": 0.97, "gold/distinct": 2.0, "gold/entropy": 0.1,
                "gold/share/唱歌": 0.92, "gold/share/做饭": 0.02, "gold/share/挖洞": 0.0,
                "gold/win_vs/assistant": 0.9, "gold/win_vs/assistant/low": 0.85,
                "gold/win_vs/assistant/high": 0.95, "kl_vs/assistant": 2.5},
        });
        std::fs::write(dir.join(crate::results::SUMMARY_FILE), summary.to_string()).unwrap();
        RunData::load(dir).unwrap()
    }

    #[test]
    fn every_markdown_row_has_a_cell_per_column() {
        let dir = tempfile::tempdir().unwrap();
        let run = judged_run(dir.path());
        let chart = write_gold_chart(&run, dir.path()).unwrap().unwrap();
        let md = section_markdown(&run, Some(&chart));
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert!(rows.iter().any(|r| r.contains("best-of-4")), "{md}");
        for table in md.split("\n\n").filter(|t| t.starts_with('|')) {
            let cells = |row: &str| row.trim().trim_matches('|').split('|').count();
            let mut rows = table.lines();
            let columns = cells(rows.next().unwrap());
            for row in rows {
                assert_eq!(cells(row), columns, "{row}\n{table}");
            }
        }
    }

    #[test]
    fn the_gold_section_shows_each_stages_term_shares_and_entropy() {
        let dir = tempfile::tempdir().unwrap();
        let run = judged_run(dir.path());
        let chart = write_gold_chart(&run, dir.path()).unwrap().unwrap();
        let html = section_html(&run, Some(&chart));
        assert!(html.contains("What the answers say"), "{html}");
        // rlhf's bar: 唱歌 92%, 做饭 2%, 挖洞 0%, in the judge's order, liked terms green.
        let bars: Vec<&str> = html.split("class=\"shares\"").skip(1).collect();
        assert_eq!(bars.len(), 2, "{html}");
        let widths = |bar: &str| -> Vec<f64> {
            bar.split("width:")
                .skip(2)
                .map(|w| w.split('%').next().unwrap().parse().unwrap())
                .take(3)
                .collect()
        };
        assert_eq!(widths(bars[1]), [92.0, 2.0, 0.0], "{}", bars[1]);
        assert!(bars[1].contains("title=\"唱歌 92%\" style=\"width:92.00%;background:#2ca02c\""));
        assert!(bars[1].contains("title=\"挖洞 0%\" style=\"width:0.00%;background:#d62728\""));
        let md = section_markdown(&run, Some(&chart));
        assert!(md.contains("| rlhf | 2 | 0.1 |"), "{md}");
        let row = md.lines().find(|l| l.starts_with("| + 唱歌 |")).unwrap();
        assert!(row.ends_with("| 92% |"), "{md}");
        // The terms are rows, not columns: the section fits a page whatever the judge lists.
        let said = html.split("What the answers say").nth(1).unwrap();
        assert_eq!(said.matches("<table>").count(), 2, "{html}");
        assert!(html.contains("<td><span style=\"display:inline-block;width:10px;height:10px;margin-right:4px;background:#2ca02c\"></span>+ 唱歌</td>"), "{html}");
        // The y axis holds the judge's rates and the reward model's: it is not "judge".
        let svg = std::fs::read_to_string(dir.path().join("gold.svg")).unwrap();
        let texts: Vec<&str> = (svg.split("</text>"))
            .filter_map(|t| Some(t.rsplit('>').next()?.trim()))
            .collect();
        assert!(
            texts.contains(&"rate") && !texts.contains(&"judge"),
            "{texts:?}"
        );
    }
}
