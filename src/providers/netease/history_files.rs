//! NetEase's history migration files (seed 001 §4, reference §4.2), written from canonical records.
//!
//! NetEase has no self-service history import: its staff import text files in the line format of
//! seed 001, `{"data":{…},"type":N}`, one message or team notification per line. imshift reads that
//! format ([`super::dump::convert_line`]); this module writes it: [`line_of`] turns one canonical
//! record into one line, and [`HistoryFiles`] streams lines into files split by conversation kind
//! and size, with a `manifest.json`.
//!
//! **The format is UNCONFIRMED.** It is what the examples of NetEase's "IM 平滑迁移方案 / 消息体格式
//! 介绍" page show (`tests/fixtures/netease/seed001_examples.jsonl`); NetEase has not confirmed it
//! for an import, and every manifest says so.
//!
//! # How a line is spelled
//!
//! Where the seed's examples (and `dump.rs`) allow several spellings, the one the examples use:
//!
//! - `type`: 0 text, 1 image, 2 audio, 3 video, 4 location, 6 file, 100 custom; group events are
//!   101 invited, 102 kicked, 103 muted, 104 unmuted, 105 admin added, 106 admin removed, 107 info
//!   changed, 108 owner transferred, 109 left, 110 dismissed. A number (19 of the 21 examples).
//! - Keys in the order of the seed's example of the same kind: single-chat messages `ext,
//!   clientType, createTime, msgid, from, to, body|attach` (location and custom: `attach,
//!   clientType, createTime, ext, msgid, from, to`); group messages `ext, createTime, clientType,
//!   msgid, accid, body|attach, tid`; notifications `accid2, createTime, tinfo, msgid, accid, tid`.
//! - `clientType`: a string in single-chat lines (`"2"`, as all 7 single-chat examples write it), a
//!   number in group lines (`16`, as all 14 group examples). Left out when the record has no
//!   `client`; group events have none, so notifications carry no `clientType` (the seed's do).
//! - `createTime`: integer milliseconds. `msgid` and `tid`: a number when the id is a plain decimal
//!   integer within 64 bits (the seed's `"msgid":1`, `"tid":1`), else the id as a string
//!   (NetEase's own ids are numbers; whether its import takes string ids is UNCONFIRMED).
//! - `ext`: on every message, `""` when the record has none (as the seed's examples).
//! - `body` is the text of a text message. Media and location carry `attach` as a JSON **string**
//!   holding the object (keys in the example's order: image `h, ext, size, w, name, url`; audio
//!   `size, ext, dur, url`; video `h, w, size, ext, dur, url`; file `size, ext, name, url`;
//!   location `lng, title, lat` with the coordinates as decimal strings). A custom message's
//!   `attach` is its payload: the object itself when it is one (the seed's example), else the
//!   payload's JSON text as a string.
//! - `ext` inside an attachment is the file format as a reader gives it back (`"jpg"`, never the
//!   seed's `" amr"` with a space).
//! - Team notifications: `accid` is who did it and `accid2` whom it concerns, except 101, where the
//!   seed has `accid` the invited member and `accid2` the inviter. 107 carries `tinfo`: the changes
//!   under the keys "14".."24" (intro, notice, join, muted, custom, server_custom, avatar,
//!   invitee_consent, invite_by, edit_info_by, edit_custom_by), values as strings (`"16":"0"`),
//!   keys a reader kept as `netease.N` back under `N`, then `tid` (NetEase requires it).
//!
//! Group ids become NetEase team ids through the caller's map; account ids are written as they
//! are and must already be NetEase accids (at most 32 of `[A-Za-z0-9_@.-]`).
//!
//! # What cannot be written
//!
//! A record NetEase's format cannot express is a [`LineError`] naming the field: a `face` body (no
//! NetEase type), a group without a team id, a custom payload of `null`, a location off the globe,
//! an event without the member it concerns, a group change with no `tinfo` key, an id with spaces
//! at its ends (readers trim them), a time in seconds. Fields with no place in a line that still
//! leave a usable message are written without and counted in the manifest's `left_out`: a video's
//! `thumb_url`, a custom `desc` that is not the payload's own `desc`, a `format` that is no file
//! extension, a `target` or `changes` on an event whose notification has none, unknown fields.
//!
//! Reading a written line back with `convert_line` gives the record again, except that: a group's
//! id becomes its team id; an `ext` of `""` reads as none; names, titles and urls come back trimmed
//! and formats lower-cased; an integer coordinate comes back as the same decimal (`40` → `40.0`);
//! a 107 without `changes` comes back with `{}`; and what `left_out` counts is gone.
//!
//! # Files
//!
//! UTF-8 without a byte order mark, one line per record ending in `\n`. Single-chat lines go to
//! `p2p-0001.txt`, `p2p-0002.txt`, …; group messages and team notifications to `team-0001.txt`, …
//! (the seed gives notifications the group lines' shape and no file of their own;
//! [`Options::notifications_apart`] puts them in `team-notification-0001.txt`, … instead). A file
//! is closed and the next begun before a line that would take it past [`Options::max_file_bytes`];
//! a line is never split, so a line longer than the limit is a file of its own. Lines keep the
//! order they were pushed in. `manifest.json` is described at [`Manifest`].

