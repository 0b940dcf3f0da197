//! Opening an upload: plain, gzip or zip, told apart by content, read as a stream of lines.

use super::{Finding, Severity};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path};

/// One text stream inside an upload, with the name findings should carry.
pub struct Entry {
    pub name: String,
    pub reader: Box<dyn BufRead>,
}

/// Default cap on one file's size; a larger file is refused before reading.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024 * 1024;

fn finding(code: &'static str, file: &str, message: String) -> Finding {
    Finding {
        code,
        severity: Severity::Error,
        file: file.to_string(),
        line: 0,
        message,
    }
}

/// A zip entry name is safe when it stays inside the archive.
pub fn safe_zip_name(name: &str) -> bool {
    let p = Path::new(name);
    !name.contains('\\')
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// The streams of one uploaded file, or why it cannot be read.
pub fn open(path: &Path, max_bytes: u64) -> Result<(Vec<Entry>, Vec<Finding>), Finding> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| finding("file.unreadable", &name, format!("cannot read {name}: {e}")))?;
    if meta.len() > max_bytes {
        return Err(finding(
            "file.too_large",
            &name,
            format!("{name} is {} bytes; the limit is {max_bytes}", meta.len()),
        ));
    }
    let mut file = File::open(path)
        .map_err(|e| finding("file.unreadable", &name, format!("cannot open {name}: {e}")))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).unwrap_or(0);
    drop(file);
    let file = File::open(path)
        .map_err(|e| finding("file.unreadable", &name, format!("cannot open {name}: {e}")))?;
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        let reader = BufReader::with_capacity(1 << 20, MultiGzDecoder::new(BufReader::new(file)));
        return Ok((
            vec![Entry {
                name,
                reader: Box::new(reader),
            }],
            vec![],
        ));
    }
    if n == 4 && magic == *b"PK\x03\x04" {
        return open_zip(file, &name);
    }
    Ok((
        vec![Entry {
            name,
            reader: Box::new(BufReader::with_capacity(1 << 20, file)),
        }],
        vec![],
    ))
}

fn open_zip(file: File, name: &str) -> Result<(Vec<Entry>, Vec<Finding>), Finding> {
    let mut archive = zip::ZipArchive::new(file).map_err(|e| {
        finding(
            "zip.corrupt",
            name,
            format!("{name} is not a readable zip archive: {e}"),
        )
    })?;
    let mut entries = vec![];
    let mut findings = vec![];
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| finding("zip.corrupt", name, format!("{name}: entry {i}: {e}")))?;
        let inner = entry.name().to_string();
        if !safe_zip_name(&inner) {
            findings.push(finding(
                "zip.unsafe_name",
                name,
                format!("{name}: entry `{inner}` leaves the archive; it was skipped"),
            ));
            continue;
        }
        if entry.is_dir() {
            continue;
        }
        // Entries are read one after another; buffering each keeps the archive's single file
        // handle simple. Large dumps should be uploaded as .gz, which streams.
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 30) as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| finding("zip.corrupt", name, format!("{name}: `{inner}`: {e}")))?;
        entries.push(Entry {
            name: format!("{name}!{inner}"),
            reader: Box::new(std::io::Cursor::new(bytes)),
        });
    }
    Ok((entries, findings))
}

#[cfg(test)]
mod tests {
    use super::safe_zip_name;

    #[test]
    fn zip_names_may_not_leave_the_archive() {
        assert!(safe_zip_name("dump/part-1.jsonl"));
        assert!(safe_zip_name("./a.jsonl"));
        for bad in ["../etc/passwd", "/abs.jsonl", "a/../../b", "..\\win.jsonl"] {
            assert!(!safe_zip_name(bad), "{bad}");
        }
    }
}
