//! Staging: an uploaded file, read line by line on a blocking thread, loaded into the
//! `staged_*` tables with COPY on one transaction. Reading and loading overlap (one core
//! parses while PostgreSQL writes), memory stays at a few buffers whatever the file's size, and
//! a failure or crash rolls the whole upload back: nothing is ever half-staged.

use super::canonical::{Kind, Parsed, Refs};
use super::formats::Format;
use super::read::{Event, LineReader};
use super::validate::{GroupOrder, Index, Target};
use super::{container, Finding, Limits};
use crate::model::{MigrationId, UploadId};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Postgres, Transaction};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A COPY batch is sent when its buffer passes this size.
const BATCH_BYTES: usize = 1 << 20;
/// Room for the row that crosses the limit (a line may be up to 64 KB, or more).
const SLACK: usize = 128 * 1024;

/// The staging table of each kind and its columns after the common four.
pub fn table(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Account => ("staged_accounts", "account_id, record, raw"),
        Kind::Friend => ("staged_friends", "owner, friend, record, raw"),
        Kind::Block => ("staged_blocks", "owner, blocked, record, raw"),
        Kind::Group => ("staged_groups", "group_id, owner, group_type, record, raw"),
        Kind::Member => (
            "staged_members",
            "group_id, account, role, joined_at, record, raw",
        ),
        Kind::Message => (
            "staged_messages",
            "msg_id, conv, from_id, to_id, sent_at, ident, body_bytes, record, raw",
        ),
        Kind::GroupEvent => (
            "staged_group_events",
            "group_id, actor, target, at, record, raw",
        ),
        Kind::Conversation => ("staged_conversations", "owner, conv, peer, record, raw"),
    }
}

/// Every table holding rows of an upload (keyed by `upload_id`): the staged records, and what
/// staging and validation wrote about them.
pub fn upload_tables() -> impl Iterator<Item = &'static str> {
    Kind::ALL.iter().map(|k| table(*k).0).chain([
        "staged_holds",
        "staged_pending",
        "staged_idents",
        "staged_phase_keys",
        "dump_findings",
        "dump_findings_not_kept",
    ])
}

pub fn copy_statement(kind: Kind) -> String {
    let (t, cols) = table(kind);
    format!("COPY {t} (upload_id, ord, file_no, line, {cols}) FROM STDIN")
}

/// The 64-bit identity of a message (id, from, to, sent_at), stable across versions.
pub fn message_ident(id: &str, from: &str, to: &str, sent_at: i64) -> i64 {
    let mut h = Sha256::new();
    for part in [id, from, to] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.update(sent_at.to_be_bytes());
    let d = h.finalize();
    i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Appends one field in COPY text format.
pub fn field(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn sep(out: &mut Vec<u8>) {
    out.push(b'\t');
}

fn opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => field(out, s),
        None => out.extend_from_slice(b"\\N"),
    }
}

