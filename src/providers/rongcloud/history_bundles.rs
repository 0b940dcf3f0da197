//! RongCloud history bundles: the hand-over for a target with no history import.
//!
//! RongCloud has no server API to import history (reference §2.8): its publish APIs would
//! deliver every old message as a new one, stamped now. What a team can do instead is give the
//! new app version the history to insert into each device's local database with IMLib's batch
//! insert (at most 500 messages a call, each with its `sentTime` in milliseconds and a unique
//! message UID; not for chatrooms). These bundles are that history, cut per reader. **They are
//! not a server import**: nothing in them reaches RongCloud's servers or a user's other devices,
//! and a device inserts only the bundles its app fetches.
//!
//! # Files
//!
//! - `user-<id>.jsonl`: one per account, holding its one-to-one conversations. A one-to-one
//!   message goes into **both** participants' files, each copy from that side: `targetId` the
//!   other account, `messageDirection` 1 (sent) when the file's account sent it, else 2
//!   (received). A message to oneself is written once, sent, with oneself as target.
//! - `group-<id>.jsonl`: one per group, the group's messages, which every member's app fetches.
//!   Its lines have no `messageDirection`: it depends on the reader, so the app sets it (1 when
//!   `senderUserId` is the signed-in user, else 2).
//! - `manifest.json`: every file (name, account or group, lines, bytes, SHA-256, first and last
//!   `sentTime`, lines per objectName, whether it is in time order), totals, what was left out,
//!   kept aside or not carried and why, the file-name rule and the format version ([`Manifest`]).
//!
//! File names must be safe for the download route (`GET …/hand-over/{build}/{name}`) and for
//! the disk of whoever downloads them: an id made only of `a-z 0-9 _ -` is written as it is;
//! any other (an upper-case letter, which a case-insensitive disk would fold into another
//! account's file, or RongCloud's `+` and `=`) is written as the lower-case hex of its UTF-8
//! bytes after a `~` instead of the `-`: `user~4a6f65.jsonl` is account `Joe`. `~` never
//! appears in a plain name, so a name reads back to one id ([`id_of_file_name`]).
//!
//! # Lines
//!
//! UTF-8, one JSON object per line ending in `\n`, keys in this order:
//!
//! `{"conversationType":1|3,"targetId":…,"senderUserId":…,"messageDirection":1|2,"objectName":…,
//! "content":{…},"sentTime":<ms>,"messageUId":"XXXX-XXXX-XXXX-XXXX"}`
//!
//! - `conversationType` is IMLib's: 1 private, 3 group. Groups are RongCloud groups (the import
//!   makes every canonical group one, chatroom-type included), never chatrooms.
//! - `content` is the content object of §2.6 (the app builds its MessageContent from it):
//!   text `RC:TxtMsg {content}`; image `RC:ImgMsg {content:"", imageUri}` (a GIF
//!   `RC:GIFMsg {remoteUrl, gifDataSize, width, height}`); audio `RC:HQVCMsg {remoteUrl,
//!   duration}`; video `RC:SightMsg {content:"", name, sightUrl, duration, size}`; file
//!   `RC:FileMsg {name, size, type, fileUrl}`; location `RC:LBSMsg {content:"", latitude,
//!   longitude, poi}`; custom [`CUSTOM_OBJECT_NAME`] `{data, desc}`, which the app registers
//!   (or rewrites into its own types). The record's `ext` becomes `extra`. The base64
//!   thumbnails (`content` of images, videos and locations) are empty: imshift never fetches
//!   media. `duration` is in seconds, rounded up.
//! - `messageUId` is derived from the message's canonical identity ([`message_uid`]):
//!   stable across builds, unique per message, the same in both participants' files.
//! - Fields a line has no place for are left out and counted in the manifest's `left_out`
//!   (`client`, an image's size and dimensions, a video's `thumb_url`, …).
//!
//! # What is not carried, and what is kept aside
//!
//! Group events are not written (`Ok(false)`, counted in `not_carried`): on RongCloud a group
//! notification is an `RC:GrpNtf` message whose `operation` vocabulary and `data` are the app
//! server's own (§2.6 marks them UNCONFIRMED), so imshift cannot write one a given app renders;
//! they stay in the dump for the app server. A message RongCloud cannot carry is kept aside
//! with why ([`LineError`]): a face (sticker) body, which has no RongCloud type; an account or
//! group id RongCloud refuses (the import could not create it, so no device has it); a time in
//! seconds.
//!
//! # Order and memory
//!
//! The build hands records over conversation by conversation, oldest first in each direction.
//! The writer holds no record: it appends each line to its file, keeping at most
//! [`DEFAULT_MAX_OPEN`] buffered files open (least recently used closed first, reopened in
//! append mode), and per file only its counts. At the end each file of at most
//! [`SORT_LIMIT`] bytes that is not in time order (a user file gets a conversation's two
//! directions one after the other) is sorted by `sentTime` (stably), and each is read back in
//! pieces for its SHA-256.

