//! Opening an upload: plain, gzip or zip, told apart by content, read as a stream of lines.
//! Compressed streams are expanded under [`Limits`]: a few kilobytes may not become gigabytes.

use super::{Finding, Limits, Severity};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Default cap on one file's size; a larger file is refused before reading.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024 * 1024;

fn finding(code: &'static str, file: &str, message: String) -> Finding {
    Finding {
        code,
        severity: Severity::Error,
        file: file.to_string(),
        line: 0,
        message,
        excerpt: String::new(),
        converted: None,
    }
}

/// A zip entry name is safe when it stays inside the archive.
pub fn safe_zip_name(name: &str) -> bool {
    let p = Path::new(name);
    !name.contains('\\')
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Counts the bytes read from the file underneath decompression, for progress.
pub struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Why a compressed stream was cut off: it expanded past a limit. Travels as the source of the
/// `io::Error` the line reader sees, which turns it into a finding with this code.
#[derive(Debug)]
pub struct ExpansionLimit {
    /// `decompress.too_large` or `decompress.ratio`.
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for ExpansionLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExpansionLimit {}

impl ExpansionLimit {
    /// The limit an I/O error stands for, if it is one.
    pub fn of(e: &std::io::Error) -> Option<&ExpansionLimit> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

/// The decompressor's output, counted against the upload's limits: `expanded` is shared by every
/// stream of the upload (zip entries add up), `compressed` counts the file's bytes read.
struct Expanding<R> {
    inner: R,
    name: String,
    expanded: Arc<AtomicU64>,
    compressed: Arc<AtomicU64>,
    limits: Limits,
}

impl Expanding<()> {
    fn wrap<R>(self, inner: R) -> Expanding<R> {
        Expanding {
            inner,
            name: self.name,
            expanded: self.expanded,
            compressed: self.compressed,
            limits: self.limits,
        }
    }
}

impl<R: Read> Read for Expanding<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let total = self.expanded.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let l = &self.limits;
        let name = &self.name;
        if total > l.max_expanded_bytes {
            return Err(std::io::Error::other(ExpansionLimit {
                code: "decompress.too_large",
                message: format!(
                    "{name} expands to more than {} bytes, the limit for one upload; reading stopped",
                    l.max_expanded_bytes
                ),
            }));
        }
        let compressed = self.compressed.load(Ordering::Relaxed).max(1);
        if total > l.ratio_after_bytes && total / compressed > l.max_expansion_ratio {
            return Err(std::io::Error::other(ExpansionLimit {
                code: "decompress.ratio",
                message: format!(
                    "{name} expanded {total} bytes out of {compressed} compressed ({}:1; the limit is {}:1): a decompression bomb, not an export; reading stopped",
                    total / compressed,
                    l.max_expansion_ratio
                ),
            }));
        }
        Ok(n)
    }
}

/// Reads every text stream of one uploaded file — the file itself, its gzip content, or each
/// entry of a zip — one after another, handing each to `each` with the name findings should
/// carry. Nothing is held in memory beyond a read buffer, whatever the size. `read` counts the
/// file's bytes consumed so far. Compressed streams stop with an [`ExpansionLimit`] error past
/// `limits`. Returns the findings about the container (unsafe zip names); `Err` when the file
/// cannot be read at all.
pub fn read_streams<E>(
    path: &Path,
    display_name: &str,
    max_bytes: u64,
    limits: &Limits,
    read: Arc<AtomicU64>,
    mut each: impl FnMut(&str, &mut dyn BufRead) -> Result<(), E>,
) -> Result<Result<Vec<Finding>, E>, Finding> {
    let name = display_name;
    let meta = std::fs::metadata(path)
        .map_err(|e| finding("file.unreadable", name, format!("cannot read {name}: {e}")))?;
    if meta.len() > max_bytes {
        return Err(finding(
            "file.too_large",
            name,
            format!("{name} is {} bytes; the limit is {max_bytes}", meta.len()),
        ));
    }
    let mut file = File::open(path)
        .map_err(|e| finding("file.unreadable", name, format!("cannot open {name}: {e}")))?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).unwrap_or(0);
    file.seek(SeekFrom::Start(0))
        .map_err(|e| finding("file.unreadable", name, format!("cannot read {name}: {e}")))?;
    // One count of expanded bytes for the whole upload: a zip's entries add up.
    let expanded = Arc::new(AtomicU64::new(0));
    let expanding = |name: &str| Expanding {
        inner: (),
        name: name.to_string(),
        expanded: expanded.clone(),
        compressed: read.clone(),
        limits: *limits,
    };
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        let file = Counting {
            inner: file,
            read: read.clone(),
        };
        let gz = MultiGzDecoder::new(BufReader::new(file));
        let mut reader = BufReader::with_capacity(1 << 20, expanding(name).wrap(gz));
        return Ok(each(name, &mut reader).map(|()| vec![]));
    }
    if n == 4 && magic == *b"PK\x03\x04" {
        let file = Counting {
            inner: file,
            read: read.clone(),
        };
        return read_zip(file, name, expanding, each);
    }
    let file = Counting { inner: file, read };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    Ok(each(name, &mut reader).map(|()| vec![]))
}

fn read_zip<E>(
    file: Counting<File>,
    name: &str,
    expanding: impl Fn(&str) -> Expanding<()>,
    mut each: impl FnMut(&str, &mut dyn BufRead) -> Result<(), E>,
) -> Result<Result<Vec<Finding>, E>, Finding> {
    let mut archive = zip::ZipArchive::new(file).map_err(|e| {
        finding(
            "zip.corrupt",
            name,
            format!("{name} is not a readable zip archive: {e}"),
        )
    })?;
    let mut findings = vec![];
    for i in 0..archive.len() {
        let entry = archive
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
        let stream = format!("{name}!{inner}");
        let mut reader = BufReader::with_capacity(1 << 20, expanding(&stream).wrap(entry));
        if let Err(e) = each(&stream, &mut reader) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(findings))
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