fn num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// One staged row in COPY text format, ending in a newline.
pub fn encode_row(out: &mut Vec<u8>, upload: &str, ord: u32, file_no: u32, line: u64, p: &Parsed) {
    out.extend_from_slice(upload.as_bytes());
    sep(out);
    num(out, ord);
    sep(out);
    num(out, file_no);
    sep(out);
    num(out, line);
    sep(out);
    match &p.refs {
        Refs::Account { id } => field(out, id),
        Refs::Friend { owner, friend } => {
            field(out, owner);
            sep(out);
            field(out, friend);
        }
        Refs::Block { owner, blocked } => {
            field(out, owner);
            sep(out);
            field(out, blocked);
        }
        Refs::Group {
            id,
            owner,
            group_type,
        } => {
            field(out, id);
            sep(out);
            field(out, owner);
            sep(out);
            field(out, group_type);
        }
        Refs::Member {
            group,
            account,
            role,
            joined_at,
        } => {
            field(out, group);
            sep(out);
            field(out, account);
            sep(out);
            field(out, role);
            sep(out);
            match joined_at {
                Some(t) => num(out, *t),
                None => out.extend_from_slice(b"\\N"),
            }
        }
        Refs::Message {
            id,
            group,
            from,
            to,
            sent_at,
            body_bytes,
        } => {
            field(out, id);
            sep(out);
            out.extend_from_slice(if *group { b"group" } else { b"c2c" });
            sep(out);
            field(out, from);
            sep(out);
            field(out, to);
            sep(out);
            num(out, *sent_at);
            sep(out);
            num(out, message_ident(id, from, to, *sent_at));
            sep(out);
            num(out, (*body_bytes).min(i32::MAX as usize) as i32);
        }
        Refs::GroupEvent {
            group,
            actor,
            target,
            at,
        } => {
            field(out, group);
            sep(out);
            opt(out, actor.as_deref());
            sep(out);
            opt(out, target.as_deref());
            sep(out);
            num(out, *at);
        }
        Refs::Conversation { owner, peer, group } => {
            field(out, owner);
            sep(out);
            out.extend_from_slice(if *group { b"group" } else { b"c2c" });
            sep(out);
            field(out, peer);
        }
    }
    sep(out);
    field(out, &p.record);
    sep(out);
    opt(out, p.raw.as_deref());
    out.push(b'\n');
}

/// A finding in COPY text format for `dump_findings`.
pub fn encode_finding(
    out: &mut Vec<u8>,
    migration: &str,
    upload: &str,
    scope: &str,
    at: Option<(Kind, u32)>,
    f: &Finding,
) {
    for (i, v) in [migration, upload, scope].iter().enumerate() {
        if i > 0 {
            sep(out);
        }
        field(out, v);
    }
    sep(out);
    opt(out, at.map(|(k, _)| k.as_str()));
    sep(out);
    match at {
        Some((_, ord)) => num(out, ord),
        None => out.extend_from_slice(b"\\N"),
    }
    sep(out);
    field(out, f.code);
    sep(out);
    field(
        out,
        match f.severity {
            super::Severity::Error => "error",
            super::Severity::Warning => "warning",
        },
    );
    sep(out);
    field(out, &f.file);
    sep(out);
    num(out, f.line);
    sep(out);
    field(out, &f.message);
    sep(out);
    field(out, &f.excerpt);
    sep(out);
    opt(out, f.converted.as_deref());
    out.push(b'\n');
}

pub const PENDING_COPY: &str = "COPY staged_pending (upload_id, ord) FROM STDIN";

pub const FINDINGS_COPY: &str = "COPY dump_findings (migration_id, upload_id, scope, kind, ord, code, severity, file, line, message, excerpt, converted) FROM STDIN";

/// Sends one COPY batch on the transaction's connection.
pub async fn copy(
    conn: &mut PgConnection,
    statement: &str,
    data: &[u8],
) -> Result<(), sqlx::Error> {
    let mut c = conn.copy_in_raw(statement).await?;
    if let Err(e) = c.send(data).await {
        let _ = c.abort(e.to_string()).await;
        return Err(e);
    }
    c.finish().await.map(|_| ())
}

/// Counts of what was staged: by kind, and messages by conversation type and body type
/// (`message.c2c`, `message.group`, `message.text`, …).
pub type Counts = BTreeMap<String, u64>;

/// Parts the message identities are spread over (by the hash's top byte).
pub const IDENT_PARTS: usize = 256;
/// ident (i64) and ord (i32), big-endian.
pub const IDENT_ENTRY: usize = 12;

/// Message identities on their way to `staged_idents`: appended to one scratch file per part
/// while reading (memory: a small buffer per part), sorted one part at a time at the end.
struct IdentSpill {
    dir: PathBuf,
    parts: Vec<std::io::BufWriter<std::fs::File>>,
}