mod line;
#[cfg(test)]
mod tests;

pub use line::{line_of, LineError};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// The default size limit of one file: 256 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// The manifest's name beside the files.
pub const MANIFEST: &str = "manifest.json";

/// What [`Manifest::format`] says.
pub const FORMAT: &str = "netease-migration-lines";

/// What [`Manifest::format_version`] says: the seed-001 line format as this module writes it.
pub const FORMAT_VERSION: u32 = 1;

/// What every manifest says about the format.
pub const UNCONFIRMED_NOTE: &str = "UNCONFIRMED: these files follow the examples of NetEase Yunxin's \"IM 平滑迁移方案 / 消息体格式介绍\" page (seed 001). NetEase has not confirmed this format for a history import; check it against the specification NetEase sends before handing the files over.";

/// The details of the format that no NetEase document confirms.
pub const UNCONFIRMED: [&str; 8] = [
    "the line format itself: one {\"data\":{…},\"type\":N} object per line, UTF-8, \\n line ends",
    "team notification types 101–110 and their accid/accid2/tinfo fields (no public NetEase enum has them)",
    "clientType 8 = WINPHONE",
    "clientType written as a string in single-chat lines and as a number in group lines, as the seed's examples do",
    "team notifications written without clientType (canonical group events have no client)",
    "msgid and tid written as strings when the id is not a plain decimal integer within 64 bits",
    "one file per conversation kind (p2p, team) and the size limit per file",
    "messages deduplicated by (msgid, from, to or tid, createTime)",
];

/// Which file a line goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// Single-chat messages (canonical `conv` `c2c`).
    P2p,
    /// Group messages, and team notifications unless [`Options::notifications_apart`].
    Team,
    /// Team notifications (types 101–110).
    TeamNotification,
}

impl FileKind {
    const ALL: [FileKind; 3] = [FileKind::P2p, FileKind::Team, FileKind::TeamNotification];

    /// Its name in the manifest and the start of its file names.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::P2p => "p2p",
            FileKind::Team => "team",
            FileKind::TeamNotification => "team-notification",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How the files are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// A file is closed before a line that would take it past this many bytes (at least 1).
    pub max_file_bytes: u64,
    /// Team notifications in files of their own (`team-notification-0001.txt`, …) rather than
    /// among the group messages.
    pub notifications_apart: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            notifications_apart: false,
        }
    }
}

/// What became of a pushed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Written as one line into a file of this kind.
    Written(FileKind),
    /// A kind these files do not carry (account, friend, block, group, member, conversation).
    NotCarried,
}

