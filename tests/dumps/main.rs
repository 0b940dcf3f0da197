//! The canonical dump validator, through the library and through `imshift validate`.

mod hostile;
mod report_state;
mod words;

use imshift::dumps::validate::{target_rules, validate_files, Target};
use imshift::dumps::{Report, Severity};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Tencent IM's rules on records, as the registry gives them.
fn tencent() -> Option<Target> {
    target_rules(&imshift::providers::Registry::builtin(), "tencent")
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imshift-dumps-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const GOOD: &str = r#"{"kind":"account","id":"u1","nick":"Alice","gender":"female","created_at":1513685265481,"custom":{"level":"3"}}
{"kind":"account","id":"u2","nick":"Bob"}
{"kind":"account","id":"u3"}

{"kind":"friend","owner":"u1","friend":"u2","remark":"Bob from work","groups":["Work"],"added_at":"1513685265481"}
{"kind":"block","owner":"u1","blocked":"u3","at":1513685265481}
{"kind":"group","id":"g1","type":"private","name":"Team","owner":"u1","created_at":1513685265000,"max_members":500,"join":"need_permission","muted":false}
{"kind":"member","group":"g1","account":"u2","role":"admin","joined_at":1513685265100}
{"kind":"message","id":"m-1","conv":"c2c","from":"u1","to":"u2","sent_at":1513685265481,"client":"ios","body":{"type":"text","text":"hi"}}
{"kind":"message","id":"m-2","conv":"group","from":"u2","to":"g1","sent_at":1513685266000,"body":{"type":"image","url":"https://x/a.png","width":10,"height":10}}
{"kind":"message","id":"m-3","conv":"c2c","from":"u2","to":"u1","sent_at":1513685267000,"body":{"type":"location","lat":"31.2","lng":121.5,"title":"Office"}}
{"kind":"group_event","id":"e-1","group":"g1","actor":"u1","target":"u2","event":"admin_added","at":1513685265200}
{"kind":"conversation","owner":"u1","conv":"group","peer":"g1","last_at":1513685266000,"unread":0,"pinned":true}
"#;

fn codes_at(report: &Report) -> Vec<(String, u64, &'static str)> {
    report
        .findings
        .iter()
        .map(|f| {
            (
                f.file.rsplit('/').next().unwrap().to_string(),
                f.line,
                f.code,
            )
        })
        .collect()
}

#[test]
fn a_clean_dump_is_counted_and_accepted_whole() {
    let dir = scratch();
    let f = write(&dir, "good.jsonl", GOOD);
    let report = validate_files(&[&f], None, tencent()).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.counts["account"], 3);
    assert_eq!(report.counts["message"], 3);
    assert_eq!(report.accepted["message"], 3);
    assert!(report.rejected.is_empty());
}