impl IdentSpill {
    fn new(dir: PathBuf) -> std::io::Result<Self> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let parts = (0..IDENT_PARTS)
            .map(|p| {
                std::fs::File::create(dir.join(format!("{p}")))
                    .map(|f| std::io::BufWriter::with_capacity(8 * 1024, f))
            })
            .collect::<Result<_, _>>()?;
        Ok(IdentSpill { dir, parts })
    }

    fn push(&mut self, ident: i64, ord: u32) -> std::io::Result<()> {
        use std::io::Write;
        let part = (ident as u64 >> 56) as usize;
        let w = &mut self.parts[part];
        w.write_all(&ident.to_be_bytes())?;
        w.write_all(&ord.to_be_bytes())
    }

    /// Each part's entries, sorted by (ident, ord).
    fn finish(mut self, mut each: impl FnMut(usize, Vec<u8>) -> Result<(), ()>) -> Result<(), ()> {
        use std::io::Write;
        for w in &mut self.parts {
            w.flush().map_err(|_| ())?;
        }
        self.parts.clear();
        for p in 0..IDENT_PARTS {
            let bytes = std::fs::read(self.dir.join(format!("{p}"))).map_err(|_| ())?;
            if bytes.is_empty() {
                continue;
            }
            let mut entries: Vec<[u8; IDENT_ENTRY]> = bytes
                .chunks_exact(IDENT_ENTRY)
                .map(|c| c.try_into().expect("exact chunks"))
                .collect();
            // Big-endian bytes sort as (ident as unsigned, ord); the merge only needs equal
            // idents adjacent.
            entries.sort_unstable();
            each(p, entries.concat())?;
        }
        Ok(())
    }
}

