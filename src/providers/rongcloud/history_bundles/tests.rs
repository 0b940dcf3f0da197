use super::*;
use serde_json::json;
use std::collections::{BTreeSet, HashSet};

fn no_map(_: &str) -> Option<String> {
    None
}

fn msg(id: &str, conv: &str, from: &str, to: &str, at: i64, body: Value) -> Value {
    json!({"kind":"message","id":id,"conv":conv,"from":from,"to":to,"sent_at":at,"body":body})
}

/// The line of `body` sent by u1 to u2, from u1's side, as JSON.
fn line_of(body: Value) -> (Value, Message) {
    let m = encode(
        &msg("m1", "c2c", "u1", "u2", 1_700_000_000_123, body),
        &no_map,
    )
    .unwrap()
    .unwrap();
    (serde_json::from_str(&m.user_line("u1")).unwrap(), m)
}

#[test]
fn every_body_type_has_its_object_name_and_content() {
    let (l, m) = line_of(json!({"type":"text","text":"hello"}));
    assert_eq!(l["objectName"], "RC:TxtMsg");
    assert_eq!(l["content"], json!({"content":"hello"}));
    assert!(m.left_out.is_empty());

    let (l, m) = line_of(
        json!({"type":"image","url":"https://m/i.jpg","name":"i.jpg","size":10,"width":3,"height":4,"format":"jpg"}),
    );
    assert_eq!(l["objectName"], "RC:ImgMsg");
    assert_eq!(
        l["content"],
        json!({"content":"","imageUri":"https://m/i.jpg"})
    );
    let lo: BTreeSet<_> = m.left_out.iter().map(String::as_str).collect();
    assert_eq!(
        lo,
        BTreeSet::from([
            "body.name",
            "body.size",
            "body.width",
            "body.height",
            "body.format"
        ])
    );

    let (l, _) = line_of(
        json!({"type":"image","url":"https://m/a.gif","size":10,"width":3,"height":4,"format":"GIF"}),
    );
    assert_eq!(l["objectName"], "RC:GIFMsg");
    assert_eq!(
        l["content"],
        json!({"remoteUrl":"https://m/a.gif","gifDataSize":10,"width":3,"height":4})
    );

    let (l, m) = line_of(
        json!({"type":"audio","url":"https://m/a.aac","size":9,"duration_ms":1200,"format":"aac"}),
    );
    assert_eq!(l["objectName"], "RC:HQVCMsg");
    // Seconds, rounded up.
    assert_eq!(
        l["content"],
        json!({"remoteUrl":"https://m/a.aac","duration":2})
    );
    assert_eq!(m.left_out, ["body.format", "body.size"]);

    let (l, m) = line_of(
        json!({"type":"video","url":"https://m/v/clip.mp4?sig=1","size":99,"duration_ms":3000,"width":1,"height":2,"format":"mp4","thumb_url":"https://m/t.jpg"}),
    );
    assert_eq!(l["objectName"], "RC:SightMsg");
    assert_eq!(
        l["content"],
        json!({"content":"","name":"clip.mp4","sightUrl":"https://m/v/clip.mp4?sig=1","duration":3,"size":99})
    );
    assert!(m.left_out.contains(&"body.thumb_url".to_string()));

    let (l, _) = line_of(json!({"type":"file","url":"https://m/f/1","name":"Report.PDF","size":5}));
    assert_eq!(l["objectName"], "RC:FileMsg");
    assert_eq!(
        l["content"],
        json!({"name":"Report.PDF","size":5,"type":"pdf","fileUrl":"https://m/f/1"})
    );
    let (l, _) = line_of(json!({"type":"file","url":"https://m/f/notes.txt","format":"md"}));
    assert_eq!(
        l["content"],
        json!({"name":"notes.txt","type":"md","fileUrl":"https://m/f/notes.txt"})
    );

    let (l, _) = line_of(json!({"type":"location","lat":"31.25","lng":121.5,"title":"人民广场"}));
    assert_eq!(l["objectName"], "RC:LBSMsg");
    assert_eq!(
        l["content"],
        json!({"content":"","latitude":31.25,"longitude":121.5,"poi":"人民广场"})
    );

    let (l, _) =
        line_of(json!({"type":"custom","data":{"kind":"red_packet","amount":3},"desc":"红包"}));
    assert_eq!(l["objectName"], CUSTOM_OBJECT_NAME);
    assert_eq!(
        l["content"],
        json!({"data":{"kind":"red_packet","amount":3},"desc":"红包"})
    );
    assert!(!CUSTOM_OBJECT_NAME.starts_with("RC:") && CUSTOM_OBJECT_NAME.len() <= 32);

    // `ext` is every content's `extra`; `client` has no place.
    let mut r = msg(
        "m2",
        "c2c",
        "u1",
        "u2",
        1_700_000_000_000,
        json!({"type":"text","text":"x"}),
    );
    r["ext"] = "e".into();
    r["client"] = "ios".into();
    let m = encode(&r, &no_map).unwrap().unwrap();
    let l: Value = serde_json::from_str(&m.user_line("u2")).unwrap();
    assert_eq!(l["content"], json!({"content":"x","extra":"e"}));
    assert_eq!(m.left_out, ["client"]);
}

