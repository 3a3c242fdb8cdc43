//! The building blocks the run page, its Markdown twin, the comparison and their sections
//! share: a chart written for a page, HTML escaping, figures and stage chips, Markdown cells
//! and tables. Below every page and section, so they all import from here and never from
//! each other.

use super::chart::{palette_hex, write_chart, Chart};
use anyhow::{Context, Result};
use std::path::Path;

/// A chart already written to disk, ready to be placed on a page.
#[derive(Debug, Clone)]
pub struct RenderedChart {
    pub title: String,
    /// The SVG document, inlined into the HTML page.
    pub svg: String,
    /// The PNG's path relative to the page, linked from the Markdown twin.
    pub png: String,
}

/// Writes `base/folder/stem.svg|png` and returns the chart for the pages.
pub fn render_chart<C: Chart>(
    spec: &C,
    base: &Path,
    folder: &str,
    stem: &str,
) -> Result<RenderedChart> {
    let (svg_path, _) = write_chart(spec, &base.join(folder), stem)?;
    let svg = std::fs::read_to_string(&svg_path)
        .with_context(|| format!("cannot read back {}", svg_path.display()))?;
    let title = spec.title().to_string();
    let png = if folder.is_empty() {
        format!("{stem}.png")
    } else {
        format!("{folder}/{stem}.png")
    };
    Ok(RenderedChart { title, svg, png })
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG document made fit for inlining: no fixed size (CSS scales it), labelled for readers.
pub fn inline_svg(svg: &str, title: &str) -> String {
    let svg = svg.trim_start();
    let svg = svg.strip_prefix("<?xml").map_or(svg, |rest| {
        rest.split_once("?>").map_or(rest, |(_, r)| r.trim_start())
    });
    let Some(end) = svg.find('>') else {
        return String::new();
    };
    let (open, rest) = svg.split_at(end);
    let open: String = open
        .split(' ')
        .filter(|attr| !attr.starts_with("width=") && !attr.starts_with("height="))
        .collect::<Vec<_>>()
        .join(" ");
    let label = escape(title);
    format!("{open} class=\"chart\" role=\"img\" aria-label=\"{label}\"{rest}")
}

/// A figure holding an inline chart.
pub fn figure(chart: &RenderedChart) -> String {
    format!(
        "<figure>{}</figure>\n",
        inline_svg(&chart.svg, &chart.title)
    )
}

/// A stage name with its colour dot and kind.
pub fn stage_chip(name: &str, kind: &str, colour: usize) -> String {
    let kind = if kind.is_empty() {
        String::new()
    } else {
        format!(" <small>{}</small>", escape(kind))
    };
    format!(
        "<span class=\"chip\" style=\"--c:{}\"><span class=\"dot\"></span>{}{kind}</span>",
        palette_hex(colour),
        escape(name)
    )
}

/// Text for a Markdown table cell: one line, no column breaks, no raw HTML.
pub fn cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace('\n', "<br>")
}

/// A Markdown table.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut t = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for r in rows {
        t.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    t.push('\n');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("香蕉是"), "香蕉是");
    }

    #[test]
    fn inline_svg_drops_fixed_size_and_keeps_view_box() {
        let svg = "<svg width=\"800\" height=\"440\" viewBox=\"0 0 800 440\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect/></svg>";
        let out = inline_svg(svg, "a <b>");
        assert!(out.starts_with("<svg viewBox=\"0 0 800 440\""), "{out}");
        assert!(out.contains("aria-label=\"a &lt;b&gt;\"") && out.ends_with("<rect/></svg>"));
        assert!(!out.contains("width=\"800\""));
    }

    #[test]
    fn cells_stay_on_one_line_and_in_their_column() {
        assert_eq!(cell("a|b\nc <d>"), "a\\|b<br>c &lt;d&gt;");
    }
}
