//! Every shipped scenario file is valid and says in a comment what it shows (no root needed).

use std::path::Path;

#[test]
fn every_shipped_scenario_checks_clean_and_explains_itself() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("scenarios/ exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        seen += 1;
        if let Err(report) = lvslab::scenario::load(&path) {
            panic!("{}", report.render(&path.display().to_string()));
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(
            text.starts_with("# "),
            "{} must open with a comment saying what it shows",
            path.display()
        );
    }
    assert!(
        seen >= 5,
        "expected the shipped scenarios in {}, found {seen}",
        dir.display()
    );
}

#[test]
fn the_readme_lists_every_shipped_scenario() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    for entry in std::fs::read_dir(root.join("scenarios")).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "toml") {
            let link = format!("(scenarios/{})", path.file_name().unwrap().to_string_lossy());
            assert!(readme.contains(&link), "README.md's scenario table lacks {link}");
        }
    }
}
