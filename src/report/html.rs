//! The per-run HTML page: one self-contained file (CSS and SVG charts inline, no script, no
//! network) that reads top to bottom: cost, the side-by-side answers, each stage's curves,
//! probes, and the resolved spec.

use super::bars::probability;
use super::chart::palette_hex;
use super::format;
use super::run::{final_metric, RunData};
use super::widgets::{escape, figure, stage_chip, RenderedChart};
use crate::results::meta::recorded;
use crate::results::{self, StageMeta};

/// All charts of a run report.
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    /// Stage name → its charts, in page order.
    pub stages: Vec<(String, Vec<RenderedChart>)>,
    pub probes: Vec<ProbeCharts>,
    /// Exact match by task of the evaluated stages (`[report] eval`).
    pub by_task: Option<RenderedChart>,
    pub gold: Option<RenderedChart>,
}

/// Probe prompt → (stage, bar chart of its top next tokens).
pub type ProbeCharts = (String, Vec<(String, RenderedChart)>);

pub const CSS: &str = r#"
:root { --ink:#1f2328; --muted:#656d76; --line:#d8dee4; --bg:#f6f8fa; --card:#fff; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "Source Han Sans SC",
  "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", Roboto, Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 60px; }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 20px; margin: 0 0 14px; display:flex; align-items:center; gap:10px; }
