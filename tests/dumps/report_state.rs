//! `imshift validate` says the report's state as the console's REST report does, so one script
//! can read either: `current` once the files were read and checked, `failed` (with `error`)
//! when the run could not finish.

use super::{cli, scratch, write, GOOD};
use serde_json::Value;

#[test]
fn the_cli_report_carries_its_state() {
    let dir = scratch();
    let good = write(&dir, "good.jsonl", GOOD);
    let (code, out) = cli(&[good.to_str().unwrap()]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "current", "{v:#}");
    assert!(v.get("error").is_none());
    assert_eq!(v["counts"]["account"], 3);

    // A file that cannot be read at all: the run fails, and says so in the JSON too.
    let missing = dir.join("missing.jsonl");
    let (code, out) = cli(&[missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "failed", "{v:#}");
    assert!(
        v["error"].as_str().unwrap().contains("missing.jsonl"),
        "{v:#}"
    );
    assert!(v.get("counts").is_none());
}