impl Drop for IdentSpill {
    fn drop(&mut self) {
        self.parts.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the reading thread hands the loader.
enum Msg {
    Rows(Kind, Vec<u8>),
    Findings(Vec<u8>),
    /// Findings past the per-rule cap: (code, severity, how many), counted, not stored.
    NotKept(Vec<(&'static str, &'static str, u64)>),
    Pending(Vec<u8>),
    Idents(usize, Vec<u8>),
    /// Messages per import phase and key (sender, group), added to `staged_phase_keys`.
    PhaseKeys(Vec<(&'static str, String, i64)>),
    File {
        file_no: u32,
        name: String,
        format: Format,
    },
}

/// Live progress, shared with the job that reports it.
#[derive(Default)]
pub struct Progress {
    /// Bytes of the uploaded file consumed so far.
    pub read_bytes: Arc<AtomicU64>,
    pub records: AtomicU64,
    pub counts: Mutex<Counts>,
}

/// How a staging run ended.
#[derive(Debug, Default)]
pub struct Staged {
    pub records: u64,
    pub rejected_lines: u64,
    pub counts: Counts,
    pub errors: u64,
    pub warnings: u64,
}

const BODY_TYPES: [&str; 8] = [
    "text", "image", "audio", "video", "file", "location", "face", "custom",
];

/// Running counts, cheap to bump per record.
#[derive(Default)]
struct Tally {
    kinds: [u64; 8],
    c2c: u64,
    group: u64,
    bodies: [u64; 8],
}

impl Tally {
    fn counts(&self) -> Counts {
        let mut c = Counts::new();
        for (k, n) in Kind::ALL.iter().zip(self.kinds) {
            if n > 0 {
                c.insert(k.as_str().into(), n);
            }
        }
        for (k, n) in [("message.c2c", self.c2c), ("message.group", self.group)] {
            if n > 0 {
                c.insert(k.into(), n);
            }
        }
        for (t, n) in BODY_TYPES.iter().zip(self.bodies) {
            if n > 0 {
                c.insert(format!("message.{t}"), n);
            }
        }
        c
    }
}

/// The reading side: runs on a blocking thread and sends COPY-ready batches. It also checks
/// each message against the accounts, groups and memberships known so far (this upload's and
/// the migration's earlier ones): a message that passes never needs reading again; one that
/// does not (yet) is listed as pending for the validate job.
struct Reader {
    upload: String,
    migration: String,
    tx: mpsc::Sender<Msg>,
    bufs: BTreeMap<Kind, Vec<u8>>,
    findings: Vec<u8>,
    pending: Vec<u8>,
    ord: u32,
    /// The stream being read, for the findings the reader makes itself.
    file_name: String,
    tally: Tally,
    index: Index,
    target: Option<Target>,
    order: GroupOrder,
    idents: Option<IdentSpill>,
    /// One-to-one messages by sender and group messages by group, counted as they are read
    /// for the import's preflight (`dumps::counts`), so nothing scans the message table for
    /// them; handed on whenever [`PHASE_KEYS_MAX`] keys wait, so memory stays bounded.
    msg_keys: [HashMap<String, i64>; 2],
    progress: Arc<Progress>,
    errors: u64,
    warnings: u64,
}

/// Keys counted in memory before their counts are added to the table.
const PHASE_KEYS_MAX: usize = 65_536;

impl Reader {
    /// Hands the message counts per phase and key on to be added to `staged_phase_keys`.
    fn flush_msg_keys(&mut self) -> Result<(), ()> {
        let mut out = Vec::new();
        for (phase, map) in super::counts::MESSAGE_PHASES
            .iter()
            .zip(self.msg_keys.iter_mut())
        {
            out.extend(map.drain().map(|(k, n)| (*phase, k, n)));
        }
        if out.is_empty() {
            return Ok(());
        }
        self.send(Msg::PhaseKeys(out))
    }

    fn send(&self, m: Msg) -> Result<(), ()> {
        self.tx.blocking_send(m).map_err(|_| ())
    }

    /// Encodes `findings` (emptying it) and sends them once a batch is full: a file with
    /// millions of findings never holds more than a batch.
    fn flush_findings(&mut self, findings: &mut Vec<Finding>) -> Result<(), ()> {
        for f in findings.drain(..) {
            match f.severity {
                super::Severity::Error => self.errors += 1,
                super::Severity::Warning => self.warnings += 1,
            }
            encode_finding(
                &mut self.findings,
                &self.migration,
                &self.upload,
                "line",
                None,
                &f,
            );
        }
        if self.findings.len() >= BATCH_BYTES / 4 {
            let data = std::mem::take(&mut self.findings);
            self.send(Msg::Findings(data))?;
        }
        Ok(())
    }

    fn record(&mut self, file_no: u32, line: u64, p: Parsed) -> Result<(), ()> {
        match &p.refs {
            Refs::Account { id } => self.index.add_account(id),
            Refs::Group { id, owner, .. } => self.index.add_group(id, owner),
            Refs::Member {
                group,
                account,
                role,
                joined_at,
            } => self.index.add_member(group, account, role, *joined_at),
            Refs::Message {
                id,
                group,
                from,
                to,
                sent_at,
                ..
            } => {
                if let Some(spill) = self.idents.as_mut() {
                    spill
                        .push(message_ident(id, from, to, *sent_at), self.ord)
                        .map_err(|_| ())?;
                }
                if *group {
                    self.tally.group += 1;
                } else {
                    self.tally.c2c += 1;
                }
                // The phase's key: one-to-one history by sender, group history by group.
                let (map, key) = if *group {
                    (&mut self.msg_keys[1], to)
                } else {
                    (&mut self.msg_keys[0], from)
                };
                match map.get_mut(key.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        map.insert(key.clone(), 1);
                        if self.msg_keys[0].len() + self.msg_keys[1].len() >= PHASE_KEYS_MAX {
                            self.flush_msg_keys()?;
                        }
                    }
                }
                if let Some(i) = p
                    .body_type
                    .and_then(|t| BODY_TYPES.iter().position(|b| *b == t))
                {
                    self.tally.bodies[i] += 1;
                }
                if self.target.is_some_and(|t| t.strict_group_order()) {
                    self.order.observe(&p.refs, &self.file_name, line);
                }
                if !self.index.check(&p.refs, self.target).is_empty() {
                    use std::io::Write;
                    let _ = writeln!(self.pending, "{}\t{}", self.upload, self.ord);
                    if self.pending.len() >= BATCH_BYTES / 4 {
                        let data = std::mem::take(&mut self.pending);
                        self.send(Msg::Pending(data))?;
                    }
                }
            }
            _ => {}
        }
        if let Some(i) = Kind::ALL.iter().position(|k| *k == p.kind) {
            self.tally.kinds[i] += 1;
        }
        let buf = self
            .bufs
            .entry(p.kind)
            .or_insert_with(|| Vec::with_capacity(BATCH_BYTES + SLACK));
        encode_row(buf, &self.upload, self.ord, file_no, line, &p);
        self.ord += 1;
        if buf.len() >= BATCH_BYTES {
            // Every batch buffer has the same capacity, so the allocator reuses freed ones
            // instead of growing: memory stays flat however long the file.
            let data = std::mem::replace(buf, Vec::with_capacity(BATCH_BYTES + SLACK));
            self.send(Msg::Rows(p.kind, data))?;
        }
        if self.ord.is_multiple_of(16384) {
            self.progress
                .records
                .store(self.ord as u64, Ordering::Relaxed);
            *self
                .progress
                .counts
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = self.tally.counts();
        }
        Ok(())
    }
}

/// Why staging stopped before the end.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The file cannot be read at all (missing, too large, not a zip it claims to be).
    #[error("{}", .0.message)]
    Unreadable(Finding),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("staging was stopped")]
    Stopped,
    /// Reading stopped before the end for a passing reason (scratch space); try again.
    #[error(
        "reading stopped before the end of the file (scratch space next to the upload failed)"
    )]
    Interrupted,
}