/// Why a push failed.
#[derive(Debug)]
pub enum PushError {
    /// The record cannot be a NetEase line: keep it aside with this reason; the writer goes on.
    Line(LineError),
    /// Writing failed; the files are incomplete and the writer refuses further work.
    Io(io::Error),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Line(e) => e.fmt(f),
            PushError::Io(e) => write!(f, "writing the NetEase history files failed: {e}"),
        }
    }
}

impl std::error::Error for PushError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PushError::Line(e) => Some(e),
            PushError::Io(e) => Some(e),
        }
    }
}

impl From<io::Error> for PushError {
    fn from(e: io::Error) -> Self {
        PushError::Io(e)
    }
}

/// `manifest.json`: what was written, for NetEase's staff and for checking the hand-over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Always `false` until NetEase confirms the format.
    pub confirmed: bool,
    /// [`UNCONFIRMED_NOTE`].
    pub note: String,
    /// [`UNCONFIRMED`].
    pub unconfirmed: Vec<String>,
    /// How the files are encoded.
    pub encoding: String,
    /// The size limit the files were cut at.
    pub max_file_bytes: u64,
    /// Every file, by name.
    pub files: Vec<FileEntry>,
    pub totals: Totals,
    /// Canonical fields written without, by field path, with how many records had them.
    pub left_out: BTreeMap<String, u64>,
    /// Records that could not be written ([`PushError::Line`]), by the field named.
    pub kept_aside: BTreeMap<String, u64>,
    /// Records of kinds these files do not carry, by kind.
    pub not_carried: BTreeMap<String, u64>,
}

/// One written file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// `p2p-0001.txt`, …
    pub name: String,
    /// [`FileKind::as_str`].
    pub kind: String,
    /// Lines (= records) in the file.
    pub lines: u64,
    /// Bytes, newlines included.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Lines per NetEase `type` (0, 1, …, 110; keys are strings in the JSON).
    pub types: BTreeMap<i64, u64>,
    /// The earliest and latest `createTime` in the file (milliseconds).
    pub first_at: i64,
    pub last_at: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub files: u64,
    pub lines: u64,
    pub bytes: u64,
    /// Per file kind.
    pub by_kind: BTreeMap<String, KindTotals>,
    /// Records kept aside and records not carried (see [`Manifest`]).
    pub kept_aside: u64,
    pub not_carried: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindTotals {
    pub files: u64,
    pub lines: u64,
    pub bytes: u64,
}

/// The file being written for one kind.
struct Open<W> {
    name: String,
    kind: FileKind,
    w: W,
    hash: Sha256,
    lines: u64,
    bytes: u64,
    types: BTreeMap<i64, u64>,
    first_at: i64,
    last_at: i64,
}

/// Writes NetEase history files from canonical records pushed one at a time. Memory stays at the
/// open files' writers (at most one per [`FileKind`]) whatever the number of records.
///
/// `create` opens a file by name (`p2p-0001.txt`, …, and `manifest.json` last); files are opened
/// only when a line goes into them. Call [`HistoryFiles::finish`] at the end: it closes the files
/// and writes the manifest.
pub struct HistoryFiles<W: Write, F: FnMut(&str) -> io::Result<W>> {
    create: F,
    options: Options,
    open: [Option<Open<W>>; 3],
    numbers: [u32; 3],
    done: Vec<FileEntry>,
    left_out: BTreeMap<String, u64>,
    kept_aside: BTreeMap<String, u64>,
    not_carried: BTreeMap<String, u64>,
    failed: bool,
}

/// A [`HistoryFiles`] writing into a directory.
pub type DirFiles =
    HistoryFiles<BufWriter<File>, Box<dyn FnMut(&str) -> io::Result<BufWriter<File>> + Send>>;

impl DirFiles {
    /// Writes into `dir` (created if need be). Files are created new: a name that already exists
    /// there is an error, never overwritten, so use an empty directory per run.
    pub fn in_dir(dir: &Path, options: Options) -> io::Result<DirFiles> {
        std::fs::create_dir_all(dir)?;
        let dir = dir.to_path_buf();
        Ok(HistoryFiles::new(
            Box::new(move |name: &str| File::create_new(dir.join(name)).map(BufWriter::new)),
            options,
        ))
    }
}

