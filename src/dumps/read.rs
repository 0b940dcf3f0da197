//! Reading one stream of a dump into canonical records: tell the format, convert vendor lines,
//! parse and check each line. The same reader serves `imshift validate` and the console's
//! ingest, so both judge every line alike.
//!
//! Whatever the input, memory stays bounded: a line is read in chunks and one longer than
//! [`Limits::max_line_bytes`] is skipped (only its head is kept, for the finding); findings are
//! handed on in batches as they are found; past [`Limits::findings_per_rule`] a rule's findings
//! are only counted.

use super::canonical::{parse_line, Kind, Parsed, Sink};
use super::container::ExpansionLimit;
use super::formats::csv::CsvConverter;
use super::formats::{detect, Format};
use super::{severity_of, Finding, Limits, Severity};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, ErrorKind};

/// How much of a line a finding keeps: a rejected line whole (up to this), else a glimpse.
const REJECTED_EXCERPT_BYTES: usize = 64 * 1024;
const WARNING_EXCERPT_BYTES: usize = 500;
/// What a staged record keeps of the vendor line it was converted from, and what a finding
/// keeps of the canonical record a line was converted to: enough to read, bounded.
pub const RAW_KEEP_BYTES: usize = 4096;
/// Lines `imshift validate` shows, with their conversion, per rule (it keeps no other text).
pub const EXAMPLES_PER_RULE: u64 = 20;
/// What is kept of a line too long to read: enough to show it and to tell its format.
const HEAD_BYTES: usize = 4096;
/// Format detection looks at no more of the first line than this.
const DETECT_BYTES: usize = super::formats::DETECT_PREFIX_BYTES;
/// Findings are handed on (`Event::Findings`) once about this many bytes of them wait.
const FINDINGS_BATCH_BYTES: usize = 256 * 1024;
/// Unknown field names are reported once each up to this many names; past it each line
/// reports its own (and the per-rule cap counts them), so the set of names stays small.
const UNKNOWN_FIELDS_MAX: usize = 10_000;

/// What [`LineReader::read`] hands its caller.
pub enum Event<'a> {
    /// A record that parsed, with its 1-based line (a CSV record's first line).
    Record(u64, Parsed<'a>),
    /// Findings waiting to be written: take them (`std::mem::take`) to keep memory flat, or
    /// leave them to keep them all (they are capped per rule either way).
    Findings(&'a mut Vec<Finding>),
}

/// Keeps the first `per_rule` findings of each rule and counts the rest.
#[derive(Debug, Default)]
pub struct RuleCap {
    per_rule: u64,
    kept: HashMap<&'static str, u64>,
    not_kept: BTreeMap<&'static str, u64>,
}

impl RuleCap {
    pub fn new(per_rule: u64) -> Self {
        RuleCap {
            per_rule,
            ..Default::default()
        }
    }

    /// Whether a finding of `code` is kept; if not, it is counted.
    pub fn admit(&mut self, code: &'static str) -> bool {
        let kept = self.kept.entry(code).or_default();
        if *kept < self.per_rule {
            *kept += 1;
            true
        } else {
            *self.not_kept.entry(code).or_default() += 1;
            false
        }
    }

    /// Findings counted but not kept, by rule.
    pub fn not_kept(&self) -> &BTreeMap<&'static str, u64> {
        &self.not_kept
    }
}

/// Reads streams one after another, collecting line findings.
pub struct LineReader {
    /// Findings not yet handed on (see [`Event::Findings`]).
    pub findings: Vec<Finding>,
    /// Lines that could not be read as any record.
    pub rejected_lines: u64,
    pub limits: Limits,
    /// Keep the offending text with each finding (the console shows it; `imshift validate`
    /// prints no excerpts and so keeps none).
    pub excerpts: bool,
    /// Without excerpts, the first this many findings of each rule on a converted line still
    /// keep the line and its conversion (`imshift validate` shows them).
    pub examples: u64,
    examples_kept: HashMap<&'static str, u64>,
    /// The canonical records the current line was converted to (empty: not converted).
    converted: String,
    pub cap: RuleCap,
    /// Why the last stream stopped before its end (damaged, or past a decompression limit).
    pub stopped: Option<Finding>,
    unknown_seen: HashSet<(Kind, String)>,
    unknown_line: HashSet<(Kind, String)>,
    pending_bytes: usize,
}

