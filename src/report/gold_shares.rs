//! What each judged stage says, beside how much the judge likes it (see `eval::diversity`):
//! the share of its answers containing each of the judge's `prefer` and `avoid` terms as a
//! small stacked bar, and how many different answers it gave with their entropy. A policy
//! that collapsed onto one liked answer shows as one colour and an entropy near 0.

use super::by_task::percent;
use super::format;
use super::run::RunData;
use super::widgets::{cell, escape, stage_chip, table};
use crate::results::{gold_share_key, GOLD_DISTINCT, GOLD_ENTROPY};

/// Greens for liked terms, reds and oranges for disliked ones (cycled when there are more).
const PREFER_COLOURS: [&str; 5] = ["#2ca02c", "#17becf", "#98df8a", "#1f77b4", "#9edae5"];
const AVOID_COLOURS: [&str; 4] = ["#d62728", "#ff7f0e", "#ff9896", "#ffbb78"];

/// The judge's terms (term, liked) and, per stage, its shares, distinct answers and entropy.
pub struct Said {
    terms: Vec<(String, bool)>,
    stages: Vec<(String, usize)>,
    shares: Vec<Vec<Option<f64>>>,
    distinct: Vec<Option<f64>>,
    entropy: Vec<Option<f64>>,
}

impl Said {
    /// `stages` (name, colour) that have a gold rate; `None` when none has the keys.
    pub fn of(run: &RunData, stages: &[(String, usize)]) -> Option<Said> {
        let get = |s: &str, k: &str| run.summary.get(s).and_then(|m| m.get(k)).copied();
        if !stages.iter().any(|(s, _)| get(s, GOLD_ENTROPY).is_some()) {
            return None;
        }
        let terms = judge_terms(run);
        let shares = stages
            .iter()
            .map(|(s, _)| {
                terms
                    .iter()
                    .map(|(t, _)| get(s, &gold_share_key(t)))
                    .collect()
            })
            .collect();
        Some(Said {
            shares,
            distinct: stages.iter().map(|(s, _)| get(s, GOLD_DISTINCT)).collect(),
            entropy: stages.iter().map(|(s, _)| get(s, GOLD_ENTROPY)).collect(),
            terms,
            stages: stages.to_vec(),
        })
    }