#[test]
fn a_line_has_every_field_insert_takes_in_order() {
    let m = encode(
        &msg(
            "m1",
            "c2c",
            "u1",
            "u2",
            1_700_000_000_123,
            json!({"type":"text","text":"hi"}),
        ),
        &no_map,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        m.user_line("u1"),
        format!(
            r#"{{"conversationType":1,"targetId":"u2","senderUserId":"u1","messageDirection":1,"objectName":"RC:TxtMsg","content":{{"content":"hi"}},"sentTime":1700000000123,"messageUId":"{}"}}"#,
            m.uid
        )
    );
}

#[test]
fn each_side_reads_a_one_to_one_message_its_way_and_groups_have_no_direction() {
    let m = encode(
        &msg(
            "m1",
            "c2c",
            "alice",
            "bob",
            1_700_000_000_000,
            json!({"type":"text","text":"hi"}),
        ),
        &no_map,
    )
    .unwrap()
    .unwrap();
    let a: Value = serde_json::from_str(&m.user_line("alice")).unwrap();
    let b: Value = serde_json::from_str(&m.user_line("bob")).unwrap();
    assert_eq!(
        (a["targetId"].as_str(), a["messageDirection"].as_u64()),
        (Some("bob"), Some(1))
    );
    assert_eq!(
        (b["targetId"].as_str(), b["messageDirection"].as_u64()),
        (Some("alice"), Some(2))
    );
    for l in [&a, &b] {
        assert_eq!(l["conversationType"], 1);
        assert_eq!(l["senderUserId"], "alice");
        assert_eq!(l["messageUId"], a["messageUId"], "one message, one UID");
    }
    // To oneself: sent, with oneself as target.
    let me = encode(
        &msg(
            "m2",
            "c2c",
            "alice",
            "alice",
            1_700_000_000_000,
            json!({"type":"text","text":"note"}),
        ),
        &no_map,
    )
    .unwrap()
    .unwrap();
    let l: Value = serde_json::from_str(&me.user_line("alice")).unwrap();
    assert_eq!(
        (l["targetId"].as_str(), l["messageDirection"].as_u64()),
        (Some("alice"), Some(1))
    );

    // A group line: the RongCloud group (an id the import recorded, else the old one), no
    // direction.
    let map = |g: &str| (g == "old1").then(|| "new1".to_string());
    let g = encode(
        &msg(
            "m3",
            "group",
            "bob",
            "old1",
            1_700_000_000_000,
            json!({"type":"text","text":"all"}),
        ),
        &map,
    )
    .unwrap()
    .unwrap();
    let l: Value = serde_json::from_str(&g.group_line()).unwrap();
    assert_eq!(l["conversationType"], 3);
    assert_eq!(l["targetId"], "new1");
    assert_eq!(l["senderUserId"], "bob");
    assert!(l.get("messageDirection").is_none());
    let g = encode(
        &msg(
            "m4",
            "group",
            "bob",
            "g7",
            1_700_000_000_000,
            json!({"type":"text","text":"all"}),
        ),
        &map,
    )
    .unwrap()
    .unwrap();
    assert_eq!(g.to, "g7");
}

