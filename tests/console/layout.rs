//! The plug-in rule as a test: outside `src/providers/<name>/` and the registry, no file of
//! `src/` names a provider. What has not moved yet is listed in `KNOWN` with why; the list
//! only shrinks (a listed file that no longer names a provider fails the test too).
//!
//! Where naming is the point, it does not count:
//! - a provider's own folder, `src/providers/<name>/` (its API client, sandbox, conversions,
//!   callbacks, and the export format it writes, `dump.rs`), and the registry,
//!   `src/providers/registry.rs`;
//! - the `pub mod <name>;` lines of `src/providers/mod.rs` (the registry's part; the rest of
//!   that file counts).
//!
//! Everything else, the dump pipeline and the Dumps tab included, asks the registry.

use std::collections::BTreeMap;
use std::path::Path;

/// Provider ids and labels, matched case-insensitively.
const NAMES: [&str; 5] = ["tencent", "netease", "rongcloud", "easemob", "yunxin"];

/// Files that still name a provider, and why. Remove a line when its file is cleaned up.
const KNOWN: &[(&str, &str)] = &[];

/// Where naming a provider is the point: its own folder and the registry.
fn exempt(path: &str) -> bool {
    if path == "src/providers/registry.rs" {
        return true;
    }
    path.strip_prefix("src/providers/")
        .is_some_and(|rest| rest.contains('/'))
}

/// The text of `path` (lowercase) with the uses that do not count taken out.
fn counted(path: &str, text: &str) -> String {
    let mut text = text.to_lowercase();
    if path == "src/providers/mod.rs" {
        text = text
            .lines()
            .filter(|l| !NAMES.iter().any(|n| l.trim() == format!("pub mod {n};")))
            .collect::<Vec<_>>()
            .join("\n");
    }
    text
}

fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<&'static str>>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, root, out);
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if exempt(&rel) {
            continue;
        }
        let text = counted(
            &rel,
            &String::from_utf8_lossy(&std::fs::read(&path).unwrap()),
        );
        let named: Vec<&'static str> = NAMES.into_iter().filter(|n| text.contains(n)).collect();
        if !named.is_empty() {
            out.insert(rel, named);
        }
    }
}

#[test]
fn only_a_providers_own_folder_and_the_registry_name_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut naming = BTreeMap::new();
    walk(&root.join("src"), root, &mut naming);

    let mut problems = vec![];
    for (path, names) in &naming {
        if !KNOWN.iter().any(|(k, _)| k == path) {
            problems.push(format!(
                "{path} names {} outside src/providers/<name>/: ask the registry instead",
                names.join(", ")
            ));
        }
    }
    for (path, _) in KNOWN {
        if !naming.contains_key(*path) {
            problems.push(format!(
                "{path} no longer names a provider: remove it from KNOWN in tests/console/layout.rs"
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (path, reason) in KNOWN {
        assert!(seen.insert(path), "{path} is listed twice in KNOWN");
        assert!(!reason.trim().is_empty(), "{path} in KNOWN says why");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn what_counts_as_naming_a_provider() {
    let names = |path: &str, text: &str| -> Vec<&str> {
        let t = counted(path, text);
        NAMES.into_iter().filter(|n| t.contains(n)).collect()
    };
    // A vendor's export format named in the pipeline counts: it belongs in the provider's folder.
    assert_eq!(
        names("src/dumps/read.rs", "Format::Netease, \"easemob\""),
        ["netease", "easemob"]
    );
    assert_eq!(
        names("src/app/pages/dumps.rs", "NetEase Yunxin migration lines"),
        ["netease", "yunxin"]
    );
    assert_eq!(
        names("src/dumps/mod.rs", "Tencent IM, RongCloud"),
        ["tencent", "rongcloud"]
    );
    assert!(exempt("src/providers/netease/dump.rs"));
    assert!(exempt("src/providers/registry.rs"));
    assert!(!exempt("src/providers/limits.rs"));
    assert!(!exempt("src/dumps/formats/mod.rs"));
    assert!(names("src/providers/mod.rs", "pub mod tencent;\npub mod netease;").is_empty());
    assert_eq!(
        names("src/providers/mod.rs", "/// like `tencent`"),
        ["tencent"]
    );
    assert_eq!(names("src/import/plan.rs", "pub mod tencent;"), ["tencent"]);
}
