//! Validation across records (endpoints exist, one owner per group, senders who were not
//! members) and the target's own rules, on top of the line checks of [`super::read`].
//!
//! [`Index`] holds what the cross-record rules need — accounts, groups and memberships, never
//! messages — and [`Index::check`] judges one record. `imshift validate` ([`Validator`]) and
//! the console's validate job (`super::check`) both use them, so a dump gets the same verdict
//! on the command line and in the console.

use super::canonical::{Kind, Refs};
use super::formats::Format;
use super::read::{Event, LineReader, RuleCap};
use super::{container, severity_of, Finding, Limits, Report, Severity};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

/// The target whose rules apply on top of the format's (its provider's
/// [`crate::providers::TargetRules`]).
pub type Target = &'static dyn crate::providers::TargetRules;

/// The rules of the migration's target, from the registry.
pub fn target_rules(providers: &crate::providers::Registry, target: &str) -> Option<Target> {
    providers.get(target).and_then(|p| p.rules())
}

/// A problem with one record: its code and what exactly is wrong.
pub use crate::providers::Problem;

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
        if let Some(t) = target {
            t.check(refs, p);
        }
        problems
    }
}

/// Group history as a strict target must take it: strictly increasing send times in seconds. Watches
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

    /// One warning per group whose history will move, worded for the target `label`.
    pub fn findings(self, label: &str) -> Vec<Finding> {
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
                        format!("{moved} messages of group {g:?} share a second with an earlier one; {label} takes each group's history in strictly increasing seconds, so they will be sent up to {moved} s later, in order"),
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
        converted: None,
    }
}

/// The strings the validator keeps, each once; records refer to them by number.
#[derive(Default)]
struct Syms {
    ids: HashMap<Rc<str>, u32>,
    strs: Vec<Rc<str>>,
}

impl Syms {
    fn of(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        let i = self.strs.len() as u32;
        let s: Rc<str> = Rc::from(s);
        self.strs.push(s.clone());
        self.ids.insert(s, i);
        i
    }

    fn get(&self, i: u32) -> &str {
        &self.strs[i as usize]
    }

    fn string(&self, i: u32) -> String {
        self.get(i).to_string()
    }
}

/// A record's references, compact: what the cross-record checks need, strings by number.
/// Accounts are judged as they are read and never kept.
enum Rec {
    Friend {
        owner: u32,
        friend: u32,
    },
    Block {
        owner: u32,
        blocked: u32,
    },
    Group {
        id: u32,
        owner: u32,
        group_type: u32,
    },
    Member {
        group: u32,
        account: u32,
        role: u32,
        joined_at: Option<i64>,
    },
    Message {
        id: u32,
        from: u32,
        to: u32,
        group: bool,
        body_bytes: u32,
        sent_at: i64,
    },
    GroupEvent {
        group: u32,
        actor: Option<u32>,
        target: Option<u32>,
        at: i64,
    },
    Conversation {
        owner: u32,
        peer: u32,
        group: bool,
    },
}

impl Rec {
    fn new(refs: &Refs, s: &mut Syms) -> Option<Rec> {
        Some(match refs {
            Refs::Account { .. } => return None,
            Refs::Friend { owner, friend } => Rec::Friend {
                owner: s.of(owner),
                friend: s.of(friend),
            },
            Refs::Block { owner, blocked } => Rec::Block {
                owner: s.of(owner),
                blocked: s.of(blocked),
            },
            Refs::Group {
                id,
                owner,
                group_type,
            } => Rec::Group {
                id: s.of(id),
                owner: s.of(owner),
                group_type: s.of(group_type),
            },
            Refs::Member {
                group,
                account,
                role,
                joined_at,
            } => Rec::Member {
                group: s.of(group),
                account: s.of(account),
                role: s.of(role),
                joined_at: *joined_at,
            },
            Refs::Message {
                id,
                group,
                from,
                to,
                sent_at,
                body_bytes,
            } => Rec::Message {
                id: s.of(id),
                from: s.of(from),
                to: s.of(to),
                group: *group,
                body_bytes: u32::try_from(*body_bytes).unwrap_or(u32::MAX),
                sent_at: *sent_at,
            },
            Refs::GroupEvent {
                group,
                actor,
                target,
                at,
            } => Rec::GroupEvent {
                group: s.of(group),
                actor: actor.as_deref().map(|a| s.of(a)),
                target: target.as_deref().map(|t| s.of(t)),
                at: *at,
            },
            Refs::Conversation { owner, peer, group } => Rec::Conversation {
                owner: s.of(owner),
                peer: s.of(peer),
                group: *group,
            },
        })
    }