#[test]
fn every_line_rule_fails_with_its_code_and_line() {
    let dir = scratch();
    let bad = format!(
        "{GOOD}{}",
        [
            r#"{"kind":"account","id":"u1","nick":"Alice again"}"#, // 14 account.duplicate (warning)
            r#"{"kind":"account","id":"u4""#,                       // 15 json.syntax
            r#"{"id":"u5"}"#,                                       // 16 record.kind_missing
            r#"{"kind":"acount","id":"u5"}"#,                       // 17 record.kind_unknown
            r#"{"kind":"friend","owner":"u1"}"#,                    // 18 field.missing
            r#"{"kind":"account","id":42}"#,                        // 19 field.type
            r#"{"kind":"account","id":"u6","gender":"x"}"#,         // 20 field.value
            r#"{"kind":"account","id":"u7","vip":true}"#,           // 21 field.unknown (warning)
            r#"{"kind":"account","id":"u8","vip":false}"#,          // 22 (reported once)
            r#"{"kind":"account","id":""}"#,                        // 23 id.invalid
            r#"{"kind":"account","id":"u9","created_at":1513685265}"#, // 24 time.seconds (warning)
            r#"{"kind":"message","id":"m-1","conv":"c2c","from":"u1","to":"u2","sent_at":1513685265481,"body":{"type":"text","text":"hi"}}"#, // 25 message.duplicate
            r#"{"kind":"friend","owner":"u1","friend":"ghost"}"#, // 26 ref.account_missing
            r#"{"kind":"member","group":"g404","account":"u2"}"#, // 27 ref.group_missing
            r#"{"kind":"member","group":"g1","account":"u3","role":"owner"}"#, // 28 group.owner_conflict
            r#"{"kind":"message","id":"m-9","conv":"group","from":"u3","to":"g1","sent_at":1513685269000,"body":{"type":"text","text":"?"}}"#, // 29 message.sender_not_member
            r#"{"kind":"message","id":"m-10","conv":"c2c","from":"u1","to":"u2","sent_at":1513685269000,"body":{"type":"sticker"}}"#, // 30 field.value
            r#"{"kind":"group","id":"@TGS#bad","owner":"u1","type":"broadcast"}"#, // 31 target.group_id + target.group_type
        ]
        .join("\n")
    );
    let f = write(&dir, "bad.jsonl", &bad);
    let report = validate_files(&[&f], None, tencent()).unwrap();
    let got = codes_at(&report);
    let want = [
        (14, "account.duplicate"),
        (15, "json.syntax"),
        (16, "record.kind_missing"),
        (17, "record.kind_unknown"),
        (18, "field.missing"),
        (19, "field.type"),
        (20, "field.value"),
        (21, "field.unknown"),
        (23, "id.invalid"),
        (24, "time.seconds"),
        (25, "message.duplicate"),
        (26, "ref.account_missing"),
        (27, "ref.group_missing"),
        (28, "group.owner_conflict"),
        (29, "message.sender_not_member"),
        (30, "field.value"),
        (31, "target.group_id"),
        (31, "target.group_type"),
    ];
    for (line, code) in want {
        assert!(
            got.iter()
                .any(|(file, l, c)| file == "bad.jsonl" && *l == line && *c == code),
            "expected {code} at bad.jsonl:{line}; got {got:#?}"
        );
    }
    assert!(
        !got.iter().any(|(_, l, _)| *l == 22),
        "an unknown field is reported once"
    );
    // Warnings do not reject; errors do.
    let sev = |code: &str| {
        report
            .findings
            .iter()
            .find(|f| f.code == code)
            .unwrap()
            .severity
    };
    assert_eq!(sev("field.unknown"), Severity::Warning);
    assert_eq!(sev("ref.account_missing"), Severity::Error);
    assert_eq!(
        report.counts["account"],
        3 + 4,
        "lines that parsed, per kind"
    );
    assert!(report.rejected["unreadable_lines"] >= 8);
    // Every finding says what, in words, with the offending value where there is one.
    let dup = report
        .findings
        .iter()
        .find(|f| f.code == "message.duplicate")
        .unwrap();
    assert!(dup.message.contains("bad.jsonl:9"), "{}", dup.message);
}

