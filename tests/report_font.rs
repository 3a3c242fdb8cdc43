//! Chinese in report.html renders on a machine without a CJK font: headless Chromium, with
//! fontconfig limited to DejaVu (Latin only), draws the page's Chinese from the embedded
//! subset. The same page with the embedded font removed shows what the reader would see.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const DEJAVU: &str = "/usr/share/fonts/truetype/dejavu";
const CJK_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc";

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
}

/// A fontconfig setup that knows DejaVu and nothing else.
fn latin_only_fontconfig(dir: &Path) -> PathBuf {
    let conf = dir.join("fonts.conf");
    std::fs::write(
        &conf,
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig>\n\
             <dir>{DEJAVU}</dir>\n<cachedir>{}</cachedir>\n</fontconfig>\n",
            dir.join("fc-cache").display()
        ),
    )
    .unwrap();
    conf
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
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    buf.chunks(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

#[test]
fn chinese_renders_from_the_embedded_font_without_a_cjk_font_installed() {
    let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let ready = Path::new(DEJAVU).is_dir() && Path::new(CJK_FONT).is_file();
    let Some(browser) = browser.filter(|_| ready) else {
        // CI installs chromium, DejaVu and WenQuanYi (.ci/run): there, missing ones fail.
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium or fonts missing"
        );
        eprintln!("skipped: needs chromium, {DEJAVU} and {CJK_FONT}");
        return;
    };
    let tmp = tempdir();
    let run = tmp.path().join("run");
    write_run(&run);
    let page = run_dir(&gptlab(&["report", run.to_str().unwrap()], tmp.path()));
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

    let conf = latin_only_fontconfig(tmp.path());
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
