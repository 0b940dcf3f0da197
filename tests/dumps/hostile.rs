//! Hostile dumps (issue 10): a few kilobytes must never cost gigabytes, in `imshift validate`
//! and in the console's ingest. The inputs are smaller versions of `imshift bench hostile`'s,
//! made at test time by the same generator.

use super::{cli, scratch, write};
use imshift::auth::Actor;
use imshift::dumps::bench::{forget, ingest_file, write_hostile};
use imshift::dumps::validate::{validate_files, validate_files_with};
use imshift::dumps::{Limits, Report};
use imshift::model::Role;
use serde_json::Value;
use sqlx::PgPool;
use std::io::Write;
use std::path::Path;
use uuid::Uuid;

const MIB: u64 = 1 << 20;

fn codes(report: &Report) -> Vec<(u64, &'static str)> {
    report.findings.iter().map(|f| (f.line, f.code)).collect()
}

fn owner() -> Actor {
    Actor {
        user_id: Uuid::new_v4(),
        email: "owner@example.com".into(),
        role: Role::Owner,
        token_id: None,
        ip: None,
    }
}

/// A zip with one entry of `bytes` zero bytes, deflated.
fn zip_of_zeros(dir: &Path, name: &str, entries: &[(&str, u64)]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    for (entry, bytes) in entries {
        zw.start_file(*entry, opts).unwrap();
        let block = vec![0u8; MIB as usize];
        let mut left = *bytes;
        while left > 0 {
            let n = left.min(MIB);
            zw.write_all(&block[..n as usize]).unwrap();
            left -= n;
        }
    }
    zw.finish().unwrap();
    path
}