mod line;
#[cfg(test)]
mod tests;

pub use line::{encode, message_uid, LineError, Message, CUSTOM_OBJECT_NAME, OBJECT_NAMES};

use crate::providers::{HandOver, HandOverError, HandOverWriter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The manifest's name beside the files.
pub const MANIFEST: &str = "manifest.json";
/// What [`Manifest::format`] says.
pub const FORMAT: &str = "imshift-rongcloud-history-bundles";
/// What [`Manifest::format_version`] says.
pub const FORMAT_VERSION: u32 = 1;
/// Files open at once, at most: enough for the build's order (one conversation's two files and
/// a few others), few enough for any process's handle limit.
pub const DEFAULT_MAX_OPEN: usize = 64;
/// The buffer of each open file.
const BUFFER: usize = 16 * 1024;
/// A file larger than this is not sorted at the end (sorting holds it in memory) and the
/// manifest says it is not in time order.
pub const SORT_LIMIT: u64 = 64 * 1024 * 1024;
/// IMLib's batch insert takes at most this many messages a call (§2.8).
pub const MAX_PER_INSERT: u32 = 500;

const PURPOSE: &str = "History for the new app version to insert into the device's local database with RongCloud IMLib's batch insert on first launch. This is NOT a server import: RongCloud has no server API to import history, nothing here reaches RongCloud's servers, and each device inserts only the bundles its app fetches (the signed-in user's user file and the group file of each of its groups).";

const INSERT: [&str; 6] = [
    "Insert at most 500 messages per batch-insert call (RongCloud recommends small batches); each line is one message.",
    "Keep sentTime (milliseconds) and messageUId as written: IMLib needs the real time and a unique UID per message, and the UID is the same in both participants' files.",
    "User files: conversationType 1 (private), targetId the other account, messageDirection 1 = sent by the file's account, 2 = received.",
    "Group files: conversationType 3, targetId the group; they carry no messageDirection: set 1 when senderUserId is the signed-in user, else 2. A group file holds the group's whole history, including what was said before a member joined: filter by join time in the app server if that matters.",
    "Set sentStatus and receivedStatus as the device should show them (sent, read): they describe the device, not the message.",
    "Not for chatrooms or ultra groups (IMLib refuses them): every conversation here is private or a group.",
];

const FILE_NAMES: &str = "user-<id>.jsonl (an account's one-to-one conversations) and group-<id>.jsonl (a group's messages) when the id is only a-z, 0-9, '_' and '-'; any other id (upper-case letters, '+', '=', …) is written as the lower-case hex of its UTF-8 bytes after '~': user~<hex>.jsonl, group~<hex>.jsonl ('~' never appears in a plain name). The account or group of each file is also listed under files.";

const LINE: &str = "One JSON object per line: conversationType (1 private, 3 group), targetId, senderUserId, messageDirection (user files only: 1 sent, 2 received), objectName, content (the content object of the objectName), sentTime (ms), messageUId.";

const UNCONFIRMED: [&str; 4] = [
    "content field names follow RongCloud's Java server SDK message classes (reference §2.6); IMLib's own names are the same as far as the reference shows",
    "duration in seconds (the SDK field is seconds; RongCloud's client docs were not checked)",
    "empty base64 thumbnails (content of RC:ImgMsg, RC:SightMsg, RC:LBSMsg): how each client shows a message without one",
    "whether IMLib's local store orders inserted messages by sentTime or by insertion: files are in time order where the manifest says so",
];

/// Which file a line goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// An account's one-to-one conversations.
    User,
    /// A group's messages.
    Group,
}

