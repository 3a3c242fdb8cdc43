//! Self-contained Chinese: each HTML page carries, as a `data:` font, the glyphs of the
//! built-in font (`builtin_font.rs`) for the non-ASCII characters it uses, so a reader without
//! a CJK font installed sees Chinese, not boxes. The built-in font, not whatever the writer's
//! machine has, so a page is the same wherever it was written; only a `$GPTLAB_FONT` that
//! draws Chinese takes its place, as the user's choice. ASCII is left to the reader's own fonts
//! (they cover it, and it keeps the page small).

use super::builtin_font::BUILTIN_FONT;
use super::font::chart_font;
use allsorts::binary::read::ReadScope;
use allsorts::font_data::FontData;
use allsorts::subset::{subset, CmapTarget, SubsetProfile};
use anyhow::{anyhow, Result};
use base64::Engine;
use std::collections::BTreeSet;

/// The family name the embedded subset is declared under.
pub const EMBEDDED_FAMILY: &str = "gptlab-embedded";
/// The `id` of the `<style>` element holding it (tests remove it to compare).
pub const STYLE_ID: &str = "embedded-font";

/// A `<style>` element declaring the subset and putting it before the generic families, or
/// nothing when the text needs no glyph beyond ASCII.
pub fn font_style(text: &str) -> String {
    let chars: BTreeSet<char> = text.chars().filter(|c| !c.is_ascii()).collect();
    if chars.is_empty() {
        return String::new();
    }
    let chosen = chart_font().filter(|f| f.from_env && f.has_cjk);
    if let Some(font) = chosen {
        match subset_font(font.bytes, &chars) {
            Ok(bytes) => return style_for(&bytes),
            Err(e) => eprintln!(
                "warning: cannot embed {} in the page ({e:#}); embedding the built-in font",
                font.describe()
            ),
        }
    }
    match subset_font(BUILTIN_FONT, &chars) {
        Ok(bytes) => style_for(&bytes),
        Err(e) => {
            eprintln!("warning: the page's Chinese is not embedded: {e:#}");
            String::new()
        }
    }
}

/// The first face of the font in `bytes` (a .ttc collection holds several) cut down to the
/// glyphs of `chars` it has, as a standalone TrueType/OpenType font with a Unicode cmap.
pub fn subset_font(bytes: &[u8], chars: &BTreeSet<char>) -> Result<Vec<u8>> {
    let face = ab_glyph::FontRef::try_from_slice_and_index(bytes, 0)
        .map_err(|e| anyhow!("not a font: {e}"))?;
    let mut glyphs: Vec<u16> = chars
        .iter()
        .map(|c| ab_glyph::Font::glyph_id(&face, *c).0)
        .collect();
    // .notdef must come first and nothing may repeat.
    glyphs.push(0);
    glyphs.sort_unstable();
    glyphs.dedup();
    let data = ReadScope::new(bytes)
        .read::<FontData<'_>>()
        .map_err(|e| anyhow!("unreadable font: {e}"))?;
    let provider = data
        .table_provider(0)
        .map_err(|e| anyhow!("unreadable font: {e}"))?;
    subset(
        &provider,
        &glyphs,
        &SubsetProfile::Minimal,
        CmapTarget::Unicode,
    )
    .map_err(|e| anyhow!("cannot subset the font: {e}"))
}

/// The CSS: the font as a data: URL, first in every font stack of the page (body text, code,
/// chart text). First, because Chromium, asked for a character that a family earlier in the
/// list lacks, sometimes settles for that family's box glyph instead of reading on. It holds
/// no ASCII, so Latin text still comes from the families after it.
fn style_for(font: &[u8]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(font);
    let f = EMBEDDED_FAMILY;
    format!(
        "<style id=\"{STYLE_ID}\">\n@font-face {{ font-family: \"{f}\"; src: url(data:font/ttf;base64,{data}) format(\"truetype\"); }}\n\
         body {{ font-family: \"{f}\", system-ui, -apple-system, \"Segoe UI\", Roboto, Arial, sans-serif; }}\n\
         code, pre.spec {{ font-family: \"{f}\", ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }}\n\
         svg.chart text {{ font-family: \"{f}\", \"DejaVu Sans\", Arial, sans-serif; }}\n\
         </style>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_keeps_only_the_asked_glyphs_and_maps_them() {
        let chars: BTreeSet<char> = "损失训练".chars().collect();
        let small = subset_font(BUILTIN_FONT, &chars).unwrap();
        let whole = BUILTIN_FONT.len();
        assert!(small.len() * 50 < whole, "{} of {whole} bytes", small.len());
        // A standalone font again, whose cmap maps the characters kept and nothing else.
        let face = ab_glyph::FontRef::try_from_slice(&small).unwrap();
        for c in chars {
            assert_ne!(ab_glyph::Font::glyph_id(&face, c).0, 0, "{c} lost");
        }
        assert_eq!(ab_glyph::Font::glyph_id(&face, '北').0, 0);
        // The four glyphs, .notdef and the parts composite glyphs are built from.
        assert!(ab_glyph::Font::glyph_count(&face) < 20);

        let style = font_style("<p>损失 loss</p>");
        assert!(style.contains("data:font/ttf;base64,") && style.contains(EMBEDDED_FAMILY));
        assert_eq!(font_style("ascii only"), "");
    }
}
