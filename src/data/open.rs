//! Opening a data file, gzip or not. The shipped corpora are stored as `NAME.gz` (they would
//! weigh 40 MB plain), yet specs keep naming `NAME`: a path whose file is absent is read from
//! `NAME.gz` beside it, and a path ending in `.gz` is gunzipped. So a spec's text, and with it
//! its run id, does not depend on how its data is stored.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;

const GZ: &str = "gz";

/// The file that holds `path`'s data: `path` itself, else `path.gz`; `None` if neither exists.
pub fn stored_file(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    let gz = with_gz(path);
    gz.is_file().then_some(gz)
}

/// Whether `path` names data that can be read (directly or as `path.gz`).
pub fn data_exists(path: &Path) -> bool {
    stored_file(path).is_some()
}

/// The name a stored file is read under: `a.txt.gz` is `a.txt`, others are themselves.
pub fn logical_name(stored: &Path) -> PathBuf {
    match stored.extension() {
        Some(ext) if ext == GZ => stored.with_extension(""),
        _ => stored.to_path_buf(),
    }
}

/// The extension that says what the data is: `txt` for `a.txt` and `a.txt.gz`.
pub fn data_extension(path: &Path) -> Option<&str> {
    match path.extension()?.to_str()? {
        GZ => Path::new(path.file_stem()?).extension()?.to_str(),
        ext => Some(ext),
    }
}

/// A buffered reader of `path`'s data, decompressed if it is stored as gzip.
pub fn open_data(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    let stored = stored_file(path).unwrap_or_else(|| path.to_path_buf());
    let file =
        std::fs::File::open(&stored).with_context(|| format!("reading {}", path.display()))?;
    Ok(match stored.extension() {
        Some(ext) if ext == GZ => Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            BufReader::new(file),
        ))),
        _ => Box::new(BufReader::new(file)),
    })
}

/// All of `path`'s data as bytes (decompressed).
pub fn read_data(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_data(path)?
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {} (a damaged .gz file?)", path.display()))?;
    Ok(bytes)
}

fn with_gz(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(GZ);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(path: &Path, text: &str) {
        let file = std::fs::File::create(path).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap();
    }

    #[test]
    fn a_missing_file_is_read_from_its_gz_and_a_gz_is_gunzipped() {
        let dir = tempfile::tempdir().unwrap();
        let logical = dir.path().join("poems.txt");
        gzip(&dir.path().join("poems.txt.gz"), "床前明月光\n");
        assert!(data_exists(&logical));
        assert_eq!(read_data(&logical).unwrap(), "床前明月光\n".as_bytes());
        let named_gz = dir.path().join("poems.txt.gz");
        assert_eq!(read_data(&named_gz).unwrap(), "床前明月光\n".as_bytes());
        assert_eq!(data_extension(&named_gz), Some("txt"));
        assert_eq!(logical_name(&named_gz), logical);
        // A plain file beside its .gz wins: it is what the spec names.
        std::fs::write(&logical, "plain").unwrap();
        assert_eq!(read_data(&logical).unwrap(), b"plain");
    }

    #[test]
    fn a_damaged_gz_and_a_missing_file_are_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.jsonl.gz"), b"not gzip at all").unwrap();
        let err = read_data(&dir.path().join("bad.jsonl")).unwrap_err();
        assert!(format!("{err:#}").contains("bad.jsonl"), "{err:#}");
        let missing = dir.path().join("none.txt");
        assert!(!data_exists(&missing));
        assert!(format!("{:#}", read_data(&missing).unwrap_err()).contains("none.txt"));
    }
}