impl FileKind {
    fn prefix(self) -> &'static str {
        match self {
            FileKind::User => "user",
            FileKind::Group => "group",
        }
    }
}

/// The file of an account or group: `user-<id>.jsonl` for an id of `a-z 0-9 _ -` only, else
/// `user~<hex of the UTF-8 bytes>.jsonl` (see the module doc for why).
pub fn file_name(kind: FileKind, id: &str) -> String {
    let plain = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if plain {
        format!("{}-{id}.jsonl", kind.prefix())
    } else {
        format!("{}~{}.jsonl", kind.prefix(), hex::encode(id.as_bytes()))
    }
}

/// The account or group a bundle's file name stands for: the inverse of [`file_name`].
pub fn id_of_file_name(name: &str) -> Option<(FileKind, String)> {
    let stem = name.strip_suffix(".jsonl")?;
    for kind in [FileKind::User, FileKind::Group] {
        if let Some(id) = stem.strip_prefix(kind.prefix()) {
            if let Some(plain) = id.strip_prefix('-') {
                return (file_name(kind, plain) == name).then(|| (kind, plain.to_string()));
            }
            if let Some(h) = id.strip_prefix('~') {
                let id = String::from_utf8(hex::decode(h).ok()?).ok()?;
                return (file_name(kind, &id) == name).then_some((kind, id));
            }
        }
    }
    None
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Always false: RongCloud has no server import; these are for the device.
    pub server_import: bool,
    pub purpose: String,
    /// How the app inserts them.
    pub insert: Vec<String>,
    pub max_per_insert: u32,
    /// How a file is named from its account or group id.
    pub file_names: String,
    /// What a line holds.
    pub line: String,
    /// The objectName of custom messages, which the app registers.
    pub custom_object_name: String,
    pub encoding: String,
    /// What no RongCloud document confirms.
    pub unconfirmed: Vec<String>,
    /// Every file, by name.
    pub files: Vec<FileEntry>,
    pub totals: Totals,
    /// Canonical fields with no place in a line, by path, with how many messages had them.
    pub left_out: BTreeMap<String, u64>,
    /// Messages that could not be written (each in kept_aside.jsonl with why), by the field at
    /// fault.
    pub kept_aside: BTreeMap<String, u64>,
    /// Records of kinds the bundles do not carry, by kind.
    pub not_carried: BTreeMap<String, u64>,
    /// Why each of those kinds is not carried.
    pub not_carried_why: BTreeMap<String, String>,
}

/// One written file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub kind: FileKind,
    /// The account of a user file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The (RongCloud) group of a group file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub lines: u64,
    /// Bytes, newlines included.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// The earliest and latest sentTime in the file (ms).
    pub first_sent_time: i64,
    pub last_sent_time: i64,
    /// Lines are in sentTime order (false only for a file over [`SORT_LIMIT`]).
    pub time_ordered: bool,
    /// Lines per objectName.
    pub object_names: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub files: u64,
    pub user_files: u64,
    pub group_files: u64,
    /// Lines over all files: a one-to-one message between two accounts is two lines.
    pub lines: u64,
    pub bytes: u64,
    /// Messages written (each once, whatever its lines).
    pub messages: u64,
    pub c2c_messages: u64,
    pub group_messages: u64,
    pub kept_aside: u64,
    pub not_carried: u64,
}

/// What the writer keeps of one file while writing: counts only.
struct Stats {
    kind: FileKind,
    id: String,
    lines: u64,
    bytes: u64,
    first: i64,
    last: i64,
    /// Every line's sentTime was at least the one before.
    ordered: bool,
    objects: [u64; OBJECT_NAMES.len()],
}

