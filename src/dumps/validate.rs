//! Validation of a whole dump: every line on its own, then across records (endpoints exist, one
//! owner per group, duplicates, senders who were not members), then the target's own rules.

use super::canonical::{parse_line, Kind, Refs, Sink};
use super::formats::csv::CsvConverter;
use super::formats::{detect, easemob, netease, Format};
use super::{container, severity_of, Finding, Report, Severity};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

/// A target whose rules apply on top of the format's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Tencent,
}

/// Tencent IM refuses message JSON over 8 KB (80002 / 93000); the body is most of it.
const TENCENT_MAX_BODY_BYTES: usize = 8 * 1024;

struct Seen {
    kind: Kind,
    refs: Refs,
    file: usize,
    line: u64,
    rejected: bool,
}

#[derive(Default)]
pub struct Validator {
    target: Option<Target>,
    files: Vec<String>,
    records: Vec<Seen>,
    findings: Vec<Finding>,
    counts: BTreeMap<String, u64>,
    rejected_lines: u64,
    unknown_seen: HashSet<(Kind, String)>,
}

impl Validator {
    pub fn new(target: Option<Target>) -> Self {
        Self {
            target,
            ..Default::default()
        }
    }

    /// Reads one stream of canonical lines.
    pub fn read(&mut self, name: &str, reader: &mut dyn BufRead) {
        self.read_as(name, reader, Some(Format::Canonical));
    }

    /// Reads one stream in `format` (`None`: tell from its first line), converting vendor
    /// lines into canonical records on the way; findings keep the source line number.
    pub fn read_as(&mut self, name: &str, reader: &mut dyn BufRead, format: Option<Format>) {
        let file = self.files.len();
        self.files.push(name.to_string());
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
                    self.findings.push(Finding {
                        code: "gzip.truncated",
                        severity: Severity::Error,
                        file: name.to_string(),
                        line: line + 1,
                        message: format!("reading stopped at line {}: {e}", line + 1),
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
            let records: Vec<Vec<u8>> = match format {
                Some(Format::Canonical) | None => vec![std::mem::take(&mut buf)],
                Some(vendor) => match self.convert(vendor, &mut csv, &buf, name, line) {
                    Some(values) => values
                        .iter()
                        .map(|v| serde_json::to_vec(v).unwrap_or_default())
                        .collect(),
                    None => continue,
                },
            };
            for bytes in records {
                let mut sink = Sink {
                    file: name,
                    findings: &mut self.findings,
                    unknown_seen: &mut self.unknown_seen,
                };
                match parse_line(&bytes, line, &mut sink) {
                    Ok(None) => {}
                    Ok(Some((kind, refs))) => {
                        *self.counts.entry(kind.as_str().into()).or_default() += 1;
                        self.records.push(Seen {
                            kind,
                            refs,
                            file,
                            line,
                            rejected: false,
                        });
                    }
                    Err(_) => self.rejected_lines += 1,
                }
            }
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
                self.rejected_lines += 1;
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
                self.rejected_lines += 1;
                None
            }
        }
    }

    fn push(&mut self, file: &str, line: u64, code: &'static str, message: String) {
        self.findings.push(Finding {
            code,
            severity: severity_of(code),
            file: file.to_string(),
            line,
            message,
        });
    }

    fn flag(
        findings: &mut Vec<Finding>,
        files: &[String],
        s: &mut Seen,
        code: &'static str,
        message: String,
    ) {
        let severity = severity_of(code);
        if severity == Severity::Error {
            s.rejected = true;
        }
        findings.push(Finding {
            code,
            severity,
            file: files[s.file].clone(),
            line: s.line,
            message: format!("{}: {message}", s.kind.as_str()),
        });
    }

