//! The font charts are drawn with. plotters' `ab_glyph` backend has no font fallback: the one
//! font registered for a family must hold both Latin and Chinese glyphs, so a CJK font is
//! used for everything: the one `$GPTLAB_FONT` names, else one installed, else the built-in
//! subset (`builtin_font.rs`), so Chinese draws on a machine with no CJK font. SVG files name a list of families instead,
//! so a browser picks whatever CJK font the reader has.

use super::builtin_font::{BUILTIN_FONT, BUILTIN_NAME};
use plotters::style::{register_font, FontStyle};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The family every chart text uses. For SVG it is written verbatim into `font-family`, so it
/// lists common CJK fonts of every platform; for PNG it is just the key of the loaded font.
pub const FONT_FAMILY: &str = "Noto Sans CJK SC, Source Han Sans SC, WenQuanYi Micro Hei, \
     Microsoft YaHei, PingFang SC, Hiragino Sans GB, Droid Sans Fallback, DejaVu Sans, Arial, sans-serif";

/// Environment variable naming a font file (.ttf, .otf or .ttc) to use instead of the search.
pub const FONT_ENV: &str = "GPTLAB_FONT";

/// CJK fonts of common systems, in order of preference (fonts-wqy-microhei is the smallest),
/// for machines without fontconfig; with it, `fc-list` says which fonts draw Chinese.
const CJK_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
];

/// The font that was registered for [`FONT_FAMILY`].
#[derive(Debug)]
pub struct ChartFont {
    /// The file it was read from; `None` for the built-in font.
    pub path: Option<PathBuf>,
    /// Whether it came from `$GPTLAB_FONT`.
    pub from_env: bool,
    pub bytes: &'static [u8],
    /// Whether it draws Chinese (checked on sample characters, not guessed from the name).
    pub has_cjk: bool,
}

impl ChartFont {
    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => BUILTIN_NAME.to_string(),
        }
    }
}

/// Loads and registers the chart font once per process: `$GPTLAB_FONT`, else an installed CJK
/// font, else the built-in one. Warns once on stderr when Chinese will not render (only a
/// `$GPTLAB_FONT` without Chinese glyphs does that).
pub fn chart_font() -> Option<&'static ChartFont> {
    static FONT: OnceLock<Option<ChartFont>> = OnceLock::new();
    FONT.get_or_init(|| {
        let found = find_and_register();
        match &found {
            None => eprintln!("warning: no font could be registered for charts; charts are drawn without text"),
            Some(f) if !f.has_cjk => eprintln!(
                "warning: chart font {} ({FONT_ENV}) has no Chinese glyphs; Chinese text in PNG charts will not render",
                f.describe()
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
    let env_font = from_env.and_then(|p| read_font(&p, false).map(|(bytes, cjk)| (p, bytes, cjk)));
    let found = env_font
        .map(|(p, bytes, cjk)| ChartFont {
            path: Some(p),
            from_env: true,
            bytes,
            has_cjk: cjk,
        })
        .or_else(|| {
            installed_cjk_fonts().into_iter().find_map(|p| {
                let (bytes, _) = read_font(&p, true)?;
                Some(ChartFont {
                    path: Some(p),
                    from_env: false,
                    bytes,
                    has_cjk: true,
                })
            })
        })
        .unwrap_or(ChartFont {
            path: None,
            from_env: false,
            bytes: BUILTIN_FONT,
            has_cjk: true,
        });
    register_font(FONT_FAMILY, FontStyle::Normal, found.bytes).ok()?;
    // Anything drawing with plotters' default family gets the same font.
    let _ = register_font("sans-serif", FontStyle::Normal, found.bytes);
    Some(found)
}

/// The font at `path` and whether it draws Chinese; `None` if it cannot be read, is not a
/// font, or (with `need_cjk`) draws no Chinese.
fn read_font(path: &Path, need_cjk: bool) -> Option<(&'static [u8], bool)> {
    let bytes = std::fs::read(path).ok()?;
    let Some(has_cjk) = cjk_coverage(&bytes) else {
        eprintln!(
            "warning: {} is not a font that can be read; skipping it",
            path.display()
        );
        return None;
    };
    if need_cjk && !has_cjk {
        return None;
    }
    // plotters keeps fonts for the life of the process and wants 'static bytes: leaking
    // the one file we load is exactly that.
    Some((Box::leak(bytes.into_boxed_slice()), has_cjk))
}

/// Installed fonts that draw Chinese, preferred ones first. fontconfig knows them where it is
/// installed (and honours `FONTCONFIG_FILE`, so a machine told it has no CJK font is believed);
/// elsewhere the known paths are looked at.
fn installed_cjk_fonts() -> Vec<PathBuf> {
    let listed = std::process::Command::new("fc-list")
        .args([":lang=zh-cn", "file"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    let Ok(out) = listed.as_ref().map(|o| String::from_utf8_lossy(&o.stdout)) else {
        return CJK_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .collect();
    };
    let mut files: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_suffix(':'))
        .filter(|f| f.ends_with(".ttf") || f.ends_with(".ttc") || f.ends_with(".otf"))
        .collect();
    // Known fonts in their order, then the rest by path, so the choice is reproducible.
    files.sort_by_key(|f| {
        (
            CJK_CANDIDATES
                .iter()
                .position(|c| c == f)
                .unwrap_or(usize::MAX),
            *f,
        )
    });
    files.dedup();
    files.into_iter().map(PathBuf::from).collect()
}

/// `Some(true)` if the font (index 0 of a collection) maps common Chinese characters to
/// glyphs, `None` if the bytes are not a font.
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
    fn the_builtin_font_draws_chinese() {
        assert_eq!(cjk_coverage(BUILTIN_FONT), Some(true));
    }

    #[test]
    fn a_chart_font_always_draws_chinese_without_gptlab_font() {
        if std::env::var_os(FONT_ENV).is_some() {
            return; // the user's choice, whatever it draws
        }
        let font = chart_font().expect("the built-in font at least");
        assert!(font.has_cjk, "{}", font.describe());
    }

    #[test]
    fn installed_collections_are_read_at_index_zero() {
        // Whatever CJK fonts this machine has (none is fine): each found one reads as one.
        for path in installed_cjk_fonts() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(cjk_coverage(&bytes).is_some(), "{}", path.display());
        }
    }
}
