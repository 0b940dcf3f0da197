//! Reading one stream of a dump into canonical records: tell the format, convert vendor lines,
//! parse and check each line. The same reader serves `imshift validate` and the console's
//! ingest, so both judge every line alike.

use super::canonical::{parse_line, Kind, Parsed, Sink};
use super::formats::csv::CsvConverter;
use super::formats::{detect, easemob, netease, Format};
use super::{severity_of, Finding, Severity};
use std::collections::HashSet;
use std::io::BufRead;

/// How much of a line a finding keeps: a rejected line whole (up to this), else a glimpse.
const REJECTED_EXCERPT_BYTES: usize = 64 * 1024;
const WARNING_EXCERPT_BYTES: usize = 500;

/// Reads streams one after another, collecting line findings.
#[derive(Default)]
pub struct LineReader {
    pub findings: Vec<Finding>,
    /// Lines that could not be read as any record.
    pub rejected_lines: u64,
    unknown_seen: HashSet<(Kind, String)>,
}

fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl LineReader {
    /// Reads `reader` in `format` (`None`: tell from its first line) and calls `each` with the
    /// 1-based line number and every record that parsed. Returns the format it was read as.
    pub fn read(
        &mut self,
        name: &str,
        reader: &mut dyn BufRead,
        format: Option<Format>,
        mut each: impl FnMut(u64, Parsed<'_>),
    ) -> Format {
        let mut format = format;
        let mut csv: Option<CsvConverter> = None;
        let mut buf = Vec::with_capacity(4096);
        let mut line = 0u64;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    // A zip entry's name is `archive!entry`.
                    let code = if name.contains('!') {
                        "zip.corrupt"
                    } else {
                        "gzip.truncated"
                    };
                    self.findings.push(Finding {
                        code,
                        severity: Severity::Error,
                        file: name.to_string(),
                        line: line + 1,
                        message: format!("reading stopped at line {}: {e}", line + 1),
                        excerpt: String::new(),
                    });
                    break;
                }
            }
            line += 1;
            if format.is_none() {
                let first = String::from_utf8_lossy(&buf);
                if first.trim().is_empty() {
                    continue;
                }
                format = Some(detect(&first).unwrap_or(Format::Canonical));
            }
            let before = self.findings.len();
            let mut rejected = false;
            match format {
                Some(Format::Canonical) | None => {
                    rejected = !self.parse(name, &buf, line, &mut each);
                }
                Some(vendor) => match self.convert(vendor, &mut csv, &buf, name, line) {
                    None => {
                        rejected = self.findings[before..]
                            .iter()
                            .any(|f| f.severity == Severity::Error)
                    }
                    Some(values) => {
                        for v in values {
                            let bytes = serde_json::to_vec(&v).unwrap_or_default();
                            rejected |= !self.parse(name, &bytes, line, &mut each);
                        }
                    }
                },
            }
            if rejected {
                self.rejected_lines += 1;
            }
            if self.findings.len() > before {
                let text = String::from_utf8_lossy(&buf);
                let text = text.trim_end_matches(['\r', '\n']);
                for f in &mut self.findings[before..] {
                    if f.excerpt.is_empty() && f.code != "csv.mapping" {
                        let max = if f.severity == Severity::Error {
                            REJECTED_EXCERPT_BYTES
                        } else {
                            WARNING_EXCERPT_BYTES
                        };
                        f.excerpt = cut(text, max);
                    }
                }
            }
        }
        format.unwrap_or(Format::Canonical)
    }

    /// Parses one canonical line and hands it on; false when it was rejected.
    fn parse(
        &mut self,
        name: &str,
        bytes: &[u8],
        line: u64,
        each: &mut impl FnMut(u64, Parsed<'_>),
    ) -> bool {
        let mut sink = Sink {
            file: name,
            findings: &mut self.findings,
            unknown_seen: &mut self.unknown_seen,
        };
        match parse_line(bytes, line, &mut sink) {
            Ok(Some(p)) => {
                each(line, p);
                true
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// One vendor line as canonical records; `None` (with a finding) when it does not convert,
    /// or for a CSV header and blank lines.
    fn convert(
        &mut self,
        format: Format,
        csv: &mut Option<CsvConverter>,
        bytes: &[u8],
        name: &str,
        line: u64,
    ) -> Option<Vec<serde_json::Value>> {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t.trim_end_matches(['\r', '\n']),
            Err(e) => {
                self.push(
                    name,
                    line,
                    "utf8.invalid",
                    format!("byte {} of the line is not UTF-8", e.valid_up_to() + 1),
                );
                return None;
            }
        };
        if text.trim().is_empty() {
            return None;
        }
        let result = match format {
            Format::Netease => netease::convert_line(text),
            Format::Easemob => easemob::convert_line(text),
            Format::Csv => match csv {
                Some(c) => c.convert_row(text),
                None => match CsvConverter::new(text, None) {
                    Ok(c) => {
                        let mapping: Vec<String> = c
                            .mapping()
                            .into_iter()
                            .map(|(col, f)| format!("{col} → {f}"))
                            .collect();
                        self.push(
                            name,
                            line,
                            "csv.mapping",
                            format!("CSV columns read as: {}", mapping.join(", ")),
                        );
                        *csv = Some(c);
                        return None;
                    }
                    Err(e) => Err(e),
                },
            },
            Format::Canonical => unreachable!("canonical lines are parsed, not converted"),
        };
        match result {
            Ok(values) => Some(values),
            Err(e) => {
                self.push(name, line, e.code, e.message);
                None
            }
        }
    }

    pub fn push(&mut self, file: &str, line: u64, code: &'static str, message: String) {
        self.findings.push(Finding {
            code,
            severity: severity_of(code),
            file: file.to_string(),
            line,
            message,
            excerpt: String::new(),
        });
    }
}