    fn kind(&self) -> Kind {
        match self {
            Rec::Friend { .. } => Kind::Friend,
            Rec::Block { .. } => Kind::Block,
            Rec::Group { .. } => Kind::Group,
            Rec::Member { .. } => Kind::Member,
            Rec::Message { .. } => Kind::Message,
            Rec::GroupEvent { .. } => Kind::GroupEvent,
            Rec::Conversation { .. } => Kind::Conversation,
        }
    }

    /// The references again, for [`Index::check`] (one record at a time).
    fn refs(&self, s: &Syms) -> Refs {
        match *self {
            Rec::Friend { owner, friend } => Refs::Friend {
                owner: s.string(owner),
                friend: s.string(friend),
            },
            Rec::Block { owner, blocked } => Refs::Block {
                owner: s.string(owner),
                blocked: s.string(blocked),
            },
            Rec::Group {
                id,
                owner,
                group_type,
            } => Refs::Group {
                id: s.string(id),
                owner: s.string(owner),
                group_type: s.string(group_type),
            },
            Rec::Member {
                group,
                account,
                role,
                joined_at,
            } => Refs::Member {
                group: s.string(group),
                account: s.string(account),
                role: s.string(role),
                joined_at,
            },
            Rec::Message {
                id,
                from,
                to,
                group,
                body_bytes,
                sent_at,
            } => Refs::Message {
                id: s.string(id),
                group,
                from: s.string(from),
                to: s.string(to),
                sent_at,
                body_bytes: body_bytes as usize,
            },
            Rec::GroupEvent {
                group,
                actor,
                target,
                at,
            } => Refs::GroupEvent {
                group: s.string(group),
                actor: actor.map(|a| s.string(a)),
                target: target.map(|t| s.string(t)),
                at,
            },
            Rec::Conversation { owner, peer, group } => Refs::Conversation {
                owner: s.string(owner),
                peer: s.string(peer),
                group,
            },
        }
    }
}

struct Seen {
    rec: Rec,
    line: u64,
    file: u32,
    rejected: bool,
}

/// The whole-dump validator of `imshift validate`. Accounts are judged as they are read; every
/// other record's references are kept, compactly, until the end (the console's ingest keeps
/// them in PostgreSQL instead), and of the findings the first [`Limits::findings_per_rule`] of
/// each rule, without excerpts (the report prints none).
#[derive(Default)]
pub struct Validator {
    target: Option<Target>,
    files: Vec<String>,
    records: Vec<Seen>,
    syms: Syms,
    reader: LineReader,
    counts: BTreeMap<String, u64>,
    order: GroupOrder,
    index: Index,
    /// Where each account was first defined, for `account.duplicate`.
    accounts_at: HashMap<u32, (u32, u64)>,
    /// Accounts accepted and rejected.
    accounts: (u64, u64),
    /// Findings across records (their codes are never a line's), and their cap.
    cross: Vec<Finding>,
    cap: RuleCap,
    /// Streams read as a vendor format (converted line by line), and which.
    vendor: HashMap<String, Format>,
}

impl Validator {
    pub fn new(target: Option<Target>) -> Self {
        Self::with_limits(target, Limits::default())
    }

    pub fn with_limits(target: Option<Target>, limits: Limits) -> Self {
        let mut reader = LineReader::new(limits);
        reader.excerpts = false;
        reader.examples = super::read::EXAMPLES_PER_RULE;
        Self {
            target,
            reader,
            cap: RuleCap::new(limits.findings_per_rule),
            ..Default::default()
        }
    }

    /// Reads one stream of canonical lines.
    pub fn read(&mut self, name: &str, reader: &mut dyn BufRead) {
        self.read_as(name, reader, Some(Format::Canonical));
    }

