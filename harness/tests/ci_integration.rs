//! lvslab inside other people's CI and editors: the JUnit report against the JUnit schema CI
//! systems read, the scenario JSON Schema against the shipped scenarios, `check --format json`,
//! and the scenario test binary's listing that cargo nextest reads.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::root;

fn lvslab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lvslab"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// `xmllint --schema harness/tests/data/junit.xsd`: Ok, or its complaints.
fn validate_junit(xml: &Path) -> Result<(), String> {
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(repo("harness/tests/data/junit.xsd"))
        .arg(xml)
        .output()
        .unwrap_or_else(|e| panic!("xmllint (Debian package libxml2-utils; ci/install.sh installs it): {e}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn the_junit_schema_refuses_what_ci_systems_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("bad.xml");
    // A testcase without its name, and an attribute the schema does not allow on testsuites.
    std::fs::write(
        &xml,
        r#"<testsuites skipped="0"><testsuite name="s" tests="1" failures="0" errors="0"><testcase/></testsuite></testsuites>"#,
    )
    .unwrap();
    let complaints = validate_junit(&xml).unwrap_err();
    assert!(complaints.contains("'skipped'"), "{complaints}");
    assert!(complaints.contains("'name' is required"), "{complaints}");
}

#[test]
fn run_junit_writes_one_valid_testcase_per_scenario_with_failures_and_errors() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let failing = dir.path().join("wrong-backends.toml");
    std::fs::write(
        &failing,
        "[service]\nmode = \"dr\"\nscheduler = \"rr\"\n[[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n\
         [traffic]\nrequests = 4\n[expect]\nbackends = [\"rs1\"]\n",
    )
    .unwrap();
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[service]\nmode = \"drr\"\n").unwrap();
    let junit = dir.path().join("junit.xml");
    let out = lvslab()
        .arg("run")
        .arg("--junit")
        .arg(&junit)
        .arg(repo("scenarios/direct.toml"))
        .arg(&failing)
        .arg(&typo)
        .output()
        .expect("runs");
    // A bad file outranks a failed expectation, and did not stop the other scenarios.
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    validate_junit(&junit).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
    assert!(xml.contains(r#"tests="3" failures="1" errors="1""#), "{xml}");
    assert!(xml.contains(r#"<testcase name="direct" classname=""#), "{xml}");
    let element = |tag: &str| {
        let start = xml
            .find(&format!("<{tag} "))
            .unwrap_or_else(|| panic!("no <{tag}>: {xml}"));
        let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
        xml[start..end].to_owned()
    };
    let failure = element("failure");
    assert!(
        failure.starts_with(r#"<failure message="1 of 2 checks failed: exactly rs1 answer""#),
        "{failure}"
    );
    assert!(
        failure.contains("FAIL exactly rs1 answer — answering: rs1, rs2"),
        "{failure}"
    );
    let error = element("error");
    assert!(error.contains("typo.toml:2:8: error: unknown mode `drr`"), "{error}");
}

#[test]
fn check_format_json_lists_every_problem_with_its_place() {
    let out = lvslab()
        .args(["check", "--format", "json"])
        .arg(repo("fixtures/check/many-problems.toml"))
        .arg(repo("scenarios/dr-rr.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    assert_eq!(json["ok"], false);
    assert_eq!(json["files"][1]["ok"], true, "{json}");
    assert_eq!(json["files"][1]["scenario"], "dr-rr");
    let problems = json["problems"].as_array().unwrap();
    assert!(problems.len() > 5, "{json}");
    for p in problems {
        assert!(p["file"].as_str().unwrap().ends_with("many-problems.toml"), "{p}");
        assert!(
            p["line"].as_u64().unwrap() > 0 && p["column"].as_u64().unwrap() > 0,
            "{p}"
        );
        assert!(matches!(p["severity"].as_str(), Some("error" | "warning")), "{p}");
        assert!(!p["message"].as_str().unwrap().is_empty(), "{p}");
        assert!(p.get("hint").is_some(), "{p}");
    }
}

fn shipped_schema() -> PathBuf {
    repo("schema/scenario.schema.json")
}

/// `LVSLAB_WRITE_SCHEMA=1 cargo test -p lvslab --test ci_integration` rewrites the shipped file
/// (or `lvslab schema > schema/scenario.schema.json`).
#[test]
fn the_shipped_schema_is_the_generated_one() {
    let generated = lvslab::schema::scenario_schema_json();
    if std::env::var_os("LVSLAB_WRITE_SCHEMA").is_some() {
        std::fs::write(shipped_schema(), &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(shipped_schema()).unwrap_or_default();
    assert!(
        shipped == generated,
        "schema/scenario.schema.json is stale: regenerate it with LVSLAB_WRITE_SCHEMA=1 cargo test -p lvslab --test ci_integration"
    );
    let out = lvslab().arg("schema").output().expect("runs");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), generated);
}

fn scenario_validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&lvslab::schema::scenario_schema_json()).unwrap();
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn toml_as_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::to_value(value).unwrap()
}

#[test]
fn every_shipped_scenario_validates_against_the_schema() {
    let validator = scenario_validator();
    let mut files = Vec::new();
    for dir in ["scenarios", "examples/downstream-suite/scenarios"] {
        for entry in std::fs::read_dir(repo(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "toml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 40, "{files:?}");
    for path in files {
        let document = toml_as_json(&path);
        let errors: Vec<String> = validator
            .iter_errors(&document)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn the_schema_refuses_an_unknown_key_and_a_wrong_type() {
    let validator = scenario_validator();
    let document = serde_json::json!({
        "service": { "mode": "dr", "shceduler": "rr" },
        "real_server": [{ "name": "rs1", "weight": "heavy" }],
    });
    let errors: Vec<String> = validator.iter_errors(&document).map(|e| e.to_string()).collect();
    assert!(errors.iter().any(|e| e.contains("shceduler")), "{errors:#?}");
    assert!(errors.iter().any(|e| e.contains("heavy")), "{errors:#?}");
}

/// cargo nextest lists a test binary with `--list --format terse` (and `--ignored` for the
/// ignored ones); libtest-mimic answers it. Reads the scenarios test binary built beside this one.
#[test]
fn the_scenario_binary_lists_one_test_per_file_as_nextest_reads_it() {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let binary = std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("scenarios-") && !name.contains('.')
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .expect("the scenarios test binary: build it with `cargo test -p lvslab --no-run`");
    let list = |extra: &[&str]| {
        let out = Command::new(&binary)
            .args(["--list", "--format", "terse"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let (listed, ignored) = (list(&[]), list(&["--ignored"]));
    let shipped = std::fs::read_dir(repo("scenarios"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml"))
        .count();
    assert_eq!(listed.lines().count(), shipped, "{listed}");
    assert!(listed.lines().any(|l| l == "dr-rr: test"), "{listed}");
    // Without root every scenario is ignored; nextest skips those unless asked.
    let expected_ignored = if nix::unistd::geteuid().is_root() { 0 } else { shipped };
    assert_eq!(ignored.lines().count(), expected_ignored, "{ignored}");
}