    /// The cross-record and target checks, then the report.
    pub fn finish(mut self) -> Report {
        let files = std::mem::take(&mut self.files);
        let findings = &mut self.findings;
        // Accounts and groups, with duplicates (the later line wins).
        let mut accounts: HashMap<String, usize> = HashMap::new();
        let mut groups: HashMap<String, usize> = HashMap::new();
        for i in 0..self.records.len() {
            let (key, map, code) = match &self.records[i].refs {
                Refs::Account { id } => (id.clone(), &mut accounts, "account.duplicate"),
                Refs::Group { id, .. } => (id.clone(), &mut groups, "group.duplicate"),
                _ => continue,
            };
            if let Some(prev) = map.insert(key.clone(), i) {
                let at = format!(
                    "{}:{}",
                    files[self.records[prev].file], self.records[prev].line
                );
                Self::flag(
                    findings,
                    &files,
                    &mut self.records[i],
                    code,
                    format!("`{key}` was already defined at {at}; this line wins"),
                );
            }
        }
        let owner_of: HashMap<String, String> = groups
            .iter()
            .map(|(g, &i)| match &self.records[i].refs {
                Refs::Group { owner, .. } => (g.clone(), owner.clone()),
                _ => unreachable!("groups index group records"),
            })
            .collect();
        // Membership: who is in which group, and since when.
        let mut members: HashMap<(String, String), Option<i64>> = HashMap::new();
        for s in &self.records {
            if let Refs::Member {
                group,
                account,
                joined_at,
                role,
            } = &s.refs
            {
                // A member record that claims ownership wrongly is rejected below; it makes
                // nobody a member.
                if role != "owner" || owner_of.get(group) == Some(account) {
                    members.insert((group.clone(), account.clone()), *joined_at);
                }
            }
        }
        let mut message_ids: HashMap<(String, String, String, i64), (usize, u64)> = HashMap::new();
        for i in 0..self.records.len() {
            let s = &mut self.records[i];
            let missing_account = |id: &str| !accounts.contains_key(id);
            let mut problems: Vec<(&'static str, String)> = vec![];
            let need_account =
                |field: &str, id: &str, problems: &mut Vec<(&'static str, String)>| {
                    if missing_account(id) {
                        problems.push((
                            "ref.account_missing",
                            format!("`{field}` = {id:?} is not an account in the dump"),
                        ));
                    }
                };
            match &s.refs {
                Refs::Account { .. } => {}
                Refs::Friend { owner, friend } => {
                    need_account("owner", owner, &mut problems);
                    need_account("friend", friend, &mut problems);
                }
                Refs::Block { owner, blocked } => {
                    need_account("owner", owner, &mut problems);
                    need_account("blocked", blocked, &mut problems);
                }
                Refs::Group { owner, .. } => need_account("owner", owner, &mut problems),
                Refs::Member {
                    group,
                    account,
                    role,
                    ..
                } => {
                    need_account("account", account, &mut problems);
                    match owner_of.get(group) {
                        None => problems.push(("ref.group_missing", format!("`group` = {group:?} is not a group in the dump"))),
                        Some(owner) if role == "owner" && owner != account => problems.push((
                            "group.owner_conflict",
                            format!("{account:?} is marked owner of {group:?}, whose owner is {owner:?}"),
                        )),
                        _ => {}
                    }
                }
                Refs::Message {
                    id,
                    group,
                    from,
                    to,
                    sent_at,
                    ..
                } => {
                    need_account("from", from, &mut problems);
                    if *group {
                        match owner_of.get(to) {
                            None => problems.push((
                                "ref.group_missing",
                                format!("`to` = {to:?} is not a group in the dump"),
                            )),
                            Some(owner) => {
                                let joined = members.get(&(to.clone(), from.clone()));
                                let member = owner == from
                                    || joined.is_some_and(|j| j.is_none_or(|t| t <= *sent_at));
                                if !member {
                                    problems.push((
                                        "message.sender_not_member",
                                        format!("{from:?} was not a member of {to:?} at {sent_at}"),
                                    ));
                                }
                            }
                        }
                    } else {
                        need_account("to", to, &mut problems);
                    }
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
                Refs::GroupEvent {
                    group,
                    actor,
                    target,
                } => {
                    if !owner_of.contains_key(group) {
                        problems.push((
                            "ref.group_missing",
                            format!("`group` = {group:?} is not a group in the dump"),
                        ));
                    }
                    for (f, v) in [("actor", actor), ("target", target)] {
                        if let Some(v) = v {
                            need_account(f, v, &mut problems);
                        }
                    }
                }
                Refs::Conversation { owner, peer, group } => {
                    need_account("owner", owner, &mut problems);
                    if *group {
                        if !owner_of.contains_key(peer) {
                            problems.push((
                                "ref.group_missing",
                                format!("`peer` = {peer:?} is not a group in the dump"),
                            ));
                        }
                    } else {
                        need_account("peer", peer, &mut problems);
                    }
                }
            }
            if let Some(Target::Tencent) = self.target {
                tencent_rules(&s.refs, &mut problems);
            }
            for (code, message) in problems {
                Self::flag(findings, &files, s, code, message);
            }
        }
        let mut report = Report {
            counts: self.counts,
            findings: std::mem::take(findings),
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
        if self.rejected_lines > 0 {
            *report
                .rejected
                .entry("unreadable_lines".into())
                .or_default() += self.rejected_lines;
        }
        report
            .findings
            .sort_by(|a, b| (a.file.as_str(), a.line).cmp(&(b.file.as_str(), b.line)));
        report
    }
}

fn tencent_rules(refs: &Refs, problems: &mut Vec<(&'static str, String)>) {
    use crate::providers::tencent::convert::{check_group_id, check_user_id};
    let user = |field: &str, id: &str, problems: &mut Vec<(&'static str, String)>| {
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

/// Validates files as `imshift validate` does: `format` `None` tells each file's format from
/// its content. `Err` means a file could not be read at all.
pub fn validate_files(
    paths: &[&Path],
    format: Option<Format>,
    target: Option<Target>,
) -> Result<Report, Finding> {
    let mut v = Validator::new(target);
    for path in paths {
        let (entries, container_findings) = container::open(path, container::DEFAULT_MAX_BYTES)?;
        v.findings.extend(container_findings);
        for mut e in entries {
            v.read_as(&e.name, &mut e.reader, format);
        }
    }
    Ok(v.finish())
}
