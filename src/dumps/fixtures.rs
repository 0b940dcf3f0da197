//! Realistic canonical dumps of any size, for tests, rehearsals and benchmarks: accounts with
//! profiles (some with Chinese names), mutual friendships, blocks, groups of each importable
//! type with owners, admins and members, one-to-one and group history of every body type in
//! time order, group events and recent conversations. The same seed gives the same dump.
//!
//! Everything is written as it is generated, so a dump of millions of messages needs no more
//! memory than one of ten.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, Write};

#[derive(Debug, Clone)]
pub struct Spec {
    pub accounts: u64,
    /// Friends per account (mutual: each friendship is two records).
    pub friends: u32,
    pub groups: u64,
    /// Members per group, the owner included.
    pub members: u32,
    pub messages: u64,
    /// Share of messages that are group messages.
    pub group_share: f64,
    pub seed: u64,
    /// Newest message time, ms since 1970 (older history spreads back from it).
    pub end_ms: i64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            accounts: 1000,
            friends: 10,
            groups: 50,
            members: 20,
            messages: 10_000,
            group_share: 0.3,
            seed: 1,
            // 2026-06-01T00:00:00Z
            end_ms: 1_780_272_000_000,
        }
    }
}

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "Smith", "Garcia", "Kim", "Nguyen", "Tanaka", "Müller",
];
const GIVEN: [&str; 12] = [
    "伟", "芳", "娜", "敏", "静", "磊", "Alex", "Maria", "Jin", "Linh", "Yuki", "Lena",
];
const WORDS: [&str; 16] = [
    "好的",
    "明天见",
    "收到",
    "哈哈",
    "see you",
    "on my way",
    "lunch?",
    "thanks!",
    "ok 👍",
    "在吗",
    "发我一下",
    "sounds good",
    "晚点聊",
    "I'll call you",
    "today works",
    "👀",
];

pub fn account_id(i: u64) -> String {
    format!("u{i:07}")
}

pub fn group_id(i: u64) -> String {
    format!("g{i:06}")
}

/// The members of group `g` (owner first), as account indices.
fn members_of(spec: &Spec, g: u64) -> impl Iterator<Item = u64> + '_ {
    let n = spec.accounts.max(1);
    let size = (spec.members as u64).min(n);
    let owner = (g * 7919) % n;
    (0..size).map(move |k| (owner + k * 13) % n)
}

fn group_created_ms(spec: &Spec, g: u64) -> i64 {
    history_start(spec) - 30 * 86_400_000 + (g as i64 % 1000) * 60_000
}

/// Messages start this long before `end_ms`: about 6 s apart on average.
fn history_start(spec: &Spec) -> i64 {
    spec.end_ms - (spec.messages as i64).max(1) * 6_000 - 86_400_000
}

fn body(rng: &mut StdRng, n: u64) -> Value {
    let pick: u32 = rng.random_range(0..100);
    match pick {
        0..70 => {
            let w = WORDS[rng.random_range(0..WORDS.len())];
            json!({"type": "text", "text": format!("{w} #{n}")})
        }
        70..78 => json!({"type": "image", "url": format!("https://media.example.com/i/{n}.jpg"),
            "name": format!("IMG_{n}.jpg"), "size": rng.random_range(20_000..3_000_000),
            "width": 1080, "height": 1440, "format": "jpg"}),
        78..83 => json!({"type": "audio", "url": format!("https://media.example.com/a/{n}.amr"),
            "size": rng.random_range(2_000..200_000), "duration_ms": rng.random_range(1_000..60_000), "format": "amr"}),
        83..87 => json!({"type": "video", "url": format!("https://media.example.com/v/{n}.mp4"),
            "size": rng.random_range(200_000..30_000_000), "duration_ms": rng.random_range(2_000..120_000),
            "width": 720, "height": 1280, "format": "mp4", "thumb_url": format!("https://media.example.com/v/{n}.jpg")}),
        87..91 => json!({"type": "file", "url": format!("https://media.example.com/f/{n}.pdf"),
            "name": format!("report-{n}.pdf"), "size": rng.random_range(10_000..9_000_000), "format": "pdf"}),
        91..94 => {
            json!({"type": "location", "lat": 31.2 + rng.random_range(0.0..0.1), "lng": 121.4 + rng.random_range(0.0..0.1),
            "title": "人民广场"})
        }
        94..97 => json!({"type": "face", "index": rng.random_range(0..100), "data": "tt00"}),
        _ => {
            json!({"type": "custom", "data": {"kind": "red_packet", "amount": rng.random_range(1..500)}, "desc": "红包"})
        }
    }
}