    fn colour(&self, term: usize) -> &'static str {
        let liked_before = self.terms[..term].iter().filter(|t| t.1).count();
        match self.terms[term].1 {
            true => PREFER_COLOURS[liked_before % PREFER_COLOURS.len()],
            false => AVOID_COLOURS[(term - liked_before) % AVOID_COLOURS.len()],
        }
    }

    /// A term's name with its sign: signs, not 👍/👎, since the page's font has no emoji,
    /// and a reader's may not either.
    fn term_label(&self, term: usize) -> String {
        let (t, liked) = &self.terms[term];
        format!("{} {t}", if *liked { "+" } else { "−" })
    }

    fn swatch(&self, term: usize) -> String {
        format!(
            "<span style=\"display:inline-block;width:10px;height:10px;margin-right:4px;background:{}\"></span>",
            self.colour(term)
        )
    }

    /// A stage's distinct answers and entropy.
    fn spread(&self, i: usize) -> [String; 2] {
        let number = |v: Option<f64>| v.map(format::number).unwrap_or_else(|| "—".into());
        [number(self.distinct[i]), number(self.entropy[i])]
    }

    /// One bar: a segment per term, as wide as its share (scaled to fit when an answer with
    /// two terms makes the shares add up to more than 100%).
    fn bar(&self, i: usize) -> String {
        let total: f64 = self.shares[i].iter().flatten().sum();
        let scale = 100.0 / total.max(1.0);
        let mut bar = String::from(
            "<div class=\"shares\" style=\"display:flex;width:180px;height:14px;background:#eee;border-radius:3px;overflow:hidden\">",
        );
        for (t, share) in self.shares[i].iter().enumerate() {
            let share = share.unwrap_or(0.0);
            bar.push_str(&format!(
                "<span title=\"{} {}\" style=\"width:{:.2}%;background:{}\"></span>",
                escape(&self.terms[t].0),
                percent(Some(share)),
                share * scale,
                self.colour(t)
            ));
        }
        bar.push_str("</div>");
        bar
    }

    /// Two tables that fit a page however many terms the judge has: per stage its bar and
    /// spread, then per term (a row each, the bars' legend) its share in each stage.
    pub fn html(&self) -> String {
        let mut t = String::from("<table><thead><tr><th>stage</th><th>answers containing each term</th><th>distinct answers</th><th>entropy (nats)</th></tr></thead><tbody>\n");
        for (i, (s, colour)) in self.stages.iter().enumerate() {
            t.push_str(&format!(
                "<tr><td>{}</td><td>{}</td>",
                stage_chip(s, "", *colour),
                self.bar(i)
            ));
            for c in self.spread(i) {
                t.push_str(&format!("<td class=\"num\">{}</td>", escape(&c)));
            }
            t.push_str("</tr>\n");
        }
        t.push_str("</tbody></table>");
        let mut terms = String::from("<table><thead><tr><th>term</th>");
        for (s, colour) in &self.stages {
            terms.push_str(&format!("<th>{}</th>", stage_chip(s, "", *colour)));
        }
        terms.push_str("</tr></thead><tbody>\n");
        for term in 0..self.terms.len() {
            terms.push_str(&format!(
                "<tr><td>{}{}</td>",
                self.swatch(term),
                escape(&self.term_label(term))
            ));
            for shares in &self.shares {
                let share = percent(shares[term]);
                terms.push_str(&format!("<td class=\"num\">{}</td>", escape(&share)));
            }
            terms.push_str("</tr>\n");
        }
        terms.push_str("</tbody></table>");
        format!(
            "<h3>What the answers say</h3>\n<p>{}</p>\n<div class=\"scroll\">{t}</div>\n<div class=\"scroll\">{terms}</div>\n",
            escape(EXPLAIN)
        )
    }

    pub fn markdown(&self) -> String {
        let header = ["stage", "distinct answers", "entropy (nats)"].map(cell);
        let rows: Vec<Vec<String>> = (self.stages.iter().enumerate())
            .map(|(i, (s, _))| std::iter::once(cell(s)).chain(self.spread(i)).collect())
            .collect();
        let stages = std::iter::once(cell("term")).chain(self.stages.iter().map(|(s, _)| cell(s)));
        let term_rows: Vec<Vec<String>> = (0..self.terms.len())
            .map(|term| {
                let shares = self.shares.iter().map(|shares| percent(shares[term]));
                std::iter::once(cell(&self.term_label(term)))
                    .chain(shares)
                    .collect()
            })
            .collect();
        format!(
            "### What the answers say\n\n{EXPLAIN}\n\n{}\n\n{}\n",
            table(&header, &rows),
            table(&stages.collect::<Vec<_>>(), &term_rows)
        )
    }
}

const EXPLAIN: &str = "The share of each stage's judged answers that contain each term the \
judge likes (+, greens) or dislikes (−, reds) (one bar per stage, and a row per term below), the \
number of different answers, and the entropy of their distribution over all held-out questions, \
pooled (0 when every answer is the same). A judge's \
`prefer` is met by any one liked term, so a stage that collapsed onto one answer scores as \
well as one that spreads: this table tells them apart.";

/// The `prefer` then `avoid` terms of the judge `[report] eval` used, from the run's spec.
fn judge_terms(run: &RunData) -> Vec<(String, bool)> {
    let Some(spec) = &run.spec else {
        return Vec::new();
    };
    let judge = spec
        .get("report")
        .and_then(|r| r.get("eval"))
        .and_then(|e| e.get("judge"))
        .and_then(|j| j.as_str());
    let Some(rules) = judge.and_then(|j| spec.get("judges")?.get(j)) else {
        return Vec::new();
    };
    let list = |key: &str| -> Vec<String> {
        let items = rules.get(key).and_then(|v| v.as_array());
        let words = items.into_iter().flatten().filter_map(|v| v.as_str());
        words.map(str::to_string).collect()
    };
    let liked = list("prefer").into_iter().map(|t| (t, true));
    liked
        .chain(list("avoid").into_iter().map(|t| (t, false)))
        .collect()
}