#[test]
fn validate_lists_findings_up_to_the_cap_per_rule_and_counts_the_rest() {
    let dir = scratch();
    // 40,000 invalid lines in about 1 KB of gzip.
    let f = write_hostile(&dir, "lines-4m.gz", 0.01).unwrap();
    assert!(std::fs::metadata(&f).unwrap().len() < 4096);
    let r = validate_files(&[&f], None, None).unwrap();
    assert_eq!(r.findings.len(), 10_000);
    assert!(r.findings.iter().all(|f| f.code == "json.syntax"));
    assert_eq!(r.not_listed["json.syntax"], 30_000);
    assert_eq!(r.rejected["unreadable_lines"], 40_000);
    assert!(r.has_errors());

    // The command line lists as many as asked, says how many it did not, and stays small.
    let (code, out) = cli(&["--findings-per-rule", "3", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 3);
    assert_eq!(v["not_listed"]["json.syntax"], 39_997);
    assert!(out.len() < 4096, "{} bytes", out.len());
    // Even when none is listed, the errors still decide the exit status.
    let (code, out) = cli(&["--findings-per-rule", "0", f.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn a_line_over_the_limit_is_a_finding_on_its_line_and_the_rest_is_read() {
    let dir = scratch();
    let big = format!(
        "{{\"kind\":\"account\",\"id\":\"u1\"}}\n{{\"kind\":\"account\",\"id\":\"u2\",\"nick\":\"{}\"}}\n{{\"kind\":\"account\",\"id\":\"u3\"}}\n",
        "n".repeat(3 * MIB as usize)
    );
    let f = write(&dir, "big-line.jsonl", &big);
    let r = validate_files(&[&f], None, None).unwrap();
    assert_eq!(codes(&r), vec![(2, "line.too_long")]);
    assert!(
        r.findings[0].message.contains("the limit is 1048576"),
        "{}",
        r.findings[0].message
    );
    assert_eq!(r.counts["account"], 2);
    assert_eq!(r.rejected["unreadable_lines"], 1);

    // The limit is a setting.
    let (code, out) = cli(&["--max-line-bytes", "8388608", f.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["counts"]["account"], 3, "{v:#}");
    assert!(!out.contains("line.too_long"));
    assert_ne!(code, 2);

    // Inside gzip alike (2 MiB expanded: below the ratio check's start).
    let gz = write_hostile(&dir, "line-256m.gz", 2.0 / 256.0).unwrap();
    let r = validate_files(&[&gz], None, None).unwrap();
    assert_eq!(codes(&r), vec![(1, "line.too_long")]);
}

#[test]
fn compressed_files_that_expand_past_the_limits_stop_with_an_error_naming_the_file() {
    let dir = scratch();
    // 4 MiB of friend lines out of a few KB.
    let bomb = write_hostile(&dir, "bomb-records-1g.gz", 4.0 / 1024.0).unwrap();
    let capped = Limits {
        max_expanded_bytes: MIB,
        ..Limits::default()
    };
    let r = validate_files_with(&[&bomb], None, None, capped).unwrap();
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "decompress.too_large")
        .unwrap_or_else(|| panic!("{:#?}", r.findings.last()));
    assert!(f.file.ends_with("bomb-records-1g.gz"));
    assert!(
        f.message.contains("bomb-records-1g.gz") && f.message.contains("1048576"),
        "{}",
        f.message
    );
    assert!(r.has_errors());
    assert!(
        r.counts["friend"] < 30_000,
        "reading stopped near the limit"
    );

    // The ratio, judged once `ratio_after_bytes` have been expanded.
    let early = Limits {
        ratio_after_bytes: MIB,
        ..Limits::default()
    };
    let r = validate_files_with(&[&bomb], None, None, early).unwrap();
    let f = r
        .findings
        .iter()
        .find(|f| f.code == "decompress.ratio")
        .expect("ratio");
    assert!(f.message.contains("200:1"), "{}", f.message);

    // Zip entries alike, and they add up: two of 700 KiB pass one by one, not together.
    let z = zip_of_zeros(
        &dir,
        "two.zip",
        &[("a.jsonl", 700 * 1024), ("b.jsonl", 700 * 1024)],
    );
    let r = validate_files_with(&[&z], None, None, capped).unwrap();
    let f = r
        .findings
        .iter()
        .find(|f| f.code.starts_with("decompress."))
        .expect("zip");
    assert_eq!(f.code, "decompress.too_large");
    assert!(f.file.ends_with("two.zip!b.jsonl"), "{}", f.file);

    // With the default limits, from the command line: 100 MiB of zeros in 100 KB.
    let bomb = write_hostile(&dir, "bomb-1g.gz", 100.0 / 1024.0).unwrap();
    let (code, out) = cli(&[bomb.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    // The one line never ended: reading stopped inside it.
    assert_eq!(codes, vec!["decompress.ratio"], "{v:#}");
}

#[test]
fn csv_cells_with_line_breaks_are_one_record_named_by_its_first_line() {
    let dir = scratch();
    let f = write(
        &dir,
        "accounts.csv",
        "id,nick,signature\nu1,Alice,\"two\nlines\"\nu2,\"Bob\",x\nu3,robot,\"a\nb\",extra\nu4,Dan,\"",
    );
    let r = validate_files(&[&f], None, None).unwrap();
    assert_eq!(r.counts["account"], 3, "{:#?}", r.findings);
    let errors: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.code != "csv.mapping")
        .map(|f| (f.line, f.code))
        .collect();
    // u3's record (lines 5–6) has a cell too many; u4's unclosed quote ends with the file.
    assert_eq!(errors, vec![(5, "field.value")]);

    // A record longer than the line limit is skipped, even one spread over lines.
    let long = format!(
        "id,signature\nu1,\"{}\n{}\"\nu2,short\n",
        "s".repeat(600),
        "s".repeat(600)
    );
    let f = write(&dir, "long.csv", &long);
    let limits = Limits {
        max_line_bytes: 1000,
        ..Limits::default()
    };
    let r = validate_files_with(&[&f], None, None, limits).unwrap();
    let bad: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.code != "csv.mapping")
        .map(|f| (f.line, f.code))
        .collect();
    assert_eq!(bad, vec![(2, "line.too_long")]);
    assert_eq!(r.counts["account"], 1);
}

/// `imshift validate` on a 100 MB single-line file and on a gzip of friend lines (the shortest
/// records it keeps) stopped at 64 MiB, measured as the benchmark measures it: its own
/// process, its peak resident memory (VmHWM).
#[test]
fn validate_reads_a_huge_line_and_a_bomb_of_records_in_bounded_memory() {
    let dir = scratch();
    for (name, code) in [
        ("line-100m.jsonl", "line.too_long"),
        ("bomb-records-1g.gz", "decompress.ratio"),
    ] {
        let f = write_hostile(&dir, name, 1.0).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_imshift"))
            .args(["bench", "hostile-validate"])
            .arg(&f)
            .env("IMSHIFT_LOG", "error")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let codes: Vec<&str> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&code), "{name}: {codes:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let peak_kb: u64 = stderr
            .lines()
            .find_map(|l| l.strip_prefix("peak_kb="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(peak_kb < 150 * 1024, "{name}: peak {peak_kb} kB");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_console_keeps_findings_per_rule_and_its_report_counts_the_rest(pool: PgPool) {
    let dir = scratch();
    // 20,000 invalid lines in a little gzip.
    let f = write_hostile(&dir, "lines-4m.gz", 0.005).unwrap();
    let limits = Limits {
        findings_per_rule: 1_000,
        ..Limits::default()
    };
    let o = ingest_file(&pool, &f, &dir, limits).await.unwrap();
    assert_eq!(o.state, "staged", "{:?}", o.error);
    assert_eq!(o.findings_stored, 1_000);
    assert_eq!(o.findings_not_kept, 19_000);

    let r = imshift::dumps::report::report(&pool, &owner(), o.migration)
        .await
        .unwrap();
    assert_eq!(r.errors, 20_000);
    let rule = r.rules.iter().find(|r| r.code == "json.syntax").unwrap();
    assert_eq!((rule.count, rule.not_kept), (20_000, 19_000));
    assert_eq!(rule.examples.len(), 3);
    assert_eq!(rule.examples[0].line, 1);
    assert_eq!(rule.examples[0].excerpt, "x");

    // Discarding the upload takes its counts along.
    forget(&pool, &o).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM dump_findings_not_kept")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_console_refuses_a_decompression_bomb_whole_naming_the_file(pool: PgPool) {
    let dir = scratch();
    let bomb = write_hostile(&dir, "bomb-records-1g.gz", 4.0 / 1024.0).unwrap();
    let capped = Limits {
        max_expanded_bytes: MIB,
        ..Limits::default()
    };
    let o = ingest_file(&pool, &bomb, &dir, capped).await.unwrap();
    assert_eq!(o.state, "failed");
    let error = o.error.clone().unwrap();
    assert!(
        error.contains("bomb-records-1g.gz") && error.contains("decompress.too_large"),
        "{error}"
    );
    // Nothing of it was staged, not even the friends before the limit.
    let staged: i64 = sqlx::query_scalar("SELECT count(*) FROM staged_friends")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((staged, o.records, o.findings_stored), (0, 0, 0));

    let early = Limits {
        ratio_after_bytes: MIB,
        ..Limits::default()
    };
    let o = ingest_file(&pool, &bomb, &dir, early).await.unwrap();
    assert_eq!(o.state, "failed");
    assert!(o.error.unwrap().contains("decompress.ratio"));

    let z = zip_of_zeros(&dir, "dump.zip", &[("big.jsonl", 2 * MIB)]);
    let o = ingest_file(&pool, &z, &dir, capped).await.unwrap();
    assert_eq!(o.state, "failed");
    let error = o.error.unwrap();
    assert!(error.contains("dump.zip!big.jsonl"), "{error}");
}

#[sqlx::test(migrator = "imshift::db::MIGRATOR")]
async fn the_console_skips_an_overlong_line_and_reads_csv_records_whole(pool: PgPool) {
    let dir = scratch();
    let text = format!(
        "{{\"kind\":\"account\",\"id\":\"u1\"}}\n{{\"kind\":\"account\",\"id\":\"u2\",\"nick\":\"{}\"}}\n{{\"kind\":\"account\",\"id\":\"u3\"}}\n",
        "n".repeat(2 * MIB as usize)
    );
    let f = write(&dir, "big-line.jsonl", &text);
    let o = ingest_file(&pool, &f, &dir, Limits::default())
        .await
        .unwrap();
    assert_eq!((o.state.as_str(), o.records), ("staged", 2));
    let (code, line, excerpt): (String, i64, String) =
        sqlx::query_as("SELECT code, line, excerpt FROM dump_findings WHERE upload_id = $1")
            .bind(o.upload)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((code.as_str(), line), ("line.too_long", 2));
    assert!(excerpt.len() < 8 * 1024 && excerpt.starts_with("{\"kind\""));

    let csv = write(
        &dir,
        "friends.csv",
        "owner,friend,remark\nu1,u3,\"met at\nwork\"\nu3,u1,plain\n",
    );
    let o = ingest_file(&pool, &csv, &dir, Limits::default())
        .await
        .unwrap();
    assert_eq!(o.state, "staged", "{:?}", o.error);
    let lines: Vec<i64> =
        sqlx::query_scalar("SELECT line FROM staged_friends WHERE upload_id = $1 ORDER BY ord")
            .bind(o.upload)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(lines, vec![2, 4]);
}
