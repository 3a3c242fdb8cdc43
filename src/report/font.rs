//! The font charts are drawn with. plotters' `ab_glyph` backend has no font fallback: the one
//! font registered for a family must hold both Latin and Chinese glyphs, so a CJK font is
//! searched at run time and used for everything. SVG files name a list of families instead,
//! so a browser picks whatever CJK font the reader has.

use plotters::style::{register_font, FontStyle};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The family every chart text uses. For SVG it is written verbatim into `font-family`, so it
/// lists common CJK fonts of every platform; for PNG it is just the key of the loaded font.
pub const FONT_FAMILY: &str = "Noto Sans CJK SC, Source Han Sans SC, WenQuanYi Micro Hei, \
     Microsoft YaHei, PingFang SC, Hiragino Sans GB, Droid Sans Fallback, DejaVu Sans, Arial, sans-serif";

/// Environment variable naming a font file (.ttf, .otf or .ttc) to use instead of the search.
pub const FONT_ENV: &str = "GPTLAB_FONT";

/// Searched in order after `$GPTLAB_FONT`: CJK fonts from Debian packages first
/// (fonts-wqy-microhei is the smallest), then Latin-only fallbacks.
const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// The font that was registered for [`FONT_FAMILY`].
#[derive(Debug)]
pub struct ChartFont {
    pub path: PathBuf,
    /// Whether it draws Chinese (checked on a sample character, not guessed from the name).
    pub has_cjk: bool,
}

/// Loads and registers the chart font once per process; `None` when no usable font exists,
/// in which case charts are drawn without text. Warns once on stderr when Chinese will not render.
pub fn chart_font() -> Option<&'static ChartFont> {
    static FONT: OnceLock<Option<ChartFont>> = OnceLock::new();
    FONT.get_or_init(|| {
        let found = find_and_register();
        match &found {
            None => eprintln!(
                "warning: no font found for charts (set {FONT_ENV} or install fonts-wqy-microhei); charts are drawn without text"
            ),
            Some(f) if !f.has_cjk => eprintln!(
                "warning: chart font {} has no Chinese glyphs (set {FONT_ENV} or install fonts-wqy-microhei); Chinese text in PNG charts will not render",
                f.path.display()
            ),
            Some(_) => {}
        }
        found
    })
    .as_ref()
}

fn find_and_register() -> Option<ChartFont> {
    let from_env = std::env::var_os(FONT_ENV).map(PathBuf::from);
    if let Some(path) = &from_env {
        if !path.is_file() {
            eprintln!(
                "warning: {FONT_ENV}={} is not a file; searching the system fonts",
                path.display()
            );
        }
    }
    let candidates = from_env
        .into_iter()
        .chain(CANDIDATES.iter().map(PathBuf::from));
    for path in candidates {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Some(has_cjk) = cjk_coverage(&bytes) else {
            eprintln!(
                "warning: {} is not a font that can be read; skipping it",
                path.display()
            );
            continue;
        };
        // plotters keeps fonts for the life of the process and wants 'static bytes: leaking
        // the one file we load is exactly that.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if register_font(FONT_FAMILY, FontStyle::Normal, bytes).is_err() {
            continue;
        }
        // Anything drawing with plotters' default family gets the same font.
        let _ = register_font("sans-serif", FontStyle::Normal, bytes);
        return Some(ChartFont { path, has_cjk });
    }
    None
}

/// `Some(true)` if the font (index 0 of a collection) maps a common Chinese character to a
/// glyph, `None` if the bytes are not a font.
fn cjk_coverage(bytes: &[u8]) -> Option<bool> {
    use ab_glyph::Font;
    let font = ab_glyph::FontRef::try_from_slice(bytes).ok()?;
    Some(['损', '的', '是'].iter().all(|c| font.glyph_id(*c).0 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_font() {
        assert_eq!(cjk_coverage(b"definitely not a font file"), None);
    }

    #[test]
    fn installed_cjk_collection_is_read_at_index_zero() {
        let path = CANDIDATES[0];
        let Ok(bytes) = std::fs::read(path) else {
            println!("note: {path} not installed; skipping");
            return;
        };
        assert_eq!(
            cjk_coverage(&bytes),
            Some(true),
            "{path} should draw Chinese"
        );
    }
}
