use super::*;
use crate::dumps::formats::format_of;
use crate::dumps::formats::testutil::assert_canonical;
use crate::providers::netease::dump::convert_line;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{json, Number};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

/// Canonical records of every kind the files carry: every body type NetEase has, both
/// conversation kinds, every group event, ids numeric and not.
const CANONICAL: &str = include_str!("../../../../tests/fixtures/netease/history-canonical.jsonl");
const SEED: &str = include_str!("../../../../tests/fixtures/netease/seed001_examples.jsonl");

fn fixture() -> Vec<Value> {
    CANONICAL
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The team ids the import gave the fixture's groups.
fn tids(group: &str) -> Option<String> {
    match group {
        "g1" => Some("1001".into()),
        "g2" => Some("1002".into()),
        "g3" => Some("T-3".into()),
        _ => None,
    }
}

/// A record as a reader of its line gives it back: its group named by the team id.
fn expected(record: &Value) -> Value {
    let mut r = record.clone();
    let field = match (r["kind"].as_str(), r["conv"].as_str()) {
        (Some("message"), Some("group")) => "to",
        (Some("group_event"), _) => "group",
        _ => return r,
    };
    let tid = tids(r[field].as_str().unwrap()).unwrap();
    r[field] = tid.into();
    r
}

type Store = Rc<RefCell<BTreeMap<String, Vec<u8>>>>;

/// A file kept in memory.
struct Mem {
    name: String,
    store: Store,
}

impl Write for Mem {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.store
            .borrow_mut()
            .get_mut(&self.name)
            .unwrap()
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn in_memory(
    options: Options,
) -> (
    HistoryFiles<Mem, impl FnMut(&str) -> io::Result<Mem>>,
    Store,
) {
    let store: Store = Rc::default();
    let s = store.clone();
    let create = move |name: &str| {
        let before = s.borrow_mut().insert(name.to_string(), Vec::new());
        assert!(before.is_none(), "{name} created twice");
        Ok(Mem {
            name: name.to_string(),
            store: s.clone(),
        })
    };
    (HistoryFiles::new(create, options), store)
}

fn text_of(store: &Store, name: &str) -> String {
    String::from_utf8(store.borrow()[name].clone()).unwrap()
}

fn one(line: &str) -> Value {
    let mut v = convert_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert_eq!(v.len(), 1, "{line}");
    v.remove(0)
}

#[test]
fn round_trip_every_written_file_reads_back_to_the_records() {
    let records = fixture();
    // The fixture covers what it says it does.
    let mut bodies = BTreeSet::new();
    let mut convs = BTreeSet::new();
    let mut events = BTreeSet::new();
    for r in &records {
        assert_canonical(r);
        match r["kind"].as_str().unwrap() {
            "message" => {
                bodies.insert(r["body"]["type"].as_str().unwrap());
                convs.insert(r["conv"].as_str().unwrap());
            }
            _ => {
                events.insert(r["event"].as_str().unwrap());
            }
        }
    }
    assert_eq!(
        bodies,
        BTreeSet::from(["text", "image", "audio", "video", "file", "location", "custom"])
    );
    assert_eq!(convs, BTreeSet::from(["c2c", "group"]));
    assert_eq!(events.len(), 10, "{events:?}");

    for apart in [false, true] {
        let options = Options {
            max_file_bytes: 700,
            notifications_apart: apart,
        };
        let (mut files, store) = in_memory(options);
        let mut want: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for r in &records {
            let kind = match files.push(r, &tids).unwrap() {
                Pushed::Written(kind) => kind,
                other => panic!("{r}: {other:?}"),
            };
            want.entry(kind.as_str()).or_default().push(expected(r));
        }
        let manifest = files.finish().unwrap();
        assert!(manifest.left_out.is_empty(), "{:?}", manifest.left_out);
        assert!(manifest.kept_aside.is_empty() && manifest.not_carried.is_empty());

        // Read back kind by kind, file after file: the same records, in the order pushed.
        let mut got: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for f in &manifest.files {
            let kind = FileKind::ALL
                .into_iter()
                .find(|k| k.as_str() == f.kind)
                .unwrap();
            for line in text_of(&store, &f.name).lines() {
                let v = one(line);
                assert_canonical(&v);
                got.entry(kind.as_str()).or_default().push(v);
            }
        }
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>()
        );
        for (kind, want) in &want {
            let got = &got[kind];
            assert_eq!(got.len(), want.len(), "{kind}");
            for (g, w) in got.iter().zip(want) {
                assert_eq!(g, w, "{kind}");
            }
        }
        let kinds: BTreeSet<&str> = manifest.files.iter().map(|f| f.kind.as_str()).collect();
        if apart {
            assert_eq!(kinds, BTreeSet::from(["p2p", "team", "team-notification"]));
            assert!(manifest
                .files
                .iter()
                .filter(|f| f.kind == "team")
                .all(|f| f.types.keys().all(|t| *t < 101)));
        } else {
            assert_eq!(kinds, BTreeSet::from(["p2p", "team"]));
        }
        assert!(
            manifest.totals.by_kind["p2p"].files > 1,
            "the limit splits the fixture"
        );
    }
}

/// Digit strings as numbers (`"type":"4"`, `"createTime":"1537262375000"`, `"lat":"39.89611"`).
fn numeric(v: &mut Value) {
    if let Value::String(s) = v {
        if let Ok(i) = s.trim().parse::<i64>() {
            *v = i.into();
        } else if let Some(n) = s.trim().parse::<f64>().ok().and_then(Number::from_f64) {
            *v = Value::Number(n);
        }
    }
}

/// A seed line in the one spelling its quirks allow, so that lines that differ only in quirks
/// `dump.rs` reads alike compare equal:
/// - numbers given as strings become numbers (`type`, `createTime`, `clientType`, `msgid`, `tid`,
///   `tinfo.tid`, and an attachment's `lat`/`lng`);
/// - `attach` (and `tinfo`) given as a JSON string becomes the object it holds;
/// - an attachment's `ext` (the file format) as a reader takes it: `" amr"` → `"amr"`;
/// - team notifications (101–110) lose `clientType`: a canonical group event has no client, so
///   no writer can give it back (the seed's are all 16).
///
/// A custom message's payload (type 100) is compared untouched.
fn normalised(line: &str) -> Value {
    let mut v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    numeric(&mut v["type"]);
    let t = v["type"].as_i64().unwrap();
    let d = v["data"].as_object_mut().unwrap();
    for k in ["createTime", "clientType", "msgid", "tid"] {
        if let Some(x) = d.get_mut(k) {
            numeric(x);
        }
    }
    if (101..=110).contains(&t) {
        d.remove("clientType");
    }
    for k in ["attach", "tinfo"] {
        if let Some(x) = d.get_mut(k) {
            if let Value::String(s) = x {
                if let Ok(parsed) = serde_json::from_str::<Value>(s) {
                    *x = parsed;
                }
            }
        }
    }
    if t != 100 {
        if let Some(Value::Object(a)) = d.get_mut("attach") {
            if let Some(Value::String(e)) = a.get("ext") {
                let f = format_of(e);
                a.insert("ext".into(), f.into());
            }
            for k in ["lat", "lng"] {
                if let Some(x) = a.get_mut(k) {
                    numeric(x);
                }
            }
        }
    }
    if let Some(Value::Object(ti)) = d.get_mut("tinfo") {
        if let Some(x) = ti.get_mut("tid") {
            numeric(x);
        }
    }
    v
}

/// The seed's examples, one per line; the image example's typographic quote repaired (dump.rs
/// does the same in its tests).
fn seed() -> Vec<String> {
    let lines: Vec<String> = SEED
        .lines()
        .map(|l| l.replace("\\\u{201c}", "\\\""))
        .collect();
    assert_eq!(lines.len(), 21);
    lines
}

/// The seed names its groups by their team ids already.
fn same_tid(group: &str) -> Option<String> {
    Some(group.to_string())
}

#[test]
fn seed_examples_come_back_as_netease_wrote_them() {
    for (i, example) in seed().iter().enumerate() {
        let record = one(example);
        let ours = line_of(&record, &same_tid)
            .unwrap_or_else(|e| panic!("example {}: {e}", i + 1))
            .unwrap();
        assert_eq!(
            normalised(&ours),
            normalised(example),
            "example {}:\n ours: {ours}\n seed: {example}",
            i + 1
        );
        // And it reads back to the same record.
        assert_eq!(one(&ours), record, "example {}", i + 1);
    }
}

/// An object's keys in their order in the text (serde_json's `Value` sorts them).
struct Keys(Vec<String>);

impl<'de> serde::Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    m.next_value::<IgnoredAny>()?;
                    keys.push(k);
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(serde::Deserialize)]
struct Top {
    data: Keys,
}

