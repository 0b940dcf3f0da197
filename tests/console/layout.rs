//! The plug-in rule as a test: outside `src/providers/<name>/` and the registry, no file of
//! `src/` names a provider. What has not moved yet is listed in `KNOWN` with why; the list
//! only shrinks (a listed file that no longer names a provider fails the test too).

use std::collections::BTreeMap;
use std::path::Path;

/// Provider ids and labels, matched case-insensitively.
const NAMES: [&str; 5] = ["tencent", "netease", "rongcloud", "easemob", "yunxin"];

/// Files that still name a provider, and why. Remove a line when its file is cleaned up.
const KNOWN: &[(&str, &str)] = &[
    ("src/api/dumps.rs", "the upload API's docs list the netease/easemob dump formats"),
    ("src/app/pages/dumps.rs", "the upload form offers the NetEase Yunxin and Easemob export formats by name"),
    ("src/cli.rs", "`imshift sandbox tencent` and `bench import` start the Tencent sandbox directly; `--format` lists the netease/easemob exports"),
    ("src/dumps/bench.rs", "the dump benchmark's migration row names `tencent` as its target"),
    ("src/dumps/canonical-dump-v1.md", "the dump spec names the NetEase and Easemob exports it converts"),
    ("src/dumps/mod.rs", "the `target.group_order` rule's text says Tencent IM (belongs with the provider's TargetRules)"),
    ("src/dumps/read.rs", "reads lines through the netease/easemob dump formats by their module names"),
    ("src/dumps/stage.rs", "maps the format names `netease`/`easemob` to dump formats"),
    ("src/dumps/uploads.rs", "the accepted upload formats include `netease` and `easemob`"),
    ("src/dumps/validate.rs", "treats lines read as Format::Netease/Format::Easemob apart"),
    ("src/import/bench.rs", "the import benchmark runs into the Tencent sandbox with Tencent's limits"),
    ("src/import/plan.rs", "a comment cites Tencent error 30008 for why one owner's friends go one at a time"),
    ("src/migration/mod.rs", "the name example in a validation message is `Chat app → Tencent IM`"),
    ("src/model/dumps.rs", "the upload format fields document the netease/easemob exports"),
    ("src/model/migration.rs", "a doc comment gives `easemob` as an example registry name"),
    ("src/providers/limits.rs", "a doc comment says API names are `service/command` for Tencent"),
    ("src/providers/mod.rs", "declares each provider's module (`pub mod tencent;` …) and gives `tencent` as an example id"),
    ("src/providers/outbound.rs", "the outbound guard's answer-size limit and error texts speak of Tencent IM"),
];

/// Where naming a provider is the point: its own folder, its registry line, and dump formats
/// (named for the export file they read).
fn exempt(path: &str) -> bool {
    if path == "src/providers/registry.rs" || path.starts_with("src/dumps/formats/") {
        return true;
    }
    path.strip_prefix("src/providers/")
        .is_some_and(|rest| rest.contains('/'))
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
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_lowercase();
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