#[test]
fn what_rongcloud_cannot_carry_is_kept_aside_with_why() {
    let cases = [
        (
            msg(
                "m",
                "c2c",
                "u1",
                "u2",
                1_700_000_000_000,
                json!({"type":"face","index":3,"data":"tt"}),
            ),
            "body.type",
            "face",
        ),
        (
            msg(
                "m",
                "c2c",
                "a@b",
                "u2",
                1_700_000_000_000,
                json!({"type":"text","text":"x"}),
            ),
            "from",
            "not a RongCloud userId",
        ),
        (
            msg(
                "m",
                "c2c",
                "u1",
                "u 2",
                1_700_000_000_000,
                json!({"type":"text","text":"x"}),
            ),
            "to",
            "not a RongCloud userId",
        ),
        (
            msg(
                "m",
                "group",
                "u1",
                "g_1",
                1_700_000_000_000,
                json!({"type":"text","text":"x"}),
            ),
            "to",
            "not a RongCloud groupId",
        ),
        (
            msg(
                "m",
                "c2c",
                "u1",
                "u2",
                1_700_000_000,
                json!({"type":"text","text":"x"}),
            ),
            "sent_at",
            "looks like seconds",
        ),
        (
            msg(
                "m",
                "c2c",
                "u1",
                "u2",
                1_700_000_000_000,
                json!({"type":"image"}),
            ),
            "body.url",
            "required",
        ),
        (
            msg(
                "m",
                "c2c",
                "u1",
                "u2",
                1_700_000_000_000,
                json!({"type":"location","lat":91,"lng":0}),
            ),
            "body.lat",
            "outside",
        ),
        (
            msg(
                "",
                "c2c",
                "u1",
                "u2",
                1_700_000_000_000,
                json!({"type":"text","text":"x"}),
            ),
            "id",
            "empty",
        ),
    ];
    for (r, field, why) in cases {
        let e = encode(&r, &no_map).unwrap_err();
        assert_eq!(e.field, field, "{r}");
        assert!(e.to_string().contains(why), "{e}");
    }
    // Group events and the kinds that are no history are not carried.
    for r in [
        json!({"kind":"group_event","id":"e1","group":"g1","actor":"u1","event":"member_left","at":1_700_000_000_000i64}),
        json!({"kind":"account","id":"u1"}),
        json!({"kind":"conversation","owner":"u1","conv":"c2c","peer":"u2"}),
    ] {
        assert_eq!(encode(&r, &no_map).unwrap(), None, "{r}");
    }
}

#[test]
fn message_uids_are_stable_unique_and_rongcloud_shaped() {
    let a = message_uid("c2c", "m1", "u1", "u2", 1_700_000_000_000);
    assert_eq!(a, message_uid("c2c", "m1", "u1", "u2", 1_700_000_000_000));
    assert_eq!(a.len(), 19);
    assert!(a.split('-').all(|p| p.len() == 4
        && p.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))));
    let mut seen = HashSet::new();
    for i in 0..20_000 {
        assert!(seen.insert(message_uid(
            "c2c",
            &i.to_string(),
            "u1",
            "u2",
            1_700_000_000_000
        )));
    }
    // Every part of the identity counts.
    for other in [
        message_uid("group", "m1", "u1", "u2", 1_700_000_000_000),
        message_uid("c2c", "m2", "u1", "u2", 1_700_000_000_000),
        message_uid("c2c", "m1", "u2", "u1", 1_700_000_000_000),
        message_uid("c2c", "m1", "u1", "u2", 1_700_000_000_001),
    ] {
        assert_ne!(a, other);
    }
}

