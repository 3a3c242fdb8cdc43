//! Chinese renders on a machine without a CJK font. With fontconfig limited to DejaVu (Latin
//! only) and no `GPTLAB_FONT`, `gptlab report` falls back to its built-in font: the PNG charts
//! draw Chinese glyphs, and headless Chromium under the same limit draws the page's Chinese
//! from the embedded subset. The same page with the embedded font removed shows what the
//! reader would see without it.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A finished run folder with Chinese in its name, prompts and answers; no training needed.
fn write_run(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("meta.json"),
        r#"{"name":"中文报告","run_id":"abc123","complete":true,"stages":[{"name":"base","kind":"pretrain"},{"name":"assistant","kind":"sft"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("spec.toml"),
        "name = \"zh\"\n[report]\nprompts = [\"中国的首都是哪里?\", \"我今天想去游乐园玩\"]\ncompare = [\"base\", \"assistant\"]\n",
    )
    .unwrap();
    let mut samples = String::new();
    for (stage, answer) in [
        ("base", "香蕉是黄色的水果。"),
        ("assistant", "中国的首都是北京。"),
    ] {
        for prompt in ["中国的首都是哪里?", "我今天想去游乐园玩"] {
            samples += &format!(
                "{{\"stage\":\"{stage}\",\"prompt\":\"{prompt}\",\"completion\":\"{answer}过山车大风车\"}}\n"
            );
        }
    }
    std::fs::write(dir.join("samples.jsonl"), samples).unwrap();
    // Two probe charts whose titles differ only in their (equally many) Chinese characters.
    let mut probes = String::new();
    for prompt in ["我今天想去游乐园玩", "香蕉是什么颜色的呢"] {
        probes += &format!(
            "{{\"stage\":\"base\",\"prompt\":\"{prompt}\",\"top\":[{{\"token\":\"过\",\"prob\":0.6}},{{\"token\":\"大\",\"prob\":0.3}}]}}\n"
        );
    }
    std::fs::write(dir.join("probes.jsonl"), probes).unwrap();
}

/// `gptlab report` on a fresh fixture run, with only `fonts_conf`'s fonts and no
/// `GPTLAB_FONT`; returns the run folder. The built-in font leaves nothing to warn about.
fn report_without_cjk_fonts(tmp: &Path, fonts_conf: &Path) -> PathBuf {
    let run = tmp.join("run");
    write_run(&run);
    let mut command = gptlab_command(&["report", run.to_str().unwrap()], tmp);
    command
        .env("FONTCONFIG_FILE", fonts_conf)
        .env_remove("GPTLAB_FONT");
    let out = output_within(&mut command, COMMAND_TIMEOUT);
    run_dir(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Chinese glyphs") && !stderr.contains("no font"),
        "gptlab warned about fonts:\n{stderr}"
    );
    run
}

/// RGB pixels of a PNG file, and its width.
fn read_png(path: &Path) -> (Vec<u8>, usize) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    let rgb = buf
        .chunks(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    (rgb, info.width as usize)
}

/// The top of `page` as Chromium draws it with only `fonts_conf`'s fonts, as RGBA pixels.
fn screenshot(browser: &str, page: &Path, fonts_conf: &Path, tmp: &Path) -> Vec<u8> {
    let shot = page.with_extension("png");
    let mut command = Command::new(browser);
    command
        .env("FONTCONFIG_FILE", fonts_conf)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--hide-scrollbars",
            "--window-size=1000,700",
        ])
        .arg(format!("--user-data-dir={}", tmp.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()));
    let out = output_within(&mut command, COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_png(&shot).0
}

#[test]
fn png_chart_titles_draw_chinese_glyphs_without_a_cjk_font_installed() {
    let tmp = tempdir();
    let conf = latin_only_fontconfig(tmp.path());
    let run = report_without_cjk_fonts(tmp.path(), &conf);
    let (a, width) = read_png(&run.join("base/probe-1.png"));
    let (b, _) = read_png(&run.join("base/probe-2.png"));
    assert_eq!(a.len(), b.len());
    // The title band: the top 45 rows, across the middle where the centred title is.
    let band = |px: &[u8]| -> Vec<[u8; 3]> {
        (0..45)
            .flat_map(|y| (width / 6..5 * width / 6).map(move |x| (y * width + x) * 3))
            .map(|i| [px[i], px[i + 1], px[i + 2]])
            .collect()
    };
    let dark = |px: &[[u8; 3]]| {
        px.iter()
            .filter(|p| p.iter().map(|&c| c as u32).sum::<u32>() < 3 * 128)
            .count()
    };
    let (ta, tb) = (band(&a), band(&b));
    let differing = ta
        .iter()
        .zip(&tb)
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 40))
        .count();
    println!(
        "title band: {} and {} dark pixels, {differing} differ",
        dark(&ta),
        dark(&tb)
    );
    // Nine Chinese glyphs in each title have ink; missing-glyph boxes would too, but all
    // alike: the two titles (same length, other characters) differ only if glyphs are drawn.
    assert!(
        dark(&ta) > 150 && dark(&tb) > 150,
        "the title band is blank"
    );
    assert!(
        differing > 300,
        "the two Chinese titles look alike: boxes, not glyphs ({differing} pixels differ)"
    );
}

#[test]
fn chinese_renders_from_the_embedded_font_without_a_cjk_font_installed() {
    const TEST: &str = "chinese_renders_from_the_embedded_font_without_a_cjk_font_installed";
    let Some(browser) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        return skip(TEST, "chromium (apt-get install chromium)");
    };
    if !Path::new(DEJAVU).is_dir() {
        return skip(TEST, "DejaVu fonts (apt-get install fonts-dejavu-core)");
    }
    let tmp = tempdir();
    let conf = latin_only_fontconfig(tmp.path());
    let run = report_without_cjk_fonts(tmp.path(), &conf);
    let page = run.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let start = html
        .find("<style id=\"embedded-font\">")
        .expect("the page embeds a font");
    let end = start + html[start..].find("</style>").unwrap() + "</style>".len();
    let bare = tmp.path().join("bare.html");
    std::fs::write(&bare, format!("{}{}", &html[..start], &html[end..])).unwrap();
    println!(
        "report.html: {} bytes, {} without the embedded font",
        html.len(),
        html.len() - (end - start)
    );

    let with_font = screenshot(browser, &page, &conf, tmp.path());
    let without = screenshot(browser, &bare, &conf, tmp.path());
    assert_eq!(with_font.len(), without.len());
    let ink = |px: &[u8]| {
        px.chunks(3)
            .filter(|p| p.iter().map(|&c| c as u32).sum::<u32>() < 300)
            .count()
    };
    let differing = with_font
        .chunks(3)
        .zip(without.chunks(3))
        .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > 60))
        .count();
    println!(
        "dark pixels: {} with the embedded font, {} without; {differing} pixels differ",
        ink(&with_font),
        ink(&without)
    );
    // Boxes for missing glyphs are thin outlines, all alike; glyphs of 中文 have many strokes:
    // in a header and a table full of Chinese they change thousands of pixels and add ink.
    assert!(
        differing > 10_000,
        "the embedded font changes little: {differing} pixels differ"
    );
    assert!(
        ink(&with_font) * 2 > ink(&without) * 3,
        "no more ink with the embedded font than with boxes"
    );
}
