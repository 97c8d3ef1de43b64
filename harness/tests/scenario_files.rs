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
        assert!(text.starts_with("# "), "{} must open with a comment saying what it shows", path.display());
    }
    assert!(seen >= 5, "expected the shipped scenarios in {}, found {seen}", dir.display());
}