    /// Reads one stream in `format` (`None`: tell from its first line).
    pub fn read_as(&mut self, name: &str, reader: &mut dyn BufRead, format: Option<Format>) {
        let file = self.files.len() as u32;
        self.files.push(name.to_string());
        let Validator {
            target,
            files,
            records,
            syms,
            reader: lines,
            counts,
            order,
            index,
            accounts_at,
            accounts,
            cross,
            cap,
            vendor,
        } = self;
        let ordered = target.is_some_and(|t| t.strict_group_order());
        let read_as = lines.read(name, reader, format, |event| {
            // Findings stay with the reader (capped per rule) until the report.
            let Event::Record(line, p) = event else {
                return true;
            };
            *counts.entry(p.kind.as_str().into()).or_default() += 1;
            if ordered {
                order.observe(&p.refs, name, line);
            }
            match Rec::new(&p.refs, syms) {
                Some(rec) => records.push(Seen {
                    rec,
                    line,
                    file,
                    rejected: false,
                }),
                None => {
                    // An account needs nothing else to be judged: judge it now, keep nothing.
                    let Refs::Account { id } = &p.refs else {
                        return true;
                    };
                    index.add_account(id);
                    let mut problems = index.check(&p.refs, *target);
                    let sym = syms.of(id);
                    if let Some((f, l)) = accounts_at.insert(sym, (file, line)) {
                        let at = format!("{}:{l}", files[f as usize]);
                        problems.push((
                            "account.duplicate",
                            format!("`{id}` was already defined at {at}; this line wins"),
                        ));
                    }
                    let mut rejected = false;
                    for p in problems {
                        rejected |= severity_of(p.0) == Severity::Error;
                        if cap.admit(p.0) {
                            cross.push(finding(Kind::Account, name, line, p));
                        }
                    }
                    if rejected {
                        accounts.1 += 1;
                    } else {
                        accounts.0 += 1;
                    }
                }
            }
            true
        });
        if matches!(read_as, Format::Vendor(_)) {
            vendor.insert(name.to_string(), read_as);
        }
    }

    /// Adds a finding about a whole file (a container's), under the per-rule cap.
    pub fn add(&mut self, f: Finding) {
        self.reader.add(f);
    }