/// An open file and when it was last written.
struct Handle {
    w: BufWriter<File>,
    used: u64,
}

/// What became of a pushed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Written: into one file (a group message, a message to oneself) or two.
    Written,
    /// A kind the bundles do not carry.
    NotCarried,
}

/// Why a push failed.
#[derive(Debug)]
pub enum PushError {
    /// The message cannot be a RongCloud message: keep it aside; the writer goes on.
    Line(LineError),
    /// Writing failed: the bundles are incomplete and the writer refuses further work.
    Io(io::Error),
}

/// Writes the bundles into a directory from canonical records pushed one at a time.
pub struct BundleWriter {
    dir: PathBuf,
    max_open: usize,
    open: HashMap<String, Handle>,
    tick: u64,
    /// The most files ever open at once, and how many opens there were (reopens included).
    peak_open: usize,
    opens: u64,
    files: HashMap<String, Stats>,
    c2c: u64,
    group: u64,
    left_out: BTreeMap<String, u64>,
    kept_aside: BTreeMap<String, u64>,
    not_carried: BTreeMap<String, u64>,
    failed: bool,
}

impl BundleWriter {
    /// Writes into `dir` (created if need be; files are created new, never overwritten, so use
    /// an empty directory), with at most `max_open` files open at once.
    pub fn new(dir: &Path, max_open: usize) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(BundleWriter {
            dir: dir.to_path_buf(),
            max_open: max_open.max(1),
            open: HashMap::new(),
            tick: 0,
            peak_open: 0,
            opens: 0,
            files: HashMap::new(),
            c2c: 0,
            group: 0,
            left_out: BTreeMap::new(),
            kept_aside: BTreeMap::new(),
            not_carried: BTreeMap::new(),
            failed: false,
        })
    }

    /// Files open now.
    pub fn open_files(&self) -> usize {
        self.open.len()
    }

    /// The most files that were open at once.
    pub fn peak_open(&self) -> usize {
        self.peak_open
    }

    /// How many times a file was opened (first opens and reopens).
    pub fn opens(&self) -> u64 {
        self.opens
    }

    /// Writes one canonical record into the files it belongs in.
    pub fn push(
        &mut self,
        record: &Value,
        group_ids: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Pushed, PushError> {
        if self.failed {
            return Err(PushError::Io(io::Error::other(
                "an earlier write of the RongCloud history bundles failed; the bundles are incomplete",
            )));
        }
        let m = match line::encode(record, group_ids) {
            Ok(Some(m)) => m,
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
        let written = if m.group {
            self.write(FileKind::Group, &m.to, &m.group_line(), &m)
        } else {
            self.write(FileKind::User, &m.from, &m.user_line(&m.from), &m)
                .and_then(|()| {
                    if m.to == m.from {
                        return Ok(());
                    }
                    self.write(FileKind::User, &m.to, &m.user_line(&m.to), &m)
                })
        };
        if let Err(e) = written {
            self.failed = true;
            return Err(PushError::Io(e));
        }
        if m.group {
            self.group += 1;
        } else {
            self.c2c += 1;
        }
        for f in m.left_out {
            *self.left_out.entry(f).or_default() += 1;
        }
        Ok(Pushed::Written)
    }

    fn write(&mut self, kind: FileKind, id: &str, line: &str, m: &Message) -> io::Result<()> {
        let name = file_name(kind, id);
        self.tick += 1;
        if !self.open.contains_key(&name) {
            if self.open.len() >= self.max_open {
                self.close_least_recent()?;
            }
            let path = self.dir.join(&name);
            // Appending to a file closed earlier; a new one is created new, so a name the
            // folder already holds is an error rather than history mixed into it.
            let file = if self.files.contains_key(&name) {
                OpenOptions::new().append(true).open(path)?
            } else {
                File::create_new(path)?
            };
            self.opens += 1;
            self.open.insert(
                name.clone(),
                Handle {
                    w: BufWriter::with_capacity(BUFFER, file),
                    used: 0,
                },
            );
            self.peak_open = self.peak_open.max(self.open.len());
        }
        let h = self.open.get_mut(&name).expect("opened above");
        h.used = self.tick;
        h.w.write_all(line.as_bytes())?;
        h.w.write_all(b"\n")?;
        let s = self.files.entry(name).or_insert_with(|| Stats {
            kind,
            id: id.to_string(),
            lines: 0,
            bytes: 0,
            first: m.sent_time,
            last: m.sent_time,
            ordered: true,
            objects: [0; OBJECT_NAMES.len()],
        });
        s.ordered &= s.lines == 0 || m.sent_time >= s.last;
        s.lines += 1;
        s.bytes += line.len() as u64 + 1;
        s.first = s.first.min(m.sent_time);
        s.last = s.last.max(m.sent_time);
        s.objects[m.object] += 1;
        Ok(())
    }

    fn close_least_recent(&mut self) -> io::Result<()> {
        // A scan of at most `max_open` entries: cheaper than keeping an order for every write.
        let Some(name) = self
            .open
            .iter()
            .min_by_key(|(_, h)| h.used)
            .map(|(n, _)| n.clone())
        else {
            return Ok(());
        };
        if let Some(mut h) = self.open.remove(&name) {
            h.w.flush()?;
        }
        Ok(())
    }

    /// Closes the files, puts each in time order, writes `manifest.json` and returns it.
    pub fn finish(mut self) -> io::Result<Manifest> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write of the RongCloud history bundles failed; the bundles are incomplete",
            ));
        }
        for (_, mut h) in self.open.drain() {
            h.w.flush()?;
        }
        let mut names: Vec<String> = self.files.keys().cloned().collect();
        names.sort();
        let mut files = Vec::with_capacity(names.len());
        let mut totals = Totals {
            messages: self.c2c + self.group,
            c2c_messages: self.c2c,
            group_messages: self.group,
            kept_aside: self.kept_aside.values().sum(),
            not_carried: self.not_carried.values().sum(),
            ..Totals::default()
        };
        for name in names {
            let s = self.files.remove(&name).expect("listed above");
            let path = self.dir.join(&name);
            let mut ordered = s.ordered;
            if !ordered && s.bytes <= SORT_LIMIT {
                sort_by_time(&path)?;
                ordered = true;
            }
            let (sha256, len) = digest(&path)?;
            if len != s.bytes {
                return Err(io::Error::other(format!(
                    "{name} holds {len} bytes where {} were written",
                    s.bytes
                )));
            }
            totals.files += 1;
            totals.lines += s.lines;
            totals.bytes += s.bytes;
            match s.kind {
                FileKind::User => totals.user_files += 1,
                FileKind::Group => totals.group_files += 1,
            }
            files.push(FileEntry {
                name,
                kind: s.kind,
                account: (s.kind == FileKind::User).then(|| s.id.clone()),
                group: (s.kind == FileKind::Group).then(|| s.id.clone()),
                lines: s.lines,
                bytes: s.bytes,
                sha256,
                first_sent_time: s.first,
                last_sent_time: s.last,
                time_ordered: ordered,
                object_names: OBJECT_NAMES
                    .iter()
                    .zip(s.objects)
                    .filter(|(_, n)| *n > 0)
                    .map(|(o, n)| (o.to_string(), n))
                    .collect(),
            });
        }
        let mut not_carried_why = BTreeMap::new();
        if self.not_carried.contains_key("group_event") {
            not_carried_why.insert(
                "group_event".to_string(),
                "on RongCloud a group notification is an RC:GrpNtf message whose operation names and data are the app server's own (reference §2.6 marks them UNCONFIRMED), so imshift cannot write one your app renders; the events stay in the dump for your app server".to_string(),
            );
        }
        for kind in self.not_carried.keys() {
            not_carried_why.entry(kind.clone()).or_insert_with(|| {
                "not history: the import moves it through RongCloud's API or reports it".into()
            });
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            server_import: false,
            purpose: PURPOSE.into(),
            insert: INSERT.iter().map(|s| s.to_string()).collect(),
            max_per_insert: MAX_PER_INSERT,
            file_names: FILE_NAMES.into(),
            line: LINE.into(),
            custom_object_name: CUSTOM_OBJECT_NAME.into(),
            encoding:
                "UTF-8 without byte order mark; one JSON object per line; every line ends in \\n"
                    .into(),
            unconfirmed: UNCONFIRMED.iter().map(|s| s.to_string()).collect(),
            files,
            totals,
            left_out: std::mem::take(&mut self.left_out),
            kept_aside: std::mem::take(&mut self.kept_aside),
            not_carried: std::mem::take(&mut self.not_carried),
            not_carried_why,
        };
        let mut json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
        json.push(b'\n');
        let mut w = File::create_new(self.dir.join(MANIFEST))?;
        w.write_all(&json)?;
        w.flush()?;
        Ok(manifest)
    }
}