fn data_keys(line: &str) -> Vec<String> {
    serde_json::from_str::<Top>(line).unwrap().data.0
}

fn attach_keys(line: &str) -> Option<Vec<String>> {
    let v: Value = serde_json::from_str(line).unwrap();
    let text = v["data"]["attach"].as_str()?;
    Some(serde_json::from_str::<Keys>(text).unwrap().0)
}

#[test]
fn seed_examples_keep_their_key_order() {
    let seed = seed();
    for (i, example) in seed.iter().enumerate() {
        let ours = line_of(&one(example), &same_tid).unwrap().unwrap();
        assert!(ours.starts_with("{\"data\":{"), "{ours}");
        let mut want = data_keys(example);
        if i >= 10 {
            want.retain(|k| k != "clientType");
        }
        assert_eq!(data_keys(&ours), want, "example {}", i + 1);
        assert_eq!(
            attach_keys(&ours),
            attach_keys(example),
            "example {}",
            i + 1
        );
    }
    // Where the seed has no quirk, imshift writes the very same bytes.
    for i in [0, 1, 7, 8] {
        let ours = line_of(&one(&seed[i]), &same_tid).unwrap().unwrap();
        assert_eq!(ours, seed[i], "example {}", i + 1);
    }
}

#[test]
fn spellings_follow_the_seed() {
    let msg = |id: &str, conv: &str, client: Option<&str>| {
        let mut r = json!({"kind":"message","id":id,"conv":conv,"from":"aaa","to":"g1","sent_at":1513685265481_i64,
            "body":{"type":"text","text":"hi"}});
        if let Some(c) = client {
            r["client"] = c.into();
        }
        line_of(&r, &tids).unwrap().unwrap()
    };
    assert_eq!(
        msg("42", "c2c", Some("ios")),
        r#"{"data":{"ext":"","clientType":"2","createTime":1513685265481,"msgid":42,"from":"aaa","to":"g1","body":"hi"},"type":0}"#
    );
    assert_eq!(
        msg("42", "group", Some("web")),
        r#"{"data":{"ext":"","createTime":1513685265481,"clientType":16,"msgid":42,"accid":"aaa","body":"hi","tid":1001},"type":0}"#
    );
    // No client, no clientType. Ids that are not plain 64-bit numbers stay strings.
    let l = msg("007", "c2c", None);
    assert!(
        !l.contains("clientType") && l.contains(r#""msgid":"007""#),
        "{l}"
    );
    assert!(msg("9223372036854775807", "c2c", None).contains(r#""msgid":9223372036854775807,"#));
    assert!(msg("9223372036854775808", "c2c", None).contains(r#""msgid":"9223372036854775808""#));
    assert!(msg("-1", "c2c", None).contains(r#""msgid":"-1""#));
    // A team id that is no number is written as the string it is.
    let l = line_of(
        &json!({"kind":"group_event","id":"13","group":"g3","actor":"ccc","event":"dismissed","at":1511513944882_i64}),
        &tids,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        l,
        r#"{"data":{"createTime":1511513944882,"msgid":13,"accid":"ccc","tid":"T-3"},"type":110}"#
    );
    // 107: tinfo keys in number order, values as strings, tid last.
    let l = line_of(
        &json!({"kind":"group_event","id":"9","group":"g1","actor":"aaa","event":"info_changed","at":1511513944877_i64,
            "changes":{"muted":true,"intro":"new","netease.3":"Team","join":"disabled"}}),
        &tids,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        l,
        r#"{"data":{"createTime":1511513944877,"tinfo":{"3":"Team","14":"new","16":"2","17":"1","tid":1001},"msgid":9,"accid":"aaa","tid":1001},"type":107}"#
    );
    // Integer coordinates are written as they are and read back as the same decimal.
    let r = json!({"kind":"message","id":"1","conv":"c2c","from":"a","to":"b","sent_at":1513685265481_i64,
        "body":{"type":"location","lat":40,"lng":"-74.5"}});
    let l = line_of(&r, &tids).unwrap().unwrap();
    assert!(
        l.contains(r#""attach":"{\"lng\":\"-74.5\",\"lat\":\"40\"}""#),
        "{l}"
    );
    let back = one(&l);
    assert_eq!(back["body"]["lat"].as_f64(), Some(40.0));
    assert_eq!(back["body"]["lng"].as_f64(), Some(-74.5));
}

#[test]
fn kinds_the_files_do_not_carry_give_no_line() {
    for r in [
        json!({"kind":"account","id":"u1"}),
        json!({"kind":"friend","owner":"u1","friend":"u2"}),
        json!({"kind":"block","owner":"u1","blocked":"u3"}),
        json!({"kind":"group","id":"g1","owner":"u1"}),
        json!({"kind":"member","group":"g1","account":"u2"}),
        json!({"kind":"conversation","owner":"u1","conv":"c2c","peer":"u2"}),
    ] {
        assert_eq!(line_of(&r, &tids), Ok(None), "{r}");
    }
    for r in [json!({"kind":"mystery"}), json!({"id":"x"}), json!([1])] {
        assert_eq!(line_of(&r, &tids).unwrap_err().field, "kind", "{r}");
    }
}

#[test]
fn a_record_that_cannot_be_expressed_names_the_field() {
    let m = |body: Value| json!({"kind":"message","id":"1","conv":"c2c","from":"aaa","to":"bbb","sent_at":1513685265481_i64,"body":body});
    let e = |event: &str| json!({"kind":"group_event","id":"4","group":"g1","actor":"aaa","event":event,"at":1511513944872_i64});
    let mut group_msg = m(json!({"type":"text","text":"x"}));
    group_msg["conv"] = "group".into();
    group_msg["to"] = "g9".into();
    let mut bad_change = e("info_changed");
    bad_change["changes"] = json!({"intro":"x","name":"New name"});
    let mut bad_join = e("info_changed");
    bad_join["changes"] = json!({"join":"sometimes"});
    let mut spaced_id = m(json!({"type":"text","text":"x"}));
    spaced_id["id"] = " 1".into();
    let mut bad_from = m(json!({"type":"text","text":"x"}));
    bad_from["from"] = "张三".into();
    let mut long_to = m(json!({"type":"text","text":"x"}));
    long_to["to"] = "a".repeat(33).into();
    let mut seconds = m(json!({"type":"text","text":"x"}));
    seconds["sent_at"] = 1513685265_i64.into();
    let mut tv = m(json!({"type":"text","text":"x"}));
    tv["client"] = "tv".into();
    let mut chatroom = m(json!({"type":"text","text":"x"}));
    chatroom["conv"] = "chatroom".into();
    let mut no_actor = e("dismissed");
    no_actor.as_object_mut().unwrap().remove("actor");
    let mut bad_tid = group_msg.clone();
    bad_tid["to"] = "g1".into();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            m(json!({"type":"face","index":3})),
            "body.type",
            "no message type for a face",
        ),
        (m(json!({"type":"sticker"})), "body.type", "\"sticker\""),
        (group_msg, "to", "\"g9\": the group has no NetEase team id"),
        (
            m(json!({"type":"custom","data":null})),
            "body.data",
            "payload",
        ),
        (
            m(json!({"type":"location","lat":95,"lng":10})),
            "body.lat",
            "outside",
        ),
        (
            m(json!({"type":"location","lat":10})),
            "body.lng",
            "is required",
        ),
        (m(json!({"type":"image","url":"  "})), "body.url", "url"),
        (
            m(json!({"type":"file","url":"u","size":"big"})),
            "body.size",
            "an integer",
        ),
        (m(json!({"type":"text"})), "body.text", "is required"),
        (e("member_kicked"), "target", "accid2"),
        (e("promoted"), "event", "no NetEase team notification type"),
        (no_actor, "actor", "is required"),
        (bad_change, "changes.name", "no key in NetEase's tinfo"),
        (bad_join, "changes.join", "\"sometimes\""),
        (spaced_id, "id", "spaces at its ends"),
        (bad_from, "from", "not a NetEase account id"),
        (long_to, "to", "not a NetEase account id"),
        (seconds, "sent_at", "looks like seconds"),
        (tv, "client", "no NetEase clientType"),
        (chatroom, "conv", "c2c and group"),
    ];
    for (record, field, needle) in cases {
        let err = line_of(&record, &tids).expect_err(&record.to_string());
        assert_eq!(err.field, field, "{record}: {err}");
        assert!(err.to_string().contains(needle), "{record}: {err}");
        assert!(err.to_string().starts_with(&format!("`{field}`")), "{err}");
    }
    // A team id the map gives but that is unusable is refused too.
    let err = line_of(&bad_tid, &|_| Some(" 5".into())).unwrap_err();
    assert_eq!(err.field, "to", "{err}");
    assert!(err.reason.contains("\"g1\""), "{err}");

    // The writer hands the error back, counts it and writes nothing.
    let (mut files, store) = in_memory(Options::default());
    match files.push(&m(json!({"type":"face","index":3})), &tids) {
        Err(PushError::Line(e)) => assert_eq!(e.field, "body.type"),
        other => panic!("{other:?}"),
    }
    assert!(store.borrow().is_empty());
    let manifest = files.finish().unwrap();
    assert!(manifest.files.is_empty());
    assert_eq!(
        manifest.kept_aside,
        BTreeMap::from([("body.type".into(), 1)])
    );
    assert_eq!(manifest.totals.kept_aside, 1);
}

#[test]
fn manifest_counts_and_hashes_match_the_bytes() {
    let (mut files, store) = in_memory(Options {
        max_file_bytes: 900,
        notifications_apart: true,
    });
    let mut written = 0;
    for r in fixture() {
        files.push(&r, &tids).unwrap();
        written += 1;
    }
    assert_eq!(
        files
            .push(&json!({"kind":"account","id":"u1"}), &tids)
            .unwrap(),
        Pushed::NotCarried
    );
    let face = json!({"kind":"message","id":"f","conv":"c2c","from":"a","to":"b","sent_at":1513685265481_i64,"body":{"type":"face","index":1}});
    assert!(matches!(files.push(&face, &tids), Err(PushError::Line(_))));
    let thumb = json!({"kind":"message","id":"v","conv":"c2c","from":"a","to":"b","sent_at":1513685265481_i64,"odd":1,
        "body":{"type":"video","url":"https://v/1.mp4","thumb_url":"https://v/1.jpg","format":"video/mp4"}});
    assert_eq!(
        files.push(&thumb, &tids).unwrap(),
        Pushed::Written(FileKind::P2p)
    );
    written += 1;
    let manifest = files.finish().unwrap();

    // manifest.json is the manifest returned.
    let json: Manifest = serde_json::from_slice(&store.borrow()[MANIFEST]).unwrap();
    assert_eq!(json, manifest);
    assert_eq!(manifest.format, "netease-migration-lines");
    assert_eq!(manifest.format_version, 1);
    assert!(!manifest.confirmed);
    assert!(
        manifest.note.starts_with("UNCONFIRMED"),
        "{}",
        manifest.note
    );
    assert_eq!(manifest.max_file_bytes, 900);

    // Every file listed, nothing else written; counts and hashes are those of the bytes.
    let names: BTreeSet<String> = store.borrow().keys().cloned().collect();
    let mut listed: BTreeSet<String> = manifest.files.iter().map(|f| f.name.clone()).collect();
    listed.insert(MANIFEST.into());
    assert_eq!(names, listed);
    let mut by_kind: BTreeMap<String, KindTotals> = BTreeMap::new();
    for f in &manifest.files {
        let bytes = store.borrow()[&f.name].clone();
        assert_eq!(f.bytes, bytes.len() as u64, "{}", f.name);
        assert_eq!(
            f.lines,
            bytes.iter().filter(|b| **b == b'\n').count() as u64,
            "{}",
            f.name
        );
        assert_eq!(f.sha256, hex::encode(Sha256::digest(&bytes)), "{}", f.name);
        assert_eq!(f.types.values().sum::<u64>(), f.lines, "{}", f.name);
        assert!(f.first_at <= f.last_at);
        assert!(f.name.starts_with(&format!("{}-", f.kind)) && f.name.ends_with(".txt"));
        let k = by_kind.entry(f.kind.clone()).or_default();
        k.files += 1;
        k.lines += f.lines;
        k.bytes += f.bytes;
    }
    let t = &manifest.totals;
    assert_eq!(t.files, manifest.files.len() as u64);
    assert_eq!(t.lines, written);
    assert_eq!(t.bytes, manifest.files.iter().map(|f| f.bytes).sum::<u64>());
    assert_eq!(t.by_kind, by_kind);
    assert_eq!((t.kept_aside, t.not_carried), (1, 1));
    assert_eq!(
        manifest.not_carried,
        BTreeMap::from([("account".into(), 1)])
    );
    assert_eq!(
        manifest.left_out,
        BTreeMap::from([
            ("body.format".into(), 1),
            ("body.thumb_url".into(), 1),
            ("odd".into(), 1)
        ])
    );
    // The files are numbered per kind from 0001.
    assert!(names.contains("p2p-0001.txt") && names.contains("p2p-0002.txt"));
    assert!(names.contains("team-0001.txt") && names.contains("team-notification-0001.txt"));
}

#[test]
fn files_split_at_the_limit_and_never_split_a_line() {
    let max = 600;
    let (mut files, store) = in_memory(Options {
        max_file_bytes: max,
        notifications_apart: false,
    });
    let mut pushed = 0;
    for round in 0..3 {
        for mut r in fixture() {
            r["id"] = format!("{round}-{}", r["id"].as_str().unwrap()).into();
            files.push(&r, &tids).unwrap();
            pushed += 1;
        }
        // A line longer than the limit, in the middle of the stream.
        let long = json!({"kind":"message","id":format!("long-{round}"),"conv":"c2c","from":"aaa","to":"bbb",
            "sent_at":1513685265481_i64,"body":{"type":"text","text":"长".repeat(400)}});
        files.push(&long, &tids).unwrap();
        pushed += 1;
    }
    let manifest = files.finish().unwrap();
    assert_eq!(manifest.totals.lines, pushed);

    let mut oversized = 0;
    let mut previous: Option<&FileEntry> = None;
    for f in &manifest.files {
        let text = text_of(&store, &f.name);
        assert!(text.ends_with('\n'), "{}", f.name);
        for line in text.lines() {
            // Every line is whole: it parses and reads.
            one(line);
        }
        if f.bytes > max {
            assert_eq!(
                f.lines, 1,
                "{} is over the limit with more than one line",
                f.name
            );
            oversized += 1;
        }
        // A new file of the same kind began only because its first line did not fit.
        if let Some(p) = previous.filter(|p| p.kind == f.kind) {
            let first = text.lines().next().unwrap().len() as u64 + 1;
            assert!(
                p.bytes + first > max,
                "{} could have gone on in {}",
                f.name,
                p.name
            );
        }
        previous = Some(f);
    }
    assert_eq!(oversized, 3);
    assert!(manifest.totals.by_kind["p2p"].files >= 6);
    assert!(manifest.totals.by_kind["team"].files >= 3);
}

#[test]
fn in_dir_writes_new_files_and_never_overwrites() {
    let dir = std::env::temp_dir().join(format!(
        "imshift-netease-history-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut files = HistoryFiles::in_dir(&dir, Options::default()).unwrap();
    for r in fixture() {
        files.push(&r, &tids).unwrap();
    }
    let manifest = files.finish().unwrap();
    let on_disk: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).unwrap()).unwrap();
    assert_eq!(on_disk, manifest);
    assert_eq!(
        manifest
            .files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["p2p-0001.txt", "team-0001.txt"]
    );
    for f in &manifest.files {
        let bytes = std::fs::read(dir.join(&f.name)).unwrap();
        assert_eq!(f.sha256, hex::encode(Sha256::digest(&bytes)));
    }
    // A second run into the same directory fails rather than overwrite, and stays failed.
    let mut again = HistoryFiles::in_dir(&dir, Options::default()).unwrap();
    let r = &fixture()[0];
    assert!(matches!(again.push(r, &tids), Err(PushError::Io(_))));
    assert!(matches!(again.push(r, &tids), Err(PushError::Io(_))));
    assert!(again.finish().is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