impl Default for LineReader {
    fn default() -> Self {
        Self::new(Limits::default())
    }
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

/// A line as a finding of `imshift validate` shows it: cut at a character past a few KB.
pub fn cut_line(text: &str) -> String {
    cut(text, RAW_KEEP_BYTES)
}

/// A vendor line as a staged record keeps it: whole when short, else cut at a character.
fn keep_raw(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= RAW_KEEP_BYTES {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(cut(text, RAW_KEEP_BYTES))
    }
}

/// Converted records as a finding shows them: one JSON object a line.
fn converted_text(values: &[serde_json::Value]) -> String {
    let text = values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    cut(&text, RAW_KEEP_BYTES)
}

/// One vendor line converted as [`LineReader`] converts it, for showing: `None` when it does
/// not convert (or is not a line-by-line vendor format).
pub fn convert_for_display(format: Format, line: &str) -> Option<String> {
    let values = match format {
        Format::Vendor(v) => (v.convert_line)(line),
        Format::Csv | Format::Canonical => return None,
    };
    values.ok().map(|v| converted_text(&v))
}

/// The lines numbered in `wanted` (1-based) of a stream, each as text (lossy UTF-8, its line
/// break dropped); lines longer than `max` are skipped unread. Stops after the last one.
pub fn lines_at(
    reader: &mut dyn BufRead,
    wanted: &std::collections::BTreeSet<u64>,
    max: usize,
) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    let Some(&last) = wanted.last() else {
        return out;
    };
    let mut buf = Vec::with_capacity(4096);
    let mut line = 0u64;
    while line < last {
        match next_line(reader, &mut buf, max) {
            Ok(Got::Line) => {}
            Ok(Got::TooLong(_)) => {
                line += 1;
                continue;
            }
            Ok(Got::Eof) | Err(_) => break,
        }
        line += 1;
        if wanted.contains(&line) {
            let text = String::from_utf8_lossy(&buf);
            out.insert(line, text.trim_end_matches(['\r', '\n']).to_string());
        }
    }
    out
}

/// How one line ended.
enum Got {
    Eof,
    Line,
    /// Longer than the limit: `buf` holds its head only. The line's length without its newline.
    TooLong(u64),
}

/// Reads one line into `buf` (newline included), holding at most `max` bytes of it: a longer
/// line is consumed chunk by chunk and dropped but for its first [`HEAD_BYTES`].
fn next_line(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Got> {
    buf.clear();
    let mut len = 0u64;
    let mut too_long = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(match (buf.is_empty(), too_long) {
                (_, true) => Got::TooLong(len),
                (true, false) => Got::Eof,
                (false, false) => Got::Line,
            });
        }
        let (take, end) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        len += (take - usize::from(end)) as u64;
        if !too_long && len > max as u64 {
            too_long = true;
            buf.truncate(HEAD_BYTES);
        }
        if too_long {
            let room = HEAD_BYTES.saturating_sub(buf.len());
            buf.extend_from_slice(&avail[..take.min(room)]);
        } else {
            buf.extend_from_slice(&avail[..take]);
        }
        r.consume(take);
        if end {
            return Ok(if too_long {
                Got::TooLong(len)
            } else {
                Got::Line
            });
        }
    }
}

impl LineReader {
    pub fn new(limits: Limits) -> Self {
        LineReader {
            findings: Vec::new(),
            rejected_lines: 0,
            limits,
            excerpts: true,
            examples: 0,
            examples_kept: HashMap::new(),
            converted: String::new(),
            cap: RuleCap::new(limits.findings_per_rule),
            stopped: None,
            unknown_seen: HashSet::new(),
            unknown_line: HashSet::new(),
            pending_bytes: 0,
        }
    }

    /// Adds a finding made elsewhere (container, cross-record), under the per-rule cap.
    pub fn add(&mut self, f: Finding) {
        if self.cap.admit(f.code) {
            self.findings.push(f);
        }
    }