const JOINS: [&str; 3] = ["need_permission", "free", "free"];
const GENDERS: [&str; 3] = ["male", "female", "unknown"];
const CLIENTS: [&str; 5] = ["ios", "android", "web", "pc", "mac"];

/// Writes the dump; returns how many records of each kind it wrote.
pub fn generate(spec: &Spec, out: &mut dyn Write) -> io::Result<BTreeMap<&'static str, u64>> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut line = |out: &mut dyn Write, kind: &'static str, v: Value| -> io::Result<()> {
        *counts.entry(kind).or_default() += 1;
        serde_json::to_writer(&mut *out, &v)?;
        out.write_all(b"\n")
    };
    let n = spec.accounts;
    let start = history_start(spec);
    for i in 0..n {
        let nick = format!(
            "{}{}",
            SURNAMES[(i % 12) as usize],
            GIVEN[((i / 12) % 12) as usize]
        );
        let mut a = json!({"kind": "account", "id": account_id(i), "nick": nick,
            "created_at": start - 400 * 86_400_000 + i as i64 * 1000});
        if i % 3 == 0 {
            a["avatar"] = json!(format!("https://media.example.com/avatar/{i}.png"));
            a["gender"] = json!(GENDERS[(i % 9 / 3) as usize]);
            a["signature"] = json!("在路上 / on the road");
        }
        if i % 10 == 0 {
            a["birthday"] = json!("1990-04-01");
            a["location"] = json!("上海");
        }
        line(out, "account", a)?;
    }
    let half = (spec.friends / 2) as u64;
    if n > spec.friends as u64 + 1 {
        for i in 0..n {
            for k in 1..=half {
                let j = (i + k) % n;
                let added = start - 200 * 86_400_000 + (i * 31 + k) as i64 * 1000;
                line(
                    out,
                    "friend",
                    json!({"kind": "friend", "owner": account_id(i), "friend": account_id(j),
                    "remark": if k == 1 { "同事" } else { "" }, "groups": ["Friends"], "source": "search", "added_at": added}),
                )?;
                line(
                    out,
                    "friend",
                    json!({"kind": "friend", "owner": account_id(j), "friend": account_id(i),
                    "source": "search", "added_at": added}),
                )?;
            }
            if i % 50 == 0 {
                line(
                    out,
                    "block",
                    json!({"kind": "block", "owner": account_id(i),
                    "blocked": account_id((i + half + 1) % n), "at": start - 86_400_000}),
                )?;
            }
        }
    }
    let types = ["private", "public", "chatroom"];
    for g in 0..spec.groups {
        let owner = members_of(spec, g).next().unwrap_or(0);
        let created = group_created_ms(spec, g);
        line(
            out,
            "group",
            json!({"kind": "group", "id": group_id(g), "type": types[(g % 3) as usize],
            "name": format!("群 {g} · Team"), "owner": account_id(owner), "intro": "工作群 / work chat",
            "notice": "请文明发言", "created_at": created, "max_members": 500,
            "join": JOINS[(g % 3) as usize], "muted": false}),
        )?;
        for (k, m) in members_of(spec, g).enumerate() {
            let role = match k {
                0 => "owner",
                1 | 2 => "admin",
                _ => "member",
            };
            line(
                out,
                "member",
                json!({"kind": "member", "group": group_id(g), "account": account_id(m),
                "role": role, "joined_at": created + 1000 + k as i64 * 1000,
                "unread": rng.random_range(0..5)}),
            )?;
        }
        if g % 5 == 0 {
            line(
                out,
                "group_event",
                json!({"kind": "group_event", "id": format!("e{g}"), "group": group_id(g),
                "actor": account_id(owner), "event": "info_changed", "at": created + 500_000,
                "changes": {"notice": "请文明发言"}}),
            )?;
        }
    }
    // History in time order: one-to-one between friends, group messages from members.
    let mut t = start;
    for m in 0..spec.messages {
        t += rng.random_range(1_000..11_000);
        let client = CLIENTS[rng.random_range(0..CLIENTS.len())];
        let group = spec.groups > 0 && rng.random_bool(spec.group_share.clamp(0.0, 1.0));
        let (from, to, conv) = if group {
            let g = rng.random_range(0..spec.groups);
            let size = (spec.members as u64).min(n).max(1);
            let who = members_of(spec, g)
                .nth(rng.random_range(0..size) as usize)
                .unwrap_or(0);
            (account_id(who), group_id(g), "group")
        } else {
            let i = rng.random_range(0..n.max(1));
            let j = (i + rng.random_range(1..=half.max(1))) % n.max(1);
            if rng.random_bool(0.5) {
                (account_id(i), account_id(j), "c2c")
            } else {
                (account_id(j), account_id(i), "c2c")
            }
        };
        let mut msg = json!({"kind": "message", "id": format!("m{m}"), "conv": conv, "from": from, "to": to,
            "sent_at": t, "client": client, "body": body(&mut rng, m)});
        if m % 20 == 0 {
            msg["ext"] = json!(format!("{{\"trace\":\"{m}\"}}"));
        }
        line(out, "message", msg)?;
    }
    if half > 0 && n > 1 {
        for i in (0..n).step_by(10) {
            line(
                out,
                "conversation",
                json!({"kind": "conversation", "owner": account_id(i), "conv": "c2c",
                "peer": account_id((i + 1) % n), "last_at": t, "unread": i % 3, "pinned": i % 20 == 0}),
            )?;
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dumps::validate::Validator;

    #[test]
    fn a_generated_dump_is_valid_for_every_target_and_reproducible() {
        let spec = Spec {
            accounts: 60,
            friends: 4,
            groups: 6,
            members: 8,
            messages: 2000,
            ..Spec::default()
        };
        let mut a = Vec::new();
        let counts = generate(&spec, &mut a).unwrap();
        let mut b = Vec::new();
        generate(&spec, &mut b).unwrap();
        assert_eq!(a, b, "same seed, same dump");
        assert_eq!(counts["account"], 60);
        assert_eq!(counts["friend"], 60 * 4);
        assert_eq!(counts["member"], 6 * 8);
        assert_eq!(counts["message"], 2000);
        let providers = crate::providers::Registry::builtin();
        let targets: Vec<_> = providers.all().filter_map(|p| p.rules()).collect();
        assert!(!targets.is_empty(), "some target has rules");
        for target in targets.into_iter().map(Some).chain([None]) {
            let mut v = Validator::new(target);
            v.read("gen.jsonl", &mut a.as_slice());
            let report = v.finish();
            assert!(
                report.findings.is_empty(),
                "{:#?}",
                &report.findings[..report.findings.len().min(5)]
            );
            assert_eq!(report.accepted["message"], 2000);
        }
        // Every body type appears.
        let text = String::from_utf8(a).unwrap();
        for t in [
            "text", "image", "audio", "video", "file", "location", "face", "custom",
        ] {
            assert!(text.contains(&format!("\"type\":\"{t}\"")), "{t}");
        }
    }
}