#[test]
fn odd_ids_round_trip_through_file_names() {
    let ids = [
        "alice", "u_1-x", "Bob", "a+b=c", "张三", "x~1", "user-x", "4a6f65", "-", "a.b", "A",
    ];
    let mut names = HashSet::new();
    for kind in [FileKind::User, FileKind::Group] {
        for id in ids {
            let name = file_name(kind, id);
            // Safe for the download route and any disk: no percent-escapes, slashes or
            // upper case (a case-insensitive disk would fold `Bob` into `bob`).
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.~".contains(&b)),
                "{name}"
            );
            assert_eq!(
                id_of_file_name(&name),
                Some((kind, id.to_string())),
                "{name}"
            );
            assert!(names.insert(name));
        }
    }
    assert_eq!(file_name(FileKind::User, "alice"), "user-alice.jsonl");
    assert_eq!(file_name(FileKind::User, "Joe"), "user~4a6f65.jsonl");
    assert_eq!(file_name(FileKind::Group, "g1"), "group-g1.jsonl");
    for not_ours in [
        "manifest.json",
        "kept_aside.jsonl",
        "user-Joe.jsonl",
        "user~4A.jsonl",
        "user~zz.jsonl",
        "user~616c696365.jsonl",
    ] {
        assert_eq!(id_of_file_name(not_ours), None, "{not_ours}");
    }
}

/// A deterministic pseudo-random sequence (no dependency for tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn temp_dir(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "imshift-rc-bundles-{what}-{}",
        uuid::Uuid::new_v4()
    ))
}

fn bodies(i: u64) -> Value {
    match i % 9 {
        0 => json!({"type":"image","url":format!("https://m/{i}.jpg"),"format":"jpg"}),
        1 => json!({"type":"audio","url":format!("https://m/{i}.aac"),"duration_ms":2500}),
        2 => json!({"type":"custom","data":{"n":i}}),
        _ => json!({"type":"text","text":format!("message {i}")}),
    }
}