pub struct StageInput<'a> {
    pub migration_id: MigrationId,
    pub upload_id: UploadId,
    /// The name findings carry (the uploaded file's name, not the path on disk).
    pub name: &'a str,
    pub path: PathBuf,
    pub format: Option<Format>,
    pub max_bytes: u64,
    /// The target whose rules messages are checked against.
    pub target: Option<Target>,
    /// What the migration's other staged uploads hold (accounts, groups, memberships).
    pub known: Index,
    /// Line length, decompression and findings-per-rule limits.
    pub limits: Limits,
}

/// Reads the file and loads every record and line finding on `tx`. `keep_going` is asked
/// between batches; returning false stops (the caller rolls back).
pub async fn stage(
    tx: &mut Transaction<'_, Postgres>,
    input: StageInput<'_>,
    progress: Arc<Progress>,
    mut keep_going: impl FnMut() -> bool,
) -> Result<Staged, StageError> {
    let (sender, mut rx) = mpsc::channel::<Msg>(8);
    let upload = input.upload_id.to_string();
    let migration = input.migration_id.to_string();
    let name = input.name.to_string();
    let path = input.path.clone();
    let (format, max_bytes, target, limits) =
        (input.format, input.max_bytes, input.target, input.limits);
    let index = input.known;
    let idents = IdentSpill::new(input.path.with_extension("idents")).map_err(|e| {
        StageError::Unreadable(Finding {
            code: "file.unreadable",
            severity: super::Severity::Error,
            file: input.name.to_string(),
            line: 0,
            message: format!("no scratch space next to the upload: {e}"),
            excerpt: String::new(),
            converted: None,
        })
    })?;
    let thread_progress = progress.clone();
    let reading = tokio::task::spawn_blocking(move || {
        read_file(
            &path,
            &name,
            format,
            max_bytes,
            limits,
            Reader {
                upload,
                migration,
                tx: sender,
                bufs: BTreeMap::new(),
                findings: Vec::new(),
                pending: Vec::new(),
                ord: 0,
                tally: Tally::default(),
                index,
                target,
                idents: Some(idents),
                msg_keys: Default::default(),
                order: GroupOrder::default(),
                file_name: String::new(),
                progress: thread_progress,
                errors: 0,
                warnings: 0,
            },
        )
    });
    let upload_id = input.upload_id;
    let mut statements: BTreeMap<Kind, String> = BTreeMap::new();
    let mut stopped = false;
    while let Some(msg) = rx.recv().await {
        if !keep_going() {
            stopped = true;
            break;
        }
        match msg {
            Msg::Rows(kind, data) => {
                let st = statements
                    .entry(kind)
                    .or_insert_with(|| copy_statement(kind));
                copy(tx, st, &data).await?;
            }
            Msg::Findings(data) => copy(tx, FINDINGS_COPY, &data).await?,
            Msg::NotKept(counts) => {
                for (code, severity, n) in counts {
                    sqlx::query(
                        "INSERT INTO dump_findings_not_kept (upload_id, migration_id, code, severity, count)
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(upload_id)
                    .bind(input.migration_id)
                    .bind(code)
                    .bind(severity)
                    .bind(n as i64)
                    .execute(&mut **tx)
                    .await?;
                }
            }
            Msg::Pending(data) => copy(tx, PENDING_COPY, &data).await?,
            Msg::PhaseKeys(counts) => super::counts::add_keys(tx, upload_id, counts).await?,
            Msg::Idents(part, data) => {
                sqlx::query(
                    "INSERT INTO staged_idents (upload_id, part, data) VALUES ($1, $2, $3)",
                )
                .bind(upload_id)
                .bind(part as i16)
                .bind(data)
                .execute(&mut **tx)
                .await?;
            }
            Msg::File {
                file_no,
                name,
                format,
            } => {
                sqlx::query(
                    "INSERT INTO dump_files (upload_id, file_no, name, format) VALUES ($1, $2, $3, $4)",
                )
                .bind(upload_id)
                .bind(file_no as i32)
                .bind(&name)
                .bind(format.id())
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    // Dropping the receiver makes the reading thread stop at its next send.
    drop(rx);
    let outcome = reading.await.map_err(|e| {
        StageError::Unreadable(Finding {
            code: "file.unreadable",
            severity: super::Severity::Error,
            file: input.name.to_string(),
            line: 0,
            message: format!("reading {} stopped: {e}", input.name),
            excerpt: String::new(),
            converted: None,
        })
    })?;
    if stopped {
        return Err(StageError::Stopped);
    }
    let staged = outcome
        .map_err(StageError::Unreadable)?
        .ok_or(StageError::Interrupted)?;
    // Messages were counted per phase and key as they were read; the other kinds' tables are
    // small next to them, and are counted here, on this transaction's fresh rows.
    super::counts::count_kinds(tx, &[upload_id], super::counts::ALL_BUT_MESSAGES).await?;
    progress.records.store(staged.records, Ordering::Relaxed);
    *progress.counts.lock().unwrap_or_else(|p| p.into_inner()) = staged.counts.clone();
    Ok(staged)
}

/// Why the reading thread stopped early.
enum Halt {
    /// The loader went away (stopped or failed); what was read is rolled back anyway.
    Closed,
    /// The file is damaged: stage none of it.
    Damaged(Finding),
}

impl From<()> for Halt {
    fn from((): ()) -> Self {
        Halt::Closed
    }
}

/// The blocking half. Lines that cannot be read are findings and the rest is staged; a file
/// whose compression is damaged, or that expands past the limits, is refused whole, since
/// what follows is lost. Findings are sent as they are found, and past the per-rule cap only
/// counted. `Ok(None)`: it stopped early (the loader went away, or scratch space failed).
fn read_file(
    path: &Path,
    name: &str,
    format: Option<Format>,
    max_bytes: u64,
    limits: Limits,
    mut r: Reader,
) -> Result<Option<Staged>, Finding> {
    let mut lines = LineReader::new(limits);
    let mut file_no = 0u32;
    let read = r.progress.read_bytes.clone();
    let result = container::read_streams(path, name, max_bytes, &limits, read, |entry, reader| {
        let mut failed = false;
        r.file_name = entry.to_string();
        let detected = lines.read(entry, reader, format, |event| {
            failed = match event {
                Event::Record(line, p) => r.record(file_no, line, p),
                Event::Findings(f) => r.flush_findings(f),
            }
            .is_err();
            !failed
        });
        if failed {
            return Err(Halt::Closed);
        }
        if let Some(f) = lines.stopped.take() {
            // The limit's message names the file already.
            let message = if f.code.starts_with("decompress.") {
                format!("{}; nothing of this upload was staged.", f.message)
            } else {
                format!(
                    "{}: the compressed data is damaged ({}); nothing of this upload was staged. Export or copy the file again.",
                    f.file, f.message
                )
            };
            return Err(Halt::Damaged(Finding { message, ..f }));
        }
        r.send(Msg::File {
            file_no,
            name: entry.to_string(),
            format: detected,
        })?;
        r.flush_findings(&mut lines.findings)?;
        file_no += 1;
        Ok(())
    })?;
    let container_findings = match result {
        Ok(f) => f,
        Err(Halt::Closed) => return Ok(None),
        Err(Halt::Damaged(f)) => return Err(f),
    };
    for f in container_findings
        .into_iter()
        .chain(std::mem::take(&mut r.order).findings(r.target.map_or("the target", |t| t.label())))
    {
        lines.add(f);
    }
    let _ = r.flush_findings(&mut lines.findings);
    let not_kept: Vec<_> = lines
        .cap
        .not_kept()
        .iter()
        .map(|(code, n)| {
            let severity = match super::severity_of(code) {
                super::Severity::Error => {
                    r.errors += n;
                    "error"
                }
                super::Severity::Warning => {
                    r.warnings += n;
                    "warning"
                }
            };
            (*code, severity, *n)
        })
        .collect();
    if !not_kept.is_empty() && r.send(Msg::NotKept(not_kept)).is_err() {
        return Ok(None);
    }
    if r.flush_msg_keys().is_err() {
        return Ok(None);
    }
    for (kind, buf) in std::mem::take(&mut r.bufs) {
        if !buf.is_empty() && r.send(Msg::Rows(kind, buf)).is_err() {
            return Ok(None);
        }
    }
    if let Some(spill) = r.idents.take() {
        if spill
            .finish(|p, data| r.send(Msg::Idents(p, data)))
            .is_err()
        {
            return Ok(None);
        }
    }
    for msg in [
        Msg::Findings(std::mem::take(&mut r.findings)),
        Msg::Pending(std::mem::take(&mut r.pending)),
    ] {
        let empty = match &msg {
            Msg::Findings(d) | Msg::Pending(d) => d.is_empty(),
            _ => true,
        };
        if !empty && r.send(msg).is_err() {
            return Ok(None);
        }
    }
    Ok(Some(Staged {
        records: r.ord as u64,
        rejected_lines: lines.rejected_lines,
        counts: r.tally.counts(),
        errors: r.errors,
        warnings: r.warnings,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_fields_escape_what_copy_reads_specially() {
        let mut out = Vec::new();
        field(&mut out, "a\\b\tc\nd\re");
        assert_eq!(out, b"a\\\\b\\tc\\nd\\re");
        let mut out = Vec::new();
        field(&mut out, r#"{"text":"line\nbreak"}"#);
        assert_eq!(out, br#"{"text":"line\\nbreak"}"#);
    }

    #[test]
    fn message_identity_is_stable_and_length_prefixed() {
        assert_eq!(
            message_ident("m1", "a", "b", 1),
            message_ident("m1", "a", "b", 1)
        );
        assert_ne!(
            message_ident("m1", "ab", "c", 1),
            message_ident("m1", "a", "bc", 1)
        );
        assert_ne!(
            message_ident("m1", "a", "b", 1),
            message_ident("m1", "a", "b", 2)
        );
    }
}