impl<W: Write, F: FnMut(&str) -> io::Result<W>> HistoryFiles<W, F> {
    pub fn new(create: F, options: Options) -> Self {
        HistoryFiles {
            create,
            options: Options {
                max_file_bytes: options.max_file_bytes.max(1),
                ..options
            },
            open: [None, None, None],
            numbers: [0; 3],
            done: Vec::new(),
            left_out: BTreeMap::new(),
            kept_aside: BTreeMap::new(),
            not_carried: BTreeMap::new(),
            failed: false,
        }
    }

    /// Writes one canonical record as a line ([`line_of`]), into the file of its kind.
    pub fn push(
        &mut self,
        record: &Value,
        tids: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Pushed, PushError> {
        self.check()?;
        let enc = match line::encode(record, tids) {
            Ok(Some(enc)) => enc,
            Ok(None) => {
                let kind = record["kind"].as_str().unwrap_or_default().to_string();
                *self.not_carried.entry(kind).or_default() += 1;
                return Ok(Pushed::NotCarried);
            }
            Err(e) => {
                *self.kept_aside.entry(e.field.clone()).or_default() += 1;
                return Err(PushError::Line(e));
            }
        };
        let kind = match enc.kind {
            FileKind::TeamNotification if !self.options.notifications_apart => FileKind::Team,
            k => k,
        };
        if let Err(e) = self.write(kind, &enc) {
            self.failed = true;
            return Err(e.into());
        }
        for field in enc.left_out {
            *self.left_out.entry(field).or_default() += 1;
        }
        Ok(Pushed::Written(kind))
    }

    fn check(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write of the NetEase history files failed; the files are incomplete",
            ));
        }
        Ok(())
    }

    fn write(&mut self, kind: FileKind, enc: &line::Encoded) -> io::Result<()> {
        let slot = kind.index();
        let len = enc.line.len() as u64 + 1;
        if self.open[slot]
            .as_ref()
            .is_some_and(|o| o.bytes > 0 && o.bytes + len > self.options.max_file_bytes)
        {
            self.close(slot)?;
        }
        if self.open[slot].is_none() {
            self.numbers[slot] += 1;
            let name = format!("{}-{:04}.txt", kind.as_str(), self.numbers[slot]);
            let w = (self.create)(&name)?;
            self.open[slot] = Some(Open {
                name,
                kind,
                w,
                hash: Sha256::new(),
                lines: 0,
                bytes: 0,
                types: BTreeMap::new(),
                first_at: enc.at,
                last_at: enc.at,
            });
        }
        let Some(o) = self.open[slot].as_mut() else {
            unreachable!("opened above")
        };
        o.w.write_all(enc.line.as_bytes())?;
        o.w.write_all(b"\n")?;
        o.hash.update(enc.line.as_bytes());
        o.hash.update(b"\n");
        o.lines += 1;
        o.bytes += len;
        *o.types.entry(enc.msg_type).or_default() += 1;
        o.first_at = o.first_at.min(enc.at);
        o.last_at = o.last_at.max(enc.at);
        Ok(())
    }

    fn close(&mut self, slot: usize) -> io::Result<()> {
        if let Some(mut o) = self.open[slot].take() {
            o.w.flush()?;
            self.done.push(FileEntry {
                name: o.name,
                kind: o.kind.as_str().to_string(),
                lines: o.lines,
                bytes: o.bytes,
                sha256: hex::encode(o.hash.finalize()),
                types: o.types,
                first_at: o.first_at,
                last_at: o.last_at,
            });
        }
        Ok(())
    }

    /// Closes the files, writes `manifest.json` through `create` and returns it.
    pub fn finish(mut self) -> io::Result<Manifest> {
        self.check()?;
        for kind in FileKind::ALL {
            self.close(kind.index())?;
        }
        let mut files = std::mem::take(&mut self.done);
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut totals = Totals {
            kept_aside: self.kept_aside.values().sum(),
            not_carried: self.not_carried.values().sum(),
            ..Totals::default()
        };
        for f in &files {
            totals.files += 1;
            totals.lines += f.lines;
            totals.bytes += f.bytes;
            let k = totals.by_kind.entry(f.kind.clone()).or_default();
            k.files += 1;
            k.lines += f.lines;
            k.bytes += f.bytes;
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            confirmed: false,
            note: UNCONFIRMED_NOTE.into(),
            unconfirmed: UNCONFIRMED.iter().map(|s| s.to_string()).collect(),
            encoding:
                "UTF-8 without byte order mark; one JSON object per line; every line ends in \\n"
                    .into(),
            max_file_bytes: self.options.max_file_bytes,
            files,
            totals,
            left_out: std::mem::take(&mut self.left_out),
            kept_aside: std::mem::take(&mut self.kept_aside),
            not_carried: std::mem::take(&mut self.not_carried),
        };
        let mut json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        json.push(b'\n');
        let mut w = (self.create)(MANIFEST)?;
        w.write_all(&json)?;
        w.flush()?;
        Ok(manifest)
    }
}