#[test]
fn thousands_of_accounts_stream_through_few_open_files() {
    const ACCOUNTS: u64 = 3_000;
    const MAX_OPEN: usize = 16;
    let account = |i: u64| -> String {
        match i {
            // Ids that must be encoded in file names.
            0 => "Odd+Id=0".into(),
            1 => "UPPER".into(),
            _ => format!("u{i:05}"),
        }
    };
    let mut rng = Lcg(7);
    let mut records = vec![];
    let base = 1_700_000_000_000i64;
    for i in 0..6_000u64 {
        let a = rng.next(ACCOUNTS);
        // One in a hundred to oneself.
        let b = if i % 100 == 0 { a } else { rng.next(ACCOUNTS) };
        let at = base + rng.next(10_000_000) as i64;
        records.push(msg(
            &format!("c{i}"),
            "c2c",
            &account(a),
            &account(b),
            at,
            bodies(i),
        ));
    }
    for i in 0..1_500u64 {
        let g = format!("g{}", rng.next(40));
        let at = base + rng.next(10_000_000) as i64;
        records.push(msg(
            &format!("g{i}"),
            "group",
            &account(rng.next(ACCOUNTS)),
            &g,
            at,
            bodies(i),
        ));
    }
    for i in 0..30u64 {
        records.push(msg(
            &format!("f{i}"),
            "c2c",
            &account(i + 2),
            &account(i + 3),
            base,
            json!({"type":"face","index":1}),
        ));
    }
    // The build's order: messages by conversation kind, receiver, sender, time; then events.
    let key = |r: &Value| {
        (
            r["conv"].as_str().unwrap().to_string(),
            r["to"].as_str().unwrap().to_string(),
            r["from"].as_str().unwrap().to_string(),
            r["sent_at"].as_i64().unwrap(),
        )
    };
    records.sort_by_key(key);
    for i in 0..25u64 {
        records.push(json!({"kind":"group_event","id":format!("e{i}"),"group":"g1","actor":account(5),"event":"member_left","at":base}));
    }

    let dir = temp_dir("stream");
    let mut w = BundleWriter::new(&dir, MAX_OPEN).unwrap();
    let (mut written, mut aside, mut skipped) = (0, 0, 0);
    for r in &records {
        match w.push(r, &no_map) {
            Ok(Pushed::Written) => written += 1,
            Ok(Pushed::NotCarried) => skipped += 1,
            Err(PushError::Line(e)) => {
                assert_eq!(e.field, "body.type");
                aside += 1;
            }
            Err(PushError::Io(e)) => panic!("{e}"),
        }
        assert!(w.open_files() <= MAX_OPEN, "{} files open", w.open_files());
    }
    assert_eq!((written, aside, skipped), (7_500, 30, 25));
    let peak = w.peak_open();
    let opens = w.opens();
    let m = w.finish().unwrap();
    assert!(peak <= MAX_OPEN && peak > 1, "peak {peak}");
    // Far more files than handles: files were closed and reopened to append.
    assert!(m.files.len() > 10 * MAX_OPEN, "{} files", m.files.len());
    assert!(opens > m.files.len() as u64, "{opens} opens");

    // What each file must hold: (messageUId, targetId, direction) per line.
    let mut want: BTreeMap<String, BTreeSet<(String, String, Option<u64>)>> = BTreeMap::new();
    let (mut c2c, mut group, mut lines) = (0u64, 0u64, 0u64);
    for r in records
        .iter()
        .filter(|r| r["kind"] == "message" && r["body"]["type"] != "face")
    {
        let (from, to) = (r["from"].as_str().unwrap(), r["to"].as_str().unwrap());
        let at = r["sent_at"].as_i64().unwrap();
        let conv = r["conv"].as_str().unwrap();
        let uid = message_uid(conv, r["id"].as_str().unwrap(), from, to, at);
        if conv == "group" {
            group += 1;
            lines += 1;
            want.entry(file_name(FileKind::Group, to))
                .or_default()
                .insert((uid, to.into(), None));
            continue;
        }
        c2c += 1;
        want.entry(file_name(FileKind::User, from))
            .or_default()
            .insert((uid.clone(), to.into(), Some(1)));
        lines += 1;
        if from != to {
            lines += 1;
            want.entry(file_name(FileKind::User, to))
                .or_default()
                .insert((uid, from.into(), Some(2)));
        }
    }
    assert_eq!(
        (
            m.totals.messages,
            m.totals.c2c_messages,
            m.totals.group_messages,
            m.totals.lines
        ),
        (c2c + group, c2c, group, lines)
    );
    assert_eq!(m.totals.kept_aside, 30);
    assert_eq!(
        m.kept_aside,
        BTreeMap::from([("body.type".to_string(), 30)])
    );
    assert_eq!(
        m.not_carried,
        BTreeMap::from([("group_event".to_string(), 25)])
    );
    assert!(m.not_carried_why["group_event"].contains("RC:GrpNtf"));
    assert!(!m.server_import);
    assert_eq!(m.files.len(), want.len());
    assert_eq!(m.totals.files, (m.totals.user_files + m.totals.group_files));
    assert_eq!(
        m.totals.group_files,
        m.files.iter().filter(|f| f.kind == FileKind::Group).count() as u64
    );

    let mut on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(on_disk.remove(MANIFEST));
    assert_eq!(on_disk, want.keys().cloned().collect(), "no stray files");
    let (mut sum_lines, mut sum_bytes) = (0, 0);
    for f in &m.files {
        let bytes = std::fs::read(dir.join(&f.name)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), f.sha256, "{}", f.name);
        assert_eq!(bytes.len() as u64, f.bytes);
        let (kind, id) = id_of_file_name(&f.name).unwrap();
        assert_eq!(kind, f.kind);
        match kind {
            FileKind::User => assert_eq!(f.account.as_deref(), Some(id.as_str())),
            FileKind::Group => assert_eq!(f.group.as_deref(), Some(id.as_str())),
        }
        let mut got = BTreeSet::new();
        let mut last = i64::MIN;
        let mut objects: BTreeMap<String, u64> = BTreeMap::new();
        for l in std::str::from_utf8(&bytes).unwrap().lines() {
            let l: Value = serde_json::from_str(l).unwrap();
            let t = l["sentTime"].as_i64().unwrap();
            assert!(t >= last, "{}: not in time order", f.name);
            last = t;
            assert_eq!(
                l["conversationType"],
                if kind == FileKind::User { 1 } else { 3 }
            );
            if kind == FileKind::User {
                // Sent by the file's account, or received from the conversation's other side.
                let sender = l["senderUserId"].as_str().unwrap();
                match l["messageDirection"].as_u64().unwrap() {
                    1 => assert_eq!(sender, id, "{l}"),
                    2 => {
                        assert_ne!(sender, id, "{l}");
                        assert_eq!(l["targetId"], sender, "{l}");
                    }
                    d => panic!("direction {d}"),
                }
            }
            *objects
                .entry(l["objectName"].as_str().unwrap().into())
                .or_default() += 1;
            assert!(
                got.insert((
                    l["messageUId"].as_str().unwrap().to_string(),
                    l["targetId"].as_str().unwrap().to_string(),
                    l["messageDirection"].as_u64(),
                )),
                "a line twice in {}",
                f.name
            );
        }
        assert!(f.time_ordered);
        assert_eq!(
            got, want[&f.name],
            "{} holds exactly its conversations",
            f.name
        );
        assert_eq!(got.len() as u64, f.lines);
        assert_eq!(objects, f.object_names);
        sum_lines += f.lines;
        sum_bytes += f.bytes;
    }
    assert_eq!((sum_lines, sum_bytes), (m.totals.lines, m.totals.bytes));
    assert!(m
        .files
        .iter()
        .any(|f| f.name == file_name(FileKind::User, "Odd+Id=0")));
    assert!(m.files.iter().any(|f| f.name == "user~5550504552.jsonl"));
    // The manifest on disk is the one returned.
    let on_disk: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).unwrap()).unwrap();
    assert_eq!(on_disk, m);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_seam_writes_through_the_trait_and_refuses_an_occupied_name() {
    let dir = temp_dir("seam");
    let h: &dyn HandOver = &Bundles;
    assert_eq!(h.phases(), ["c2c_history", "group_history"]);
    assert!(h.note().contains("not a server import"));
    let text = msg(
        "m1",
        "c2c",
        "u1",
        "u2",
        1_700_000_000_000,
        json!({"type":"text","text":"hi"}),
    );
    assert_eq!(
        h.line(&text, &no_map).unwrap(),
        None,
        "no importer pulls lines"
    );
    let mut w = h.writer(&dir).unwrap();
    assert!(w.push(&text, &no_map).unwrap());
    let face = msg(
        "m2",
        "c2c",
        "u1",
        "u2",
        1_700_000_000_000,
        json!({"type":"face","index":1}),
    );
    assert!(
        matches!(w.push(&face, &no_map), Err(HandOverError::Record(why)) if why.contains("face"))
    );
    let event = json!({"kind":"group_event","id":"e","group":"g1","actor":"u1","event":"dismissed","at":1_700_000_000_000i64});
    assert!(!w.push(&event, &no_map).unwrap());
    let m = w.finish().unwrap();
    assert_eq!(m["totals"]["lines"], 2);
    assert_eq!(m["files"][0]["name"], "user-u1.jsonl");
    assert_eq!(m["files"][0]["account"], "u1");
    assert_eq!(m["format_version"], FORMAT_VERSION);

    // A file already there is never appended to: the build starts from an empty folder.
    let dir2 = temp_dir("occupied");
    std::fs::create_dir_all(&dir2).unwrap();
    std::fs::write(dir2.join("user-u1.jsonl"), "old\n").unwrap();
    let mut w = BundleWriter::new(&dir2, 4).unwrap();
    assert!(matches!(w.push(&text, &no_map), Err(PushError::Io(_))));
    assert!(
        matches!(w.push(&text, &no_map), Err(PushError::Io(_))),
        "refuses after a failure"
    );
    assert!(w.finish().is_err());
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir2).unwrap();
}

#[test]
fn a_file_written_out_of_time_order_is_sorted_at_the_end() {
    // (A file over SORT_LIMIT would stay as written and say `time_ordered: false`.)
    let dir = temp_dir("order");
    let mut w = BundleWriter::new(&dir, 2).unwrap();
    for (i, at) in [3, 1, 2].into_iter().enumerate() {
        let r = msg(
            &format!("m{i}"),
            "c2c",
            "u1",
            "u2",
            1_700_000_000_000 + at,
            json!({"type":"text","text":format!("{at}")}),
        );
        w.push(&r, &no_map).unwrap();
    }
    let m = w.finish().unwrap();
    let f = &m.files[0];
    assert!(f.time_ordered);
    assert_eq!(
        (f.first_sent_time, f.last_sent_time),
        (1_700_000_000_001, 1_700_000_000_003)
    );
    let text = std::fs::read_to_string(dir.join(&f.name)).unwrap();
    let order: Vec<i64> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["sentTime"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        order,
        [1_700_000_000_001, 1_700_000_000_002, 1_700_000_000_003]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