/// Rewrites a file with its lines in `sentTime` order, ties in the order written.
fn sort_by_time(path: &Path) -> io::Result<()> {
    #[derive(Deserialize)]
    struct Time {
        #[serde(rename = "sentTime")]
        sent_time: i64,
    }
    let mut lines: Vec<(i64, String)> = Vec::new();
    for l in BufReader::new(File::open(path)?).lines() {
        let l = l?;
        let t: Time = serde_json::from_str(&l).map_err(io::Error::other)?;
        lines.push((t.sent_time, l));
    }
    lines.sort_by_key(|(t, _)| *t);
    let tmp = path.with_extension("sorting");
    let mut w = BufWriter::new(File::create(&tmp)?);
    for (_, l) in &lines {
        w.write_all(l.as_bytes())?;
        w.write_all(b"\n")?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(tmp, path)
}

/// A file's SHA-256 and length, read in pieces.
fn digest(path: &Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex::encode(h.finalize()), len))
}

/// The hand-over seam: bundles the new app inserts on the device (reference §2.8).
pub struct Bundles;

impl HandOver for Bundles {
    fn label(&self) -> &'static str {
        "RongCloud history bundles"
    }

    fn note(&self) -> &'static str {
        "RongCloud has no server API to import history. These bundles are for the new app version: on first launch it fetches the signed-in user's user-….jsonl and the group-….jsonl of each of its groups (from your app server) and inserts them into the device's local database with IMLib's batch insert, at most 500 messages a call. This is not a server import: nothing here reaches RongCloud's servers or the user's other devices. manifest.json describes the format."
    }

    fn phases(&self) -> &'static [&'static str] {
        &["c2c_history", "group_history"]
    }

    fn writer(&self, dir: &Path) -> Result<Box<dyn HandOverWriter>, String> {
        BundleWriter::new(dir, DEFAULT_MAX_OPEN)
            .map(|w| Box::new(w) as Box<dyn HandOverWriter>)
            .map_err(|e| format!("cannot write into {}: {e}", dir.display()))
    }

    /// RongCloud has no importer that pulls increments (nothing on its side reads them), and a
    /// one-to-one message has two lines, one per participant's bundle: no single line answers.
    fn line(
        &self,
        _record: &Value,
        _group_ids: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Value>, String> {
        Ok(None)
    }
}

impl HandOverWriter for BundleWriter {
    fn push(
        &mut self,
        record: &Value,
        group_ids: &dyn Fn(&str) -> Option<String>,
    ) -> Result<bool, HandOverError> {
        match BundleWriter::push(self, record, group_ids) {
            Ok(Pushed::Written) => Ok(true),
            Ok(Pushed::NotCarried) => Ok(false),
            Err(PushError::Line(e)) => Err(HandOverError::Record(e.to_string())),
            Err(PushError::Io(e)) => Err(HandOverError::Io(e.to_string())),
        }
    }

    fn finish(self: Box<Self>) -> Result<Value, String> {
        let m = BundleWriter::finish(*self).map_err(|e| e.to_string())?;
        serde_json::to_value(m).map_err(|e| e.to_string())
    }
}