    /// Reads `reader` in `format` (`None`: tell from its first line) and calls `each` with
    /// every record that parsed and every batch of findings; `each` returning false stops the
    /// reading. Returns the format it was read as.
    pub fn read(
        &mut self,
        name: &str,
        reader: &mut dyn BufRead,
        format: Option<Format>,
        mut each: impl FnMut(Event<'_>) -> bool,
    ) -> Format {
        self.stopped = None;
        let max = self.limits.max_line_bytes;
        let mut format = format;
        let mut buf = Vec::with_capacity(4096);
        let mut line = 0u64;
        loop {
            let too_long = match next_line(reader, &mut buf, max) {
                Ok(Got::Eof) => break,
                Ok(Got::Line) => None,
                Ok(Got::TooLong(len)) => Some(len),
                Err(e) => {
                    self.stop(name, line + 1, &e);
                    break;
                }
            };
            line += 1;
            if format.is_none() {
                // A bounded prefix is enough to tell the format, and never copies a huge line.
                let head = String::from_utf8_lossy(&buf[..buf.len().min(DETECT_BYTES)]);
                if too_long.is_none() && head.trim().is_empty() {
                    continue;
                }
                format = Some(detect(&head).unwrap_or(Format::Canonical));
            }
            let before = self.findings.len();
            let mut go_on = true;
            let rejected = if let Some(len) = too_long {
                self.push(
                    name,
                    line,
                    "line.too_long",
                    format!("the line is {len} bytes; the limit is {max}: it was skipped unread"),
                );
                true
            } else {
                match format {
                    Some(Format::Canonical) | None => {
                        !self.parse(name, &buf, line, &mut each, &mut go_on, None)
                    }
                    Some(Format::Csv) => match self.csv_header(name, &buf, line) {
                        Some(conv) => {
                            self.settle(before, &buf);
                            if self.hand_on(&mut each) {
                                self.read_csv(name, reader, &conv, line, &mut each);
                            }
                            return Format::Csv;
                        }
                        None => self.findings[before..]
                            .iter()
                            .any(|f| f.severity == Severity::Error),
                    },
                    Some(vendor) => match self.convert(vendor, &buf, name, line) {
                        None => self.findings[before..]
                            .iter()
                            .any(|f| f.severity == Severity::Error),
                        Some(values) => {
                            // The user's line goes with each record it became, and the
                            // records with the line's findings.
                            let raw = std::str::from_utf8(&buf)
                                .ok()
                                .map(|t| t.trim_end_matches(['\r', '\n']));
                            let mut rejected = false;
                            for v in values {
                                let bytes = serde_json::to_vec(&v).unwrap_or_default();
                                self.note_converted(&bytes);
                                rejected |=
                                    !self.parse(name, &bytes, line, &mut each, &mut go_on, raw);
                            }
                            rejected
                        }
                    },
                }
            };
            if rejected {
                self.rejected_lines += 1;
            }
            self.settle(before, &buf);
            if !go_on || !self.hand_on(&mut each) {
                break;
            }
        }
        format.unwrap_or(Format::Canonical)
    }

    /// Applies the per-rule cap to the findings made since `before` and gives the survivors
    /// the offending text.
    fn settle(&mut self, before: usize, text: &[u8]) {
        if self.findings.len() == before {
            self.converted.clear();
            return;
        }
        let converted: Box<str> = cut(&std::mem::take(&mut self.converted), RAW_KEEP_BYTES).into();
        for f in self.findings.split_off(before) {
            if self.cap.admit(f.code) {
                self.findings.push(f);
            }
        }
        if self.excerpts && self.findings.len() > before {
            let text = &text[..text.len().min(REJECTED_EXCERPT_BYTES + 4)];
            let text = String::from_utf8_lossy(text);
            let text = text.trim_end_matches(['\r', '\n']);
            for f in &mut self.findings[before..] {
                if f.excerpt.is_empty() && f.code != "csv.mapping" {
                    let max = if f.severity == Severity::Error {
                        REJECTED_EXCERPT_BYTES
                    } else {
                        WARNING_EXCERPT_BYTES
                    };
                    f.excerpt = cut(text, max);
                    f.converted = (!converted.is_empty()).then(|| converted.clone());
                }
            }
        } else if self.examples > 0 && !converted.is_empty() {
            // No excerpts kept, but the first lines of each rule that were converted are shown
            // beside their conversion: the message names canonical fields.
            let text = &text[..text.len().min(REJECTED_EXCERPT_BYTES + 4)];
            let text = String::from_utf8_lossy(text);
            let text = text.trim_end_matches(['\r', '\n']);
            for f in &mut self.findings[before..] {
                let kept = self.examples_kept.entry(f.code).or_default();
                if *kept < self.examples && f.code != "csv.mapping" {
                    *kept += 1;
                    f.excerpt = cut(text, RAW_KEEP_BYTES);
                    f.converted = Some(converted.clone());
                }
            }
        }
        for f in &self.findings[before..] {
            self.pending_bytes += f.message.len()
                + f.excerpt.len()
                + f.converted.as_ref().map_or(0, |c| c.len())
                + f.file.len()
                + 64;
        }
    }

    /// Keeps a record the current line was converted to, in case the line has findings (a
    /// copy of bytes already made, up to what a finding shows).
    fn note_converted(&mut self, record: &[u8]) {
        if self.converted.len() > RAW_KEEP_BYTES {
            return;
        }
        if !self.converted.is_empty() {
            self.converted.push('\n');
        }
        self.converted
            .push_str(std::str::from_utf8(record).unwrap_or_default());
    }

    /// Hands the waiting findings on once there are enough of them; false: stop reading.
    fn hand_on(&mut self, each: &mut impl FnMut(Event<'_>) -> bool) -> bool {
        if self.pending_bytes < FINDINGS_BATCH_BYTES {
            return true;
        }
        self.pending_bytes = 0;
        each(Event::Findings(&mut self.findings))
    }

    /// The stream broke off: damaged compression, or a decompression limit.
    fn stop(&mut self, name: &str, line: u64, e: &std::io::Error) {
        let (code, message) = match ExpansionLimit::of(e) {
            Some(limit) => (limit.code, limit.message.clone()),
            // A zip entry's name is `archive!entry`.
            None if name.contains('!') => (
                "zip.corrupt",
                format!("reading stopped at line {line}: {e}"),
            ),
            None => (
                "gzip.truncated",
                format!("reading stopped at line {line}: {e}"),
            ),
        };
        let f = Finding {
            code,
            severity: Severity::Error,
            file: name.to_string(),
            line,
            message,
            excerpt: String::new(),
            converted: None,
        };
        // Never capped: it says why everything after it is missing.
        self.stopped = Some(f.clone());
        self.findings.push(f);
    }

    /// Parses one canonical line and hands it on; false when it was rejected.
    fn parse(
        &mut self,
        name: &str,
        bytes: &[u8],
        line: u64,
        each: &mut impl FnMut(Event<'_>) -> bool,
        go_on: &mut bool,
        raw: Option<&str>,
    ) -> bool {
        let full = self.unknown_seen.len() >= UNKNOWN_FIELDS_MAX;
        if full {
            self.unknown_line.clear();
        }
        let mut sink = Sink {
            file: name,
            findings: &mut self.findings,
            unknown_seen: if full {
                &mut self.unknown_line
            } else {
                &mut self.unknown_seen
            },
        };
        match parse_line(bytes, line, &mut sink) {
            Ok(Some(mut p)) => {
                p.raw = raw.map(keep_raw);
                *go_on &= each(Event::Record(line, p));
                true
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// One vendor line as canonical records; `None` (with a finding) when it does not convert,
    /// or for blank lines.
    fn convert(
        &mut self,
        format: Format,
        bytes: &[u8],
        name: &str,
        line: u64,
    ) -> Option<Vec<serde_json::Value>> {
        let text = self.text(bytes, name, line)?;
        if text.trim().is_empty() {
            return None;
        }
        let result = match format {
            Format::Vendor(v) => (v.convert_line)(text),
            Format::Csv | Format::Canonical => {
                unreachable!("CSV is read by records, canonical lines are parsed")
            }
        };
        match result {
            Ok(values) => Some(values),
            Err(e) => {
                self.push(name, line, e.code, e.message);
                None
            }
        }
    }

    fn text<'b>(&mut self, bytes: &'b [u8], name: &str, line: u64) -> Option<&'b str> {
        match std::str::from_utf8(bytes) {
            Ok(t) => Some(t.trim_end_matches(['\r', '\n'])),
            Err(e) => {
                self.push(
                    name,
                    line,
                    "utf8.invalid",
                    format!("byte {} of the line is not UTF-8", e.valid_up_to() + 1),
                );
                None
            }
        }
    }

    /// A CSV header line: its converter, with the mapping as a finding; `None` for a blank
    /// line or (with a finding) a header that names no usable columns.
    fn csv_header(&mut self, name: &str, bytes: &[u8], line: u64) -> Option<CsvConverter> {
        let text = self.text(bytes, name, line)?;
        if text.trim().is_empty() {
            return None;
        }
        match CsvConverter::new(text, None) {
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
                Some(c)
            }
            Err(e) => {
                self.push(name, line, e.code, e.message);
                None
            }
        }
    }

    /// The CSV records after the header (on line `header_line`), read as RFC 4180 says: a
    /// quoted cell may hold line breaks, and its record is one record, named by its first
    /// line. `csv_core` (the parser under the `csv` crate's reader) is driven directly so that
    /// a record longer than the line limit is skipped as it streams by instead of being
    /// gathered whole.
    fn read_csv(
        &mut self,
        name: &str,
        reader: &mut dyn BufRead,
        conv: &CsvConverter,
        header_line: u64,
        each: &mut impl FnMut(Event<'_>) -> bool,
    ) {
        use csv_core::ReadRecordResult as R;
        let max = self.limits.max_line_bytes as u64;
        let mut csv = csv_core::ReaderBuilder::new()
            .delimiter(conv.delimiter())
            .build();
        let mut out = vec![0u8; 4096];
        let mut ends = vec![0usize; 64];
        let (mut nout, mut nend) = (0usize, 0usize);
        // Newlines consumed so far: the line a byte is on is this + 1.
        let mut newlines = header_line;
        // The record being read: its first line, its bytes as written (for the excerpt), its
        // size, and whether it is past the limit (then its output is dropped as it comes).
        let mut first: Option<u64> = None;
        let mut raw: Vec<u8> = Vec::new();
        let mut size = 0u64;
        let mut too_long = false;
        // Whether the last byte read was a line break (then the record ended on that line).
        let mut last_nl = false;
        loop {
            let input = match reader.fill_buf() {
                Ok(i) => i,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.stop(name, newlines + 1, &e);
                    return;
                }
            };
            let at_eof = input.is_empty();
            let (res, nin, o, e) = csv.read_record(input, &mut out[nout..], &mut ends[nend..]);
            let used = &input[..nin];
            let start = match first {
                Some(_) => Some(0),
                // Blank lines between records belong to no record.
                None => used.iter().position(|b| !matches!(b, b'\r' | b'\n')),
            };
            if let Some(p) = start {
                if first.is_none() {
                    first =
                        Some(newlines + 1 + memchr::memchr_iter(b'\n', &used[..p]).count() as u64);
                }
                size += (nin - p) as u64;
                let room = (REJECTED_EXCERPT_BYTES + 4).saturating_sub(raw.len());
                raw.extend_from_slice(&used[p..][..room.min(nin - p)]);
            }
            newlines += memchr::memchr_iter(b'\n', used).count() as u64;
            if nin > 0 {
                last_nl = used[nin - 1] == b'\n';
            }
            reader.consume(nin);
            nout += o;
            nend += e;
            // Its line break aside, a record may be as long as a line.
            if size > max + 2 {
                too_long = true;
            }
            match res {
                R::InputEmpty if at_eof => return,
                R::InputEmpty => {}
                R::OutputFull if too_long => nout = 0,
                R::OutputFull => out.resize(out.len() * 2, 0),
                R::OutputEndsFull if too_long => nend = 0,
                R::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                R::End => return,
                R::Record => {
                    let line = first.unwrap_or(newlines);
                    let before = self.findings.len();
                    let mut go_on = true;
                    let rejected = if too_long {
                        let last = newlines + u64::from(!last_nl);
                        let lines = if last > line {
                            format!(" (lines {line}–{last})")
                        } else {
                            String::new()
                        };
                        self.push(
                            name,
                            line,
                            "line.too_long",
                            format!(
                                "the CSV record{lines} is {size} bytes; the limit is {max}: it was skipped unread"
                            ),
                        );
                        true
                    } else {
                        self.csv_record(
                            name,
                            conv,
                            (&out[..nout], &ends[..nend]),
                            &raw,
                            line,
                            each,
                            &mut go_on,
                        )
                    };
                    if rejected {
                        self.rejected_lines += 1;
                    }
                    self.settle(before, &raw);
                    (nout, nend, first, size, too_long) = (0, 0, None, 0, false);
                    raw.clear();
                    if !go_on || !self.hand_on(each) {
                        return;
                    }
                }
            }
        }
    }

    /// One CSV record's cells (`data` split at `ends`) through the converter and the parser,
    /// `raw` the record as written; true when it was rejected.
    #[allow(clippy::too_many_arguments)]
    fn csv_record(
        &mut self,
        name: &str,
        conv: &CsvConverter,
        (data, ends): (&[u8], &[usize]),
        raw: &[u8],
        line: u64,
        each: &mut impl FnMut(Event<'_>) -> bool,
        go_on: &mut bool,
    ) -> bool {
        let mut cells = Vec::with_capacity(ends.len());
        let mut from = 0;
        for &end in ends {
            // Each cell on its own must be UTF-8 (a character may not straddle a separator).
            match data.get(from..end).map(std::str::from_utf8) {
                Some(Ok(cell)) => cells.push(cell),
                _ => {
                    let bad = std::str::from_utf8(data)
                        .err()
                        .map_or(from, |e| e.valid_up_to());
                    self.push(
                        name,
                        line,
                        "utf8.invalid",
                        format!("byte {} of the record is not UTF-8", bad + 1),
                    );
                    return true;
                }
            }
            from = end;
        }
        if cells.len() <= 1 && cells.first().is_none_or(|c| c.trim().is_empty()) {
            return false;
        }
        match conv.convert_cells(&cells) {
            Ok(values) => {
                let raw = std::str::from_utf8(raw)
                    .ok()
                    .map(|t| t.trim_end_matches(['\r', '\n']));
                let mut rejected = false;
                for v in values {
                    let bytes = serde_json::to_vec(&v).unwrap_or_default();
                    self.note_converted(&bytes);
                    rejected |= !self.parse(name, &bytes, line, each, go_on, raw);
                }
                rejected
            }
            Err(e) => {
                self.push(name, line, e.code, e.message);
                true
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
            converted: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor, Read};

    /// A reader of `n` copies of `byte`, made on the fly.
    struct Repeat(u8, u64);

    impl Read for Repeat {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (buf.len() as u64).min(self.1) as usize;
            buf[..n].fill(self.0);
            self.1 -= n as u64;
            Ok(n)
        }
    }

    fn read_all(
        limits: Limits,
        input: &mut dyn BufRead,
        format: Option<Format>,
    ) -> (Vec<(u64, Kind)>, Vec<Finding>, LineReader) {
        let mut r = LineReader::new(limits);
        let mut records = vec![];
        let mut findings = vec![];
        r.read("f", input, format, |e| {
            match e {
                Event::Record(line, p) => records.push((line, p.kind)),
                Event::Findings(f) => findings.append(f),
            }
            true
        });
        findings.append(&mut r.findings);
        (records, findings, r)
    }

    #[test]
    fn a_line_over_the_limit_is_a_finding_and_the_next_line_is_read() {
        let limits = Limits {
            max_line_bytes: 100,
            ..Limits::default()
        };
        // 10 MB of one line between two good ones, through a small buffer.
        let input = Cursor::new(b"{\"kind\":\"account\",\"id\":\"u1\"}\n".to_vec())
            .chain(Repeat(b'x', 10_000_000))
            .chain(Cursor::new(
                b"\n{\"kind\":\"account\",\"id\":\"u2\"}".to_vec(),
            ));
        let mut input = BufReader::with_capacity(8192, input);
        let (records, findings, r) = read_all(limits, &mut input, None);
        assert_eq!(records, vec![(1, Kind::Account), (3, Kind::Account)]);
        assert_eq!(findings.len(), 1, "{findings:?}");
        let f = &findings[0];
        assert_eq!((f.code, f.line), ("line.too_long", 2));
        assert!(f.message.contains("10000000 bytes"), "{}", f.message);
        assert!(f.excerpt.len() <= HEAD_BYTES + 4 && f.excerpt.starts_with("xxx"));
        assert_eq!(r.rejected_lines, 1);
        // A line exactly at the limit is read; one byte more is not.
        let line = format!(
            r#"{{"kind":"account","id":"u3","nick":"{}"}}"#,
            "n".repeat(60)
        );
        let limits = Limits {
            max_line_bytes: line.len(),
            ..Limits::default()
        };
        let (records, findings, _) =
            read_all(limits, &mut Cursor::new(format!("{line}\n{line} ")), None);
        assert_eq!(records, vec![(1, Kind::Account)]);
        assert_eq!((findings[0].code, findings[0].line), ("line.too_long", 2));
    }

    #[test]
    fn findings_past_the_cap_are_counted_and_handed_on_in_batches() {
        let limits = Limits {
            findings_per_rule: 50,
            ..Limits::default()
        };
        let lines = "x\n".repeat(200_000);
        let mut r = LineReader::new(limits);
        let mut kept = 0;
        r.read("f", &mut Cursor::new(lines), None, |e| {
            if let Event::Findings(f) = e {
                kept += f.len();
                f.clear();
            }
            true
        });
        kept += r.findings.len();
        assert_eq!(kept, 50);
        assert_eq!(r.cap.not_kept()["json.syntax"], 200_000 - 50);
        assert_eq!(r.rejected_lines, 200_000);
        // With the cap out of the way, the findings go out as they are found, not at the end.
        let mut r = LineReader::new(Limits {
            findings_per_rule: u64::MAX,
            ..Limits::default()
        });
        let mut batches = 0;
        let mut most = 0;
        r.read("f", &mut Cursor::new("x\n".repeat(50_000)), None, |e| {
            if let Event::Findings(f) = e {
                batches += 1;
                most = most.max(f.len());
                f.clear();
            }
            true
        });
        assert!(batches > 5, "{batches}");
        assert!(most < 5_000, "{most}");
        assert_eq!(r.cap.not_kept().get("json.syntax"), None);
    }

    #[test]
    fn csv_records_span_quoted_line_breaks_and_are_named_by_their_first_line() {
        let text = "id,nick,signature\r\nu1,\"Alice\",\"line one\r\nline two\"\r\n\r\nu2,Bob,\"a \"\"quoted\"\"\nword\"\nu3,Carol,plain\nu4,robot\n";
        let mut r = LineReader::default();
        let mut got = vec![];
        r.read("f.csv", &mut Cursor::new(text), None, |e| {
            if let Event::Record(line, p) = e {
                got.push((line, p.record.to_string()));
            }
            true
        });
        let lines: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(lines, vec![2, 5, 7], "{got:?}");
        assert!(
            got[0].1.contains(r#""signature":"line one\r\nline two""#),
            "{}",
            got[0].1
        );
        assert!(got[1].1.contains(r#"a \"quoted\"\nword"#), "{}", got[1].1);
        let bad: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.code != "csv.mapping")
            .map(|f| (f.line, f.code))
            .collect();
        assert_eq!(bad, vec![(8, "field.value")]);
        assert_eq!(r.findings[1].excerpt, "u4,robot");
    }

    #[test]
    fn a_csv_record_over_the_limit_is_skipped_and_the_next_one_read() {
        let limits = Limits {
            max_line_bytes: 1000,
            ..Limits::default()
        };
        let big = format!("u2,\"{}\n{}\"\n", "a".repeat(600), "b".repeat(600));
        let text = format!("id,nick\nu1,A\n{big}u3,C\n");
        let (records, findings, _) = read_all(limits, &mut Cursor::new(text), None);
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 5]);
        let f = findings.iter().find(|f| f.code == "line.too_long").unwrap();
        assert_eq!(f.line, 3);
        assert!(f.message.contains("lines 3–4"), "{}", f.message);
        // Streamed: a record of 50 MB costs no more than the limit.
        let input = Cursor::new(b"id,nick\nu1,\"".to_vec())
            .chain(Repeat(b'z', 50_000_000))
            .chain(Cursor::new(b"\"\nu3,C".to_vec()));
        let (records, findings, _) = read_all(
            limits,
            &mut BufReader::with_capacity(8192, input),
            Some(Format::Csv),
        );
        assert_eq!(records, vec![(3, Kind::Account)]);
        assert!(findings
            .iter()
            .any(|f| f.code == "line.too_long" && f.line == 2));
    }

    #[test]
    fn detection_reads_a_bounded_prefix_of_a_long_first_line() {
        let long = format!(
            r#"{{"kind":"message","id":"m1","conv":"c2c","from":"u1","to":"u2","sent_at":1,"body":{{"type":"text","text":"{}"}}}}"#,
            "t".repeat(200_000)
        );
        let mut r = LineReader::default();
        let format = r.read("f", &mut Cursor::new(long), None, |_| true);
        assert_eq!(format, Format::Canonical);
    }
}