h3 { font-size: 16px; margin: 18px 0 10px; }
h2 small, h3 small { color: var(--muted); font-weight: 500; font-size: 14px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background:#eff2f5; padding:1px 5px; border-radius:4px; }
section, header.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 22px 24px; margin: 0 0 22px; }
.sub { color: var(--muted); margin-bottom: 16px; }
.badge { display:inline-block; padding: 1px 9px; border-radius: 999px; font-size: 13px; font-weight: 600; }
.badge.ok { background:#dafbe1; color:#116329; } .badge.warn { background:#fff1c2; color:#7d4e00; }
.stats { display:grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 10px; margin: 0 0 16px; }
.stat { border:1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.stat .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.stat .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.legend { display:flex; flex-wrap: wrap; gap: 8px 18px; }
.chip { display:inline-flex; align-items:center; gap:7px; font-weight:600; }
.chip small { color: var(--muted); font-weight: 500; }
.dot { width: 12px; height: 12px; border-radius: 50%; display:inline-block; background: var(--c); flex: none; }
.lede { color: var(--muted); margin: -6px 0 14px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; vertical-align: top; padding: 8px 10px; border-bottom: 1px solid var(--line); }
thead th { font-size: 13px; color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line); white-space: nowrap; }
td.num, th.num { text-align: right; white-space: nowrap; }
table.answers th.stage { border-top: 4px solid var(--c); color: var(--ink); font-size: 14px; }
table.answers td { white-space: pre-wrap; word-break: break-word; }
table.answers th.prompt { width: 16%; font-weight: 600; white-space: pre-wrap; }
table.answers .p { color: #8c959f; }
.turn small { color: var(--muted); font-weight: normal; margin-right: 4px; }
.turn.assistant { color: #57606a; font-weight: normal; }
table.probe { width: auto; min-width: 40%; margin-bottom: 12px; }
table.probe td.num { padding-left: 36px; }
.none { color: #8c959f; font-style: italic; }
.grid { display:grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 14px; }
figure { margin: 0; border:1px solid var(--line); border-radius: 8px; padding: 6px; background:#fff; }
svg.chart { width: 100%; height: auto; display:block; }
.finals { display:flex; flex-wrap: wrap; gap: 6px 8px; margin: 0 0 14px; }
.finals span { background: #f3f4f6; border-radius: 6px; padding: 2px 9px; font-size: 13px; }
.finals b { font-variant-numeric: tabular-nums; }
section.stage h2 { border-left: 5px solid var(--c); padding-left: 10px; }
details summary { cursor: pointer; font-weight: 600; }
summary h2 { display: inline-flex; margin: 0; }
/* A chart with its table beside it where both fit, else the table below it: a table whose
   columns need more room than the space beside the chart (gold's six) is never cut off. */
.beside { display:flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.beside > figure { flex: 3 1 440px; min-width: 0; max-width: 760px; }
.beside > .scroll { flex: 2 1 auto; min-width: 0; }
pre.spec { background: #f6f8fa; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; overflow-x: auto;
  font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, "Noto Sans Mono CJK SC", monospace; }
footer { color: var(--muted); font-size: 13px; text-align: center; }
"#;

/// A complete HTML document around `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"zh\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n{}</head>\n<body>\n<main>\n{body}\n\
         <footer>made by gptlab from the files of this folder</footer>\n</main>\n</body>\n</html>\n",
        escape(title),
        super::font_embed::font_style(&[title, body].concat())
    )
}

/// A prompt as the tables show it: the text, or a conversation's turns, each on a line of
/// its own and marked with who said it.
pub fn prompt_html(turns: &[String]) -> String {
    if let [only] = turns {
        return escape(only);
    }
    turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            format!(
                "<div class=\"turn {role}\"><small>{role}</small> {}</div>",
                escape(t)
            )
        })
        .collect()
}

pub fn stat(key: &str, value: &str) -> String {
    format!(
        "<div class=\"stat\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>",
        escape(key),
        escape(value)
    )
}

/// The whole run report page.
pub fn run_page(run: &RunData, figures: &RunFigures) -> String {
    let mut body = String::new();
    body.push_str(&header(run));
    body.push_str(&super::gold::section_html(run, figures.gold.as_ref()));
    body.push_str(&super::by_task::section_html(run, figures.by_task.as_ref()));
    body.push_str(&answers(run));
    body.push_str(&stage_table(run));
    body.push_str(&mixture_table(run));
    for (stage, charts) in &figures.stages {
        body.push_str(&stage_section(run, stage, charts));
    }
    body.push_str(&probes(run, figures));
    if let Some(spec) = &run.spec_text {
        body.push_str(&format!(
            "<section><details><summary>Resolved spec ({})</summary>\n<pre class=\"spec\">{}</pre></details></section>\n",
            results::SPEC_FILE,
            escape(spec)
        ));
    }
    page(&format!("{} · {}", run.name(), run.run_id()), &body)
}

fn header(run: &RunData) -> String {
    let mut h = String::from("<header class=\"card\">\n");
    h.push_str(&format!("<h1>{}</h1>\n", escape(&run.name())));
    let meta = run.meta.as_ref();
    let badge = match meta {
        Some(m) if m.complete => "<span class=\"badge ok\">complete</span>".to_string(),
        Some(_) => "<span class=\"badge warn\">incomplete</span>".to_string(),
        None => format!(
            "<span class=\"badge warn\">no {}</span>",
            results::META_FILE
        ),
    };
    let mut sub = vec![format!("run <code>{}</code>", escape(&run.run_id())), badge];
    if let Some(m) = meta {
        if let Some(s) = recorded(m.started.as_str()) {
            sub.push(format!("started {}", escape(s)));
        }
        if let Some(f) = &m.finished {
            sub.push(format!("finished {}", escape(f)));
        }
        if let Some(g) = recorded(m.git_rev.as_str()) {
            sub.push(format!("git <code>{}</code>", escape(g)));
        }
        if let Some(host) = recorded(m.host.as_str()) {
            sub.push(format!("on {}", escape(host)));
        }
    }
    h.push_str(&format!("<div class=\"sub\">{}</div>\n", sub.join(" · ")));

    let cost = RunCost::of(run);
    let mut stats = String::new();
    if let Some(p) = cost.params {
        stats.push_str(&stat("parameters", &format::count(p)));
    }
    if let Some(t) = cost.tokens {
        stats.push_str(&stat("tokens", &format::count(t)));
    }
    if let Some(w) = cost.wall_s {
        stats.push_str(&stat("wall time", &format::duration(w)));
    }
    if let Some(r) = cost.tok_per_sec {
        stats.push_str(&stat("tokens / s", &format::count(r)));
    }
    if let Some(d) = meta.and_then(|m| recorded(m.device.as_str())) {
        stats.push_str(&stat("device", d));
    }
    if let Some(p) = meta.and_then(|m| recorded(m.preset.as_str())) {
        stats.push_str(&stat("preset", p));
    }
    if !stats.is_empty() {
        h.push_str(&format!("<div class=\"stats\">{stats}</div>\n"));
    }
    if !run.stages.is_empty() {
        h.push_str("<div class=\"legend\">");
        for (i, s) in run.stages.iter().enumerate() {
            h.push_str(&stage_chip(&s.name, &s.kind, i));
        }
        h.push_str("</div>\n");
    }
    h.push_str("</header>\n");
    h
}

/// Totals over the stages of a run (what it cost to train).
pub struct RunCost {
    pub params: Option<f64>,
    pub tokens: Option<f64>,
    pub wall_s: Option<f64>,
    pub tok_per_sec: Option<f64>,
}

impl RunCost {
    pub fn of(run: &RunData) -> RunCost {
        let meta = run.meta.as_ref();
        let stages = meta.map(|m| m.stages.as_slice()).unwrap_or(&[]);
        let sum = |f: fn(&StageMeta) -> f64| -> Option<f64> {
            let values: Vec<f64> = stages.iter().filter_map(|s| recorded(f(s))).collect();
            (!values.is_empty()).then(|| values.iter().sum())
        };
        let tokens = sum(|s| s.tokens as f64);
        let wall_s = sum(|s| s.wall_s);
        let tok_per_sec = match (tokens, wall_s) {
            (Some(t), Some(w)) if w > 0.0 => Some(t / w),
            _ => None,
        };
        RunCost {
            params: meta.and_then(|m| recorded(m.params)).map(|p| p as f64),
            tokens,
            wall_s,
            tok_per_sec,
        }
    }
}

fn answers(run: &RunData) -> String {
    let prompts = run.prompts();
    let stages = run.compared_stages();
    if prompts.is_empty() || stages.is_empty() {
        return String::new();
    }
    let mut t = String::from("<section id=\"answers\">\n<h2>Same prompts, every stage</h2>\n");
    t.push_str("<p class=\"lede\">The base model continues the text; the assistant answers. The prompt is shown in grey before each completion.</p>\n");
    t.push_str("<div class=\"scroll\"><table class=\"answers\">\n<thead><tr><th>prompt</th>");
    for s in &stages {
        let kind = run.stage_kind(s);
        let kind = if kind.is_empty() {
            String::new()
        } else {
            format!(" <small>{}</small>", escape(kind))
        };
        t.push_str(&format!(
            "<th class=\"stage\" style=\"--c:{}\">{}{kind}</th>",
            palette_hex(run.stage_colour(s)),
            escape(s)
        ));
    }
    t.push_str("</tr></thead>\n<tbody>\n");
    for p in &prompts {
        let turns = run.turns(p);
        t.push_str(&format!(
            "<tr><th class=\"prompt\">{}</th>",
            prompt_html(&turns)
        ));
        // The cell repeats what was asked last (a conversation's last turn) before the answer.
        let asked = turns.last().map(String::as_str).unwrap_or(p);
        for s in &stages {
            match run.completion(s, p) {
                Some(c) => t.push_str(&format!(
                    "<td><span class=\"p\">{}</span>{}</td>",
                    escape(asked),
                    escape(c)
                )),
                None => t.push_str("<td class=\"none\">no sample</td>"),
            }
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</tbody></table></div>\n</section>\n");
    t
}

/// Per stage: what it cost and where its loss ended.
fn stage_table(run: &RunData) -> String {
    if run.stages.is_empty() {
        return String::new();
    }
    let mut t = String::from("<section id=\"stages\">\n<h2>Stages</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>stage</th><th class=\"num\">steps</th><th class=\"num\">tokens</th><th class=\"num\">wall time</th><th class=\"num\">tokens / s</th><th class=\"num\">final loss</th><th class=\"num\">final val/loss</th></tr></thead>\n<tbody>\n");
    let dash = || "—".to_string();
    for (i, s) in run.stages.iter().enumerate() {
        let cost = s.cost.as_ref();
        let steps = cost
            .and_then(|c| recorded(c.steps as f64))
            .map(format::count)
            .unwrap_or_else(dash);
        let tokens = cost
            .and_then(|c| recorded(c.tokens as f64))
            .map(format::count)
            .unwrap_or_else(dash);
        let wall = cost
            .and_then(|c| recorded(c.wall_s))
            .map(format::duration)
            .unwrap_or_else(dash);
        let rate = cost
            .and_then(|c| recorded(c.tok_per_sec))
            .map(format::count)
            .unwrap_or_else(dash);
        let loss = final_metric(run, &s.name, "loss")
            .map(format::number)
            .unwrap_or_else(dash);
        let val = final_metric(run, &s.name, "val/loss")
            .map(format::number)
            .unwrap_or_else(dash);
        t.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{steps}</td><td class=\"num\">{tokens}</td><td class=\"num\">{wall}</td><td class=\"num\">{rate}</td><td class=\"num\">{loss}</td><td class=\"num\">{val}</td></tr>\n",
            stage_chip(&s.name, &s.kind, i)
        ));
    }
    t.push_str("</tbody></table></div>\n</section>\n");
    t
}

/// Per source of each weighted-data stage: share, size, passes and held-out loss.
fn mixture_table(run: &RunData) -> String {
    let rows = super::mixture::rows(run);
    if rows.is_empty() {
        return String::new();
    }
    let mut t = String::from("<section id=\"mixture\">\n<h2>Data mixture</h2>\n<p class=\"lede\">Each source supplied its share of the sampled training data; passes is how many times the run read it over.</p>\n<div class=\"scroll\"><table>\n<thead><tr>");
    for (i, h) in super::mixture::HEADER.iter().enumerate() {
        let class = if i >= 2 { " class=\"num\"" } else { "" };
        t.push_str(&format!("<th{class}>{}</th>", escape(h)));
    }
    t.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        t.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let class = if i >= 2 { " class=\"num\"" } else { "" };
            t.push_str(&format!("<td{class}>{}</td>", escape(c)));
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</tbody></table></div>\n</section>\n");
    t
}

fn stage_section(run: &RunData, stage: &str, charts: &[RenderedChart]) -> String {
    let colour = run.stage_colour(stage);
    let mut s = format!(
        "<section class=\"stage\" id=\"stage-{}\" style=\"--c:{}\">\n",
        escape(stage),
        palette_hex(colour)
    );
    let kind = run.stage_kind(stage);
    let kind = if kind.is_empty() {
        String::new()
    } else {
        format!(" <small>{}</small>", escape(kind))
    };
    s.push_str(&format!("<h2>{}{kind}</h2>\n", escape(stage)));
    if let Some(finals) = run.summary.get(stage).filter(|m| !m.is_empty()) {
        s.push_str("<div class=\"finals\">");
        for (k, v) in finals {
            s.push_str(&format!(
                "<span>{} <b>{}</b></span>",
                escape(k),
                escape(&format::number(*v))
            ));
        }
        s.push_str("</div>\n");
    }
    if charts.is_empty() {
        s.push_str("<p class=\"none\">no metrics logged</p>\n");
    } else {
        s.push_str("<div class=\"grid\">\n");
        for c in charts {
            s.push_str(&figure(c));
        }
        s.push_str("</div>\n");
    }
    s.push_str("</section>\n");
    s
}

fn probes(run: &RunData, figures: &RunFigures) -> String {
    if run.probes.is_empty() {
        return String::new();
    }
    let mut s =
        String::from("<section id=\"probes\">\n<h2>Probes: the next-token distribution</h2>\n");
    let mut prompts: Vec<&str> = Vec::new();
    for p in &run.probes {
        if !prompts.contains(&p.prompt.as_str()) {
            prompts.push(&p.prompt);
        }
    }
    for prompt in prompts {
        s.push_str(&format!("<h3>{} <small>→ ?</small></h3>\n", escape(prompt)));
        let (rows, candidates) = run.probe_rows(prompt);
        if !candidates.is_empty() {
            s.push_str("<div class=\"scroll\"><table class=\"answers probe\"><thead><tr><th>candidate</th>");
            for r in &rows {
                s.push_str(&format!(
                    "<th class=\"stage num\" style=\"--c:{}\">{}</th>",
                    palette_hex(run.stage_colour(&r.stage)),
                    escape(&r.stage)
                ));
            }
            s.push_str("</tr></thead><tbody>\n");
            for c in &candidates {
                s.push_str(&format!("<tr><th class=\"prompt\">{}</th>", escape(c)));
                for r in &rows {
                    let p = r
                        .candidates
                        .iter()
                        .find(|x| x.text == *c)
                        .map(|x| probability(x.prob))
                        .unwrap_or_else(|| "—".into());
                    s.push_str(&format!("<td class=\"num\">{p}</td>"));
                }
                s.push_str("</tr>\n");
            }
            s.push_str("</tbody></table></div>\n");
        }
        if let Some((_, charts)) = figures.probes.iter().find(|(p, _)| p == prompt) {
            s.push_str("<div class=\"grid\">\n");
            for (_, c) in charts {
                s.push_str(&figure(c));
            }
            s.push_str("</div>\n");
        }
    }
    s.push_str("</section>\n");
    s
}