#[test]
fn tencent_group_order_is_a_warning_once_per_group_and_only_for_tencent() {
    let dir = scratch();
    let burst = [1513685270000i64, 1513685270400, 1513685270900, 1513685275000]
        .iter()
        .enumerate()
        .map(|(i, t)| format!(r#"{{"kind":"message","id":"b{i}","conv":"group","from":"u1","to":"g1","sent_at":{t},"body":{{"type":"text","text":"x"}}}}"#))
        .collect::<Vec<_>>()
        .join("\n");
    let f = write(&dir, "burst.jsonl", &format!("{GOOD}{burst}\n"));
    let report = validate_files(&[&f], None, tencent()).unwrap();
    let order: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.code == "target.group_order")
        .collect();
    assert_eq!(order.len(), 1, "{:#?}", report.findings);
    assert_eq!(order[0].line, 15, "points at the first message that moves");
    assert_eq!(order[0].severity, Severity::Warning);
    assert!(
        order[0].message.contains("2 messages of group \"g1\""),
        "{}",
        order[0].message
    );
    assert_eq!(
        report.rejected.get("message"),
        None,
        "a warning rejects nothing"
    );
    let plain = validate_files(&[&f], None, None).unwrap();
    assert!(plain
        .findings
        .iter()
        .all(|f| f.code != "target.group_order"));
}

#[test]
fn containers_gzip_zip_and_their_failures() {
    let dir = scratch();
    // gzip of the good dump reads the same.
    let gz_path = dir.join("good.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(GOOD.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    std::fs::write(&gz_path, &gz).unwrap();
    let report = validate_files(&[&gz_path], None, None).unwrap();
    assert_eq!(report.counts["message"], 3);
    assert!(!report.has_errors());

    // A truncated gzip: what was readable is read, and the damage is reported.
    let cut = dir.join("cut.jsonl.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let report = validate_files(&[&cut], None, None).unwrap();
    assert!(
        report.findings.iter().any(|f| f.code == "gzip.truncated"),
        "{:#?}",
        report.findings
    );

    // A zip with a traversal name: that entry is refused, the others are read.
    let zip_path = dir.join("dump.zip");
    {
        let mut zw = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        zw.start_file("part-1.jsonl", opts).unwrap();
        zw.write_all(GOOD.as_bytes()).unwrap();
        zw.start_file("../../etc/evil.jsonl", opts).unwrap();
        zw.write_all(b"{\"kind\":\"account\",\"id\":\"evil\"}\n")
            .unwrap();
        zw.finish().unwrap();
    }
    let report = validate_files(&[&zip_path], None, None).unwrap();
    assert_eq!(report.counts["account"], 3, "the unsafe entry was not read");
    let f = report
        .findings
        .iter()
        .find(|f| f.code == "zip.unsafe_name")
        .unwrap();
    assert!(f.message.contains("../../etc/evil.jsonl"));

    // Invalid UTF-8 is a finding on its line, not a crash.
    let latin = dir.join("latin1.jsonl");
    std::fs::write(
        &latin,
        b"{\"kind\":\"account\",\"id\":\"u1\"}\n{\"kind\":\"account\",\"id\":\"caf\xe9\"}\n",
    )
    .unwrap();
    let report = validate_files(&[&latin], None, None).unwrap();
    assert_eq!(
        codes_at(&report),
        vec![("latin1.jsonl".to_string(), 2, "utf8.invalid")]
    );

    // A file that is not there cannot be validated at all.
    let missing = dir.join("nope.jsonl");
    let err = validate_files(&[&missing], None, None).unwrap_err();
    assert_eq!(err.code, "file.unreadable");
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_reading() {
    let dir = scratch();
    let f = write(&dir, "big.jsonl", GOOD);
    let err = imshift::dumps::container::read_streams(
        &f,
        "big.jsonl",
        100,
        &Default::default(),
        Default::default(),
        |_, _| Ok::<(), ()>(()),
    )
    .expect_err("refused");
    assert_eq!(err.code, "file.too_large");
    assert!(err.message.contains("limit is 100"));
}

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_imshift"))
        .arg("validate")
        .args(args)
        .env("IMSHIFT_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_cli_reports_json_and_exits_by_outcome() {
    let dir = scratch();
    let good = write(&dir, "good.jsonl", GOOD);
    let bad = write(
        &dir,
        "bad.jsonl",
        &format!("{GOOD}{{\"kind\":\"friend\",\"owner\":\"u1\",\"friend\":\"ghost\"}}\n"),
    );

    let (code, out) = cli(&[good.to_str().unwrap()]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["counts"]["account"], 3);
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);

    let (code, out) = cli(&["--target", "tencent", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    let f = &v["findings"][0];
    assert_eq!(f["code"], "ref.account_missing");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["line"], 14);
    assert!(f["file"].as_str().unwrap().ends_with("bad.jsonl"));
    assert_eq!(v["rejected"]["friend"], 1);
    assert_eq!(v["accepted"]["friend"], 1);

    assert_eq!(cli(&[dir.join("missing.jsonl").to_str().unwrap()]).0, 2);
    assert_eq!(cli(&["--format", "yaml", good.to_str().unwrap()]).0, 2);
    assert_eq!(cli(&[]).0, 2);
}

#[test]
fn vendor_formats_are_detected_converted_and_validated_together() {
    let dir = scratch();
    let netease = write(
        &dir,
        "netease.txt",
        concat!(
            r#"{"data":{"ext":"ext..","clientType":"2","createTime":1513685265481,"msgid":1,"from":"aaa","to":"bbb","body":"hi"},"type":0}"#,
            "\n",
            r#"{"data":{"clientType":"1","createTime":"1513685265528","msgid":"2","from":"bbb","to":"aaa","attach":{"lat":"31.2","lng":"121.5","title":"here"}},"type":4}"#,
            "\n",
            r#"{"data":{"createTime":1513685265600,"msgid":3,"from":"aaa","to":"bbb"},"type":0}"#,
            "\n"
        ),
    );
    let easemob = write(
        &dir,
        "easemob.json",
        concat!(
            r#"{"msg_id":"e1","timestamp":1513685266000,"from":"bbb","to":"aaa","chat_type":"chat","payload":{"bodies":[{"type":"txt","msg":"yo"}],"ext":{"k":"v"}}}"#,
            "\n"
        ),
    );
    let accounts = write(
        &dir,
        "accounts.csv",
        "accid,nickname,icon\naaa,Alice,https://x/a.png\nbbb,Bob,\n",
    );
    let (code, out) = cli(&[
        netease.to_str().unwrap(),
        easemob.to_str().unwrap(),
        accounts.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["counts"]["account"], 2, "{v:#}");
    assert_eq!(v["counts"]["message"], 3, "{v:#}");
    let findings = v["findings"].as_array().unwrap();
    let mapping = findings
        .iter()
        .find(|f| f["code"] == "csv.mapping")
        .expect("the CSV mapping is shown");
    assert!(
        mapping["message"].as_str().unwrap().contains("accid → id"),
        "{mapping}"
    );
    // The NetEase text message without a body is the one error, on its own line.
    let errors: Vec<&Value> = findings
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0]["file"].as_str().unwrap().ends_with("netease.txt"));
    assert_eq!(errors[0]["line"], 3);
    assert_eq!(code, 1);
}
