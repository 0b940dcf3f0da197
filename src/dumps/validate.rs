//! Validation across records (endpoints exist, one owner per group, senders who were not
//! members) and the target's own rules, on top of the line checks of [`super::read`].
//!
//! [`Index`] holds what the cross-record rules need — accounts, groups and memberships, never
//! messages — and [`Index::check`] judges one record. `imshift validate` ([`Validator`]) and
//! the console's validate job (`super::check`) both use them, so a dump gets the same verdict
//! on the command line and in the console.

use super::canonical::{Kind, Refs};
use super::formats::Format;
use super::read::{Event, LineReader};
use super::{container, severity_of, Finding, Limits, Report, Severity};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

/// A target whose rules apply on top of the format's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Tencent,
}

impl Target {
    pub fn for_migration(target: crate::model::TargetKind) -> Option<Target> {
        match target {
            crate::model::TargetKind::Tencent => Some(Target::Tencent),
            _ => None,
        }
    }
}

/// Tencent IM refuses message JSON over 8 KB (80002 / 93000); the body is most of it.
const TENCENT_MAX_BODY_BYTES: usize = 8 * 1024;

/// A problem with one record: its code and what exactly is wrong.
pub type Problem = (&'static str, String);

/// What the cross-record rules look things up in. Add accounts and groups first, then members
/// (a member's claim to own a group is judged against the group).
#[derive(Default)]
pub struct Index {
    accounts: HashSet<String>,
    /// group → owner
    groups: HashMap<String, String>,
    /// (group, account) → joined_at
    members: HashMap<(String, String), Option<i64>>,
}

impl Index {
    pub fn add_account(&mut self, id: &str) {
        self.accounts.insert(id.to_string());
    }

    pub fn add_group(&mut self, id: &str, owner: &str) {
        self.groups.insert(id.to_string(), owner.to_string());
    }

    /// A member record that claims ownership wrongly makes nobody a member (it is rejected).
    pub fn add_member(&mut self, group: &str, account: &str, role: &str, joined_at: Option<i64>) {
        if role != "owner" || self.groups.get(group).map(String::as_str) == Some(account) {
            self.members
                .insert((group.to_string(), account.to_string()), joined_at);
        }
    }

    fn need_account(&self, field: &str, id: &str, problems: &mut Vec<Problem>) {
        if !self.accounts.contains(id) {
            problems.push((
                "ref.account_missing",
                format!("`{field}` = {id:?} is not an account in the dump"),
            ));
        }
    }

    fn need_group(&self, field: &str, id: &str, problems: &mut Vec<Problem>) -> Option<&str> {
        let owner = self.groups.get(id).map(String::as_str);
        if owner.is_none() {
            problems.push((
                "ref.group_missing",
                format!("`{field}` = {id:?} is not a group in the dump"),
            ));
        }
        owner
    }

    /// The cross-record and target rules for one record (duplicates are found by the caller,
    /// which knows the order records arrived in).
    pub fn check(&self, refs: &Refs, target: Option<Target>) -> Vec<Problem> {
        let mut problems = vec![];
        let p = &mut problems;
        match refs {
            Refs::Account { .. } => {}
            Refs::Friend { owner, friend } => {
                self.need_account("owner", owner, p);
                self.need_account("friend", friend, p);
            }
            Refs::Block { owner, blocked } => {
                self.need_account("owner", owner, p);
                self.need_account("blocked", blocked, p);
            }
            Refs::Group { owner, .. } => self.need_account("owner", owner, p),
            Refs::Member {
                group,
                account,
                role,
                ..
            } => {
                self.need_account("account", account, p);
                if let Some(owner) = self.need_group("group", group, p) {
                    if role == "owner" && owner != account {
                        p.push((
                            "group.owner_conflict",
                            format!("{account:?} is marked owner of {group:?}, whose owner is {owner:?}"),
                        ));
                    }
                }
            }
            Refs::Message {
                group,
                from,
                to,
                sent_at,
                ..
            } => {
                self.need_account("from", from, p);
                if *group {
                    if let Some(owner) = self.need_group("to", to, p) {
                        let joined = self.members.get(&(to.clone(), from.clone()));
                        let member = owner == from
                            || joined.is_some_and(|j| j.is_none_or(|t| t <= *sent_at));
                        if !member {
                            p.push((
                                "message.sender_not_member",
                                format!("{from:?} was not a member of {to:?} at {sent_at}"),
                            ));
                        }
                    }
                } else {
                    self.need_account("to", to, p);
                }
            }
            Refs::GroupEvent {
                group,
                actor,
                target,
                ..
            } => {
                self.need_group("group", group, p);
                for (f, v) in [("actor", actor), ("target", target)] {
                    if let Some(v) = v {
                        self.need_account(f, v, p);
                    }
                }
            }
            Refs::Conversation { owner, peer, group } => {
                self.need_account("owner", owner, p);
                if *group {
                    self.need_group("peer", peer, p);
                } else {
                    self.need_account("peer", peer, p);
                }
            }
        }
        if let Some(Target::Tencent) = target {
            tencent_rules(refs, p);
        }
        problems
    }
}

fn tencent_rules(refs: &Refs, problems: &mut Vec<Problem>) {
    use crate::providers::tencent::convert::{check_group_id, check_user_id};
    let user = |field: &str, id: &str, problems: &mut Vec<Problem>| {
        if let Err(why) = check_user_id(id) {
            problems.push((
                "target.user_id",
                format!("`{field}` = {id:?}: Tencent IM UserID rule: {why}"),
            ));
        }
    };
    match refs {
        Refs::Account { id } => user("id", id, problems),
        Refs::Group { id, group_type, .. } => {
            if let Err(why) = check_group_id(id) {
                problems.push((
                    "target.group_id",
                    format!("`id` = {id:?}: Tencent IM GroupId rule: {why}"),
                ));
            }
            if group_type == "broadcast" {
                problems.push(("target.group_type", "a broadcast group becomes an AVChatRoom, which Tencent IM cannot import (error 10007): create it live after the move, without history".into()));
            }
        }
        Refs::Message { body_bytes, .. } if *body_bytes > TENCENT_MAX_BODY_BYTES => {
            problems.push((
                "target.message_size",
                format!(
                "the body is {body_bytes} bytes; Tencent IM takes at most 8 KB per message (80002)"
            ),
            ))
        }
        _ => {}
    }
}

/// Group history as Tencent must take it: strictly increasing send times in seconds. Watches
/// each group's messages in the order they are read (exports write them in time order) and
/// reports, once per group, how many share a second with the one before and so will move.
#[derive(Default)]
pub struct GroupOrder {
    groups: HashMap<String, GroupSeen>,
}

struct GroupSeen {
    /// The second the last message will be sent at.
    last: i64,
    /// Messages that move.
    moved: u64,
    /// Where the first one that moves is.
    first: Option<(String, u64)>,
}

impl GroupOrder {
    pub fn observe(&mut self, refs: &Refs, file: &str, line: u64) {
        let Refs::Message {
            group: true,
            to,
            sent_at,
            ..
        } = refs
        else {
            return;
        };
        let secs = sent_at.div_euclid(1000);
        match self.groups.get_mut(to) {
            None => {
                self.groups.insert(
                    to.clone(),
                    GroupSeen {
                        last: secs,
                        moved: 0,
                        first: None,
                    },
                );
            }
            Some(g) => {
                if secs <= g.last {
                    g.moved += 1;
                    g.first.get_or_insert_with(|| (file.to_string(), line));
                    g.last += 1;
                } else {
                    g.last = secs;
                }
            }
        }
    }

    /// One warning per group whose history will move.
    pub fn findings(self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .groups
            .into_iter()
            .filter_map(|(g, seen)| {
                let moved = seen.moved;
                let (file, line) = seen.first?;
                Some(finding(
                    Kind::Message,
                    &file,
                    line,
                    (
                        "target.group_order",
                        format!("{moved} messages of group {g:?} share a second with an earlier one; Tencent IM takes each group's history in strictly increasing seconds, so they will be sent up to {moved} s later, in order"),
                    ),
                ))
            })
            .collect();
        out.sort_by(|a, b| (a.file.as_str(), a.line).cmp(&(b.file.as_str(), b.line)));
        out
    }
}

/// The finding for a problem of the record at `file:line` of `kind`.
pub fn finding(kind: Kind, file: &str, line: u64, (code, message): Problem) -> Finding {
    Finding {
        code,
        severity: severity_of(code),
        file: file.to_string(),
        line,
        message: format!("{}: {message}", kind.as_str()),
        excerpt: String::new(),
    }
}

struct Seen {
    kind: Kind,
    refs: Refs,
    file: usize,
    line: u64,
    rejected: bool,
}

/// The whole-dump validator of `imshift validate`: keeps every record's references in memory
/// (the console's ingest keeps them in PostgreSQL instead), and of the findings the first
/// [`Limits::findings_per_rule`] of each rule, without excerpts (the report prints none).
#[derive(Default)]
pub struct Validator {
    target: Option<Target>,
    files: Vec<String>,
    records: Vec<Seen>,
    reader: LineReader,
    counts: BTreeMap<String, u64>,
    order: GroupOrder,
}

impl Validator {
    pub fn new(target: Option<Target>) -> Self {
        Self::with_limits(target, Limits::default())
    }

    pub fn with_limits(target: Option<Target>, limits: Limits) -> Self {
        let mut reader = LineReader::new(limits);
        reader.excerpts = false;
        Self {
            target,
            reader,
            ..Default::default()
        }
    }

    /// Reads one stream of canonical lines.
    pub fn read(&mut self, name: &str, reader: &mut dyn BufRead) {
        self.read_as(name, reader, Some(Format::Canonical));
    }

    /// Reads one stream in `format` (`None`: tell from its first line).
    pub fn read_as(&mut self, name: &str, reader: &mut dyn BufRead, format: Option<Format>) {
        let file = self.files.len();
        self.files.push(name.to_string());
        let (records, counts, order) = (&mut self.records, &mut self.counts, &mut self.order);
        let tencent = self.target == Some(Target::Tencent);
        self.reader.read(name, reader, format, |event| {
            // Findings stay with the reader (capped per rule) until the report.
            if let Event::Record(line, p) = event {
                *counts.entry(p.kind.as_str().into()).or_default() += 1;
                if tencent {
                    order.observe(&p.refs, name, line);
                }
                records.push(Seen {
                    kind: p.kind,
                    refs: p.refs,
                    file,
                    line,
                    rejected: false,
                });
            }
            true
        });
    }

    /// Adds a finding about a whole file (a container's), under the per-rule cap.
    pub fn add(&mut self, f: Finding) {
        self.reader.add(f);
    }

    /// The cross-record and target checks, then the report.
    pub fn finish(mut self) -> Report {
        let files = std::mem::take(&mut self.files);
        let mut findings = std::mem::take(&mut self.reader.findings);
        let cap = &mut self.reader.cap;
        let mut index = Index::default();
        // Accounts and groups, with duplicates (the later line wins).
        let mut first_at: HashMap<(Kind, String), usize> = HashMap::new();
        for i in 0..self.records.len() {
            let (key, code) = match &self.records[i].refs {
                Refs::Account { id } => {
                    index.add_account(id);
                    (id.clone(), "account.duplicate")
                }
                Refs::Group { id, owner, .. } => {
                    index.add_group(id, owner);
                    (id.clone(), "group.duplicate")
                }
                _ => continue,
            };
            let kind = self.records[i].kind;
            if let Some(prev) = first_at.insert((kind, key.clone()), i) {
                let at = format!(
                    "{}:{}",
                    files[self.records[prev].file], self.records[prev].line
                );
                let s = &self.records[i];
                if !cap.admit(code) {
                    continue;
                }
                findings.push(finding(
                    kind,
                    &files[s.file],
                    s.line,
                    (
                        code,
                        format!("`{key}` was already defined at {at}; this line wins"),
                    ),
                ));
            }
        }
        for s in &self.records {
            if let Refs::Member {
                group,
                account,
                role,
                joined_at,
            } = &s.refs
            {
                index.add_member(group, account, role, *joined_at);
            }
        }
        let mut message_ids: HashMap<(String, String, String, i64), (usize, u64)> = HashMap::new();
        for s in &mut self.records {
            let mut problems = index.check(&s.refs, self.target);
            if let Refs::Message {
                id,
                from,
                to,
                sent_at,
                ..
            } = &s.refs
            {
                if let Some((f, l)) = message_ids.insert(
                    (id.clone(), from.clone(), to.clone(), *sent_at),
                    (s.file, s.line),
                ) {
                    problems.push((
                        "message.duplicate",
                        format!(
                            "the same message (id {id:?}) was at {}:{l}; this line wins",
                            files[f]
                        ),
                    ));
                }
            }
            for p in problems {
                s.rejected |= severity_of(p.0) == Severity::Error;
                if cap.admit(p.0) {
                    findings.push(finding(s.kind, &files[s.file], s.line, p));
                }
            }
        }
        for f in self.order.findings() {
            if cap.admit(f.code) {
                findings.push(f);
            }
        }
        let mut report = Report {
            counts: self.counts,
            findings,
            not_listed: cap
                .not_kept()
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            ..Default::default()
        };
        for s in &self.records {
            let side = if s.rejected {
                &mut report.rejected
            } else {
                &mut report.accepted
            };
            *side.entry(s.kind.as_str().into()).or_default() += 1;
        }
        if self.reader.rejected_lines > 0 {
            *report
                .rejected
                .entry("unreadable_lines".into())
                .or_default() += self.reader.rejected_lines;
        }
        report
            .findings
            .sort_by(|a, b| (a.file.as_str(), a.line).cmp(&(b.file.as_str(), b.line)));
        report
    }
}

/// Validates files as `imshift validate` does: `format` `None` tells each file's format from
/// its content. `Err` means a file could not be read at all.
pub fn validate_files(
    paths: &[&Path],
    format: Option<Format>,
    target: Option<Target>,
) -> Result<Report, Finding> {
    validate_files_with(paths, format, target, Limits::default())
}

/// [`validate_files`] under `limits` (line length, decompression, findings listed per rule).
pub fn validate_files_with(
    paths: &[&Path],
    format: Option<Format>,
    target: Option<Target>,
    limits: Limits,
) -> Result<Report, Finding> {
    let mut v = Validator::with_limits(target, limits);
    for path in paths {
        let name = path.display().to_string();
        let found = container::read_streams(
            path,
            &name,
            container::DEFAULT_MAX_BYTES,
            &limits,
            Arc::default(),
            |entry, reader| {
                v.read_as(entry, reader, format);
                Ok::<(), ()>(())
            },
        )?;
        for f in found.unwrap_or_default() {
            v.add(f);
        }
    }
    Ok(v.finish())
}