    /// The cross-record and target checks, then the report.
    pub fn finish(mut self) -> Report {
        let files = std::mem::take(&mut self.files);
        let syms = &self.syms;
        let mut findings = std::mem::take(&mut self.reader.findings);
        findings.append(&mut self.cross);
        let cap = &mut self.cap;
        let index = &mut self.index;
        // Groups, with duplicates (the later line wins).
        let mut groups_at: HashMap<u32, (u32, u64)> = HashMap::new();
        for s in &self.records {
            let Rec::Group { id, owner, .. } = s.rec else {
                continue;
            };
            index.add_group(syms.get(id), syms.get(owner));
            if let Some((f, l)) = groups_at.insert(id, (s.file, s.line)) {
                let code = "group.duplicate";
                if cap.admit(code) {
                    let at = format!("{}:{l}", files[f as usize]);
                    findings.push(finding(
                        Kind::Group,
                        &files[s.file as usize],
                        s.line,
                        (
                            code,
                            format!(
                                "`{}` was already defined at {at}; this line wins",
                                syms.get(id)
                            ),
                        ),
                    ));
                }
            }
        }
        for s in &self.records {
            if let Rec::Member {
                group,
                account,
                role,
                joined_at,
            } = s.rec
            {
                index.add_member(
                    syms.get(group),
                    syms.get(account),
                    syms.get(role),
                    joined_at,
                );
            }
        }
        let mut message_ids: HashMap<(u32, u32, u32, i64), (u32, u64)> = HashMap::new();
        for s in &mut self.records {
            let refs = s.rec.refs(syms);
            let mut problems = index.check(&refs, self.target);
            if let Rec::Message {
                id,
                from,
                to,
                sent_at,
                ..
            } = s.rec
            {
                if let Some((f, l)) = message_ids.insert((id, from, to, sent_at), (s.file, s.line))
                {
                    problems.push((
                        "message.duplicate",
                        format!(
                            "the same message (id {:?}) was at {}:{l}; this line wins",
                            syms.get(id),
                            files[f as usize]
                        ),
                    ));
                }
            }
            for p in problems {
                s.rejected |= severity_of(p.0) == Severity::Error;
                if cap.admit(p.0) {
                    findings.push(finding(s.rec.kind(), &files[s.file as usize], s.line, p));
                }
            }
        }
        let label = self.target.map_or("the target", |t| t.label());
        for f in self.order.findings(label) {
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
                .chain(self.reader.cap.not_kept())
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            ..Default::default()
        };
        let (ok, bad) = self.accounts;
        for (side, n) in [(&mut report.accepted, ok), (&mut report.rejected, bad)] {
            if n > 0 {
                side.insert(Kind::Account.as_str().into(), n);
            }
        }
        for s in &self.records {
            let side = if s.rejected {
                &mut report.rejected
            } else {
                &mut report.accepted
            };
            *side.entry(s.rec.kind().as_str().into()).or_default() += 1;
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
    for path in paths.iter().copied() {
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
    let vendor = std::mem::take(&mut v.vendor);
    let mut report = v.finish();
    if !vendor.is_empty() {
        show_converted_lines(paths, &limits, &vendor, &mut report);
    }
    Ok(report)
}

/// Gives the first findings of each rule about a converted line (those found across records,
/// which keep no text while the dump is read) the user's line and its conversion, read again
/// from the files: only those lines are kept, so memory stays flat whatever the dump's size.
fn show_converted_lines(
    paths: &[&Path],
    limits: &Limits,
    vendor: &HashMap<String, Format>,
    report: &mut Report,
) {
    let mut per_rule: HashMap<&'static str, u64> = HashMap::new();
    // file → line → the findings about it
    let mut wanted: HashMap<String, BTreeMap<u64, Vec<usize>>> = HashMap::new();
    for (i, f) in report.findings.iter().enumerate() {
        if f.line == 0 || !f.excerpt.is_empty() || !vendor.contains_key(&f.file) {
            continue;
        }
        let n = per_rule.entry(f.code).or_default();
        if *n < super::read::EXAMPLES_PER_RULE {
            *n += 1;
            wanted
                .entry(f.file.clone())
                .or_default()
                .entry(f.line)
                .or_default()
                .push(i);
        }
    }
    if wanted.is_empty() {
        return;
    }
    for path in paths {
        let name = path.display().to_string();
        let _ = container::read_streams(
            path,
            &name,
            container::DEFAULT_MAX_BYTES,
            limits,
            Arc::default(),
            |entry, reader| {
                let (Some(lines), Some(format)) = (wanted.get(entry), vendor.get(entry)) else {
                    return Ok::<(), ()>(());
                };
                let numbers: std::collections::BTreeSet<u64> = lines.keys().copied().collect();
                let texts = super::read::lines_at(reader, &numbers, limits.max_line_bytes);
                for (line, text) in texts {
                    let converted: Option<Box<str>> =
                        super::read::convert_for_display(*format, &text).map(Into::into);
                    let shown = super::read::cut_line(&text);
                    for &i in &lines[&line] {
                        let f = &mut report.findings[i];
                        f.excerpt.clone_from(&shown);
                        f.converted.clone_from(&converted);
                    }
                }
                Ok(())
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_record_is_small() {
        // `imshift validate` keeps one of these per record (accounts aside): a few tens of
        // bytes, so that a decompression bomb stopped at 64 MiB of tiny lines stays in bounds.
        assert!(
            std::mem::size_of::<Seen>() <= 48,
            "{}",
            std::mem::size_of::<Seen>()
        );
    }

    #[test]
    fn accounts_are_judged_as_read_and_duplicates_still_found() {
        let mut v = Validator::new(None);
        let text = "{\"kind\":\"account\",\"id\":\"u1\"}\n{\"kind\":\"account\",\"id\":\"u1\"}\n{\"kind\":\"account\",\"id\":\"bad id\\u0001\"}\n{\"kind\":\"friend\",\"owner\":\"u1\",\"friend\":\"u9\"}\n";
        v.read("f", &mut std::io::Cursor::new(text));
        assert!(v.records.len() == 1, "only the friend is kept");
        let r = v.finish();
        let got: Vec<_> = r.findings.iter().map(|f| (f.line, f.code)).collect();
        assert!(got.contains(&(2, "account.duplicate")), "{got:?}");
        assert!(got.contains(&(4, "ref.account_missing")), "{got:?}");
        assert_eq!(r.accepted["account"], 2);
        assert_eq!(r.rejected["friend"], 1);
    }
}