/// The hand-over seam: NetEase's staff import history from these files (reference §4).
pub struct Files;

impl crate::providers::HandOver for Files {
    fn label(&self) -> &'static str {
        "NetEase history files"
    }

    fn phases(&self) -> &'static [&'static str] {
        &["c2c_history", "group_history", "group_events"]
    }

    fn note(&self) -> &'static str {
        "NetEase Yunxin has no API to import history: its staff import it from files in the line format of its migration guide. Attach these files and their manifest to your history import request to NetEase. The format is UNCONFIRMED until NetEase confirms it against the specification it sends you."
    }

    fn writer(&self, dir: &Path) -> Result<Box<dyn crate::providers::HandOverWriter>, String> {
        DirFiles::in_dir(dir, Options::default())
            .map(|w| Box::new(w) as Box<dyn crate::providers::HandOverWriter>)
            .map_err(|e| format!("cannot write into {}: {e}", dir.display()))
    }

    fn line(
        &self,
        record: &Value,
        group_ids: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Value>, String> {
        match line_of(&lower_accounts(record), group_ids) {
            Ok(Some(l)) => serde_json::from_str(&l)
                .map(Some)
                .map_err(|e| e.to_string()),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A record's account ids as NetEase stores them: in lower case (reference §2.1).
fn lower_accounts(record: &Value) -> Value {
    let mut r = record.clone();
    if let Some(m) = r.as_object_mut() {
        let group = m.get("conv").and_then(Value::as_str) == Some("group")
            || m.get("kind").and_then(Value::as_str) == Some("group_event");
        for k in ["from", "to", "actor", "target"] {
            // A group message's `to` is the group.
            if k == "to" && group {
                continue;
            }
            if let Some(Value::String(s)) = m.get_mut(k) {
                *s = s.to_lowercase();
            }
        }
    }
    r
}

impl crate::providers::HandOverWriter for DirFiles {
    fn push(
        &mut self,
        record: &Value,
        group_ids: &dyn Fn(&str) -> Option<String>,
    ) -> Result<bool, crate::providers::HandOverError> {
        use crate::providers::HandOverError;
        match HistoryFiles::push(self, &lower_accounts(record), group_ids) {
            Ok(Pushed::Written(_)) => Ok(true),
            Ok(Pushed::NotCarried) => Ok(false),
            Err(PushError::Line(e)) => Err(HandOverError::Record(e.to_string())),
            Err(PushError::Io(e)) => Err(HandOverError::Io(e.to_string())),
        }
    }

    fn finish(self: Box<Self>) -> Result<Value, String> {
        let m = HistoryFiles::finish(*self).map_err(|e| e.to_string())?;
        serde_json::to_value(m).map_err(|e| e.to_string())
    }
}
