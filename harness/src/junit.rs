//! `lvslab run --junit FILE`: one JUnit testcase per scenario, in the shape the Jenkins/Ant
//! JUnit schema allows (harness/tests/data/junit.xsd), which CI systems read.
//! A failed expectation is a `<failure>` whose message names the failing checks; a file that
//! could not be loaded, or a run that could not be set up, is an `<error>`.

use std::io;
use std::time::Duration;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::report::{human_report, render_checks};
use crate::run::RunOutcome;
use crate::verdict::Check;

/// How one scenario ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseResult {
    Passed,
    /// Expectations failed: `message` is one line, `text` the failing checks as the report prints them.
    Failed {
        message: String,
        text: String,
    },
    /// The scenario could not be loaded or run.
    Error {
        message: String,
        text: String,
    },
}

/// One `<testcase>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The scenario file as given, e.g. `scenarios/dr-rr.toml`.
    pub classname: String,
    /// The scenario's name.
    pub name: String,
    pub time: Duration,
    pub result: CaseResult,
    /// The human report, for the CI's "standard output" pane.
    pub output: Option<String>,
}

impl Case {
    /// A finished run: passed, or failed with its failing checks.
    pub fn from_outcome(file: &str, outcome: &RunOutcome) -> Case {
        let failing: Vec<Check> = outcome.verdict.failures().cloned().collect();
        let result = if outcome.verdict.passed {
            CaseResult::Passed
        } else {
            CaseResult::Failed {
                message: failing_line(&failing, outcome.verdict.checks.len()),
                text: render_checks(&failing),
            }
        };
        Case {
            classname: file.to_owned(),
            name: outcome.scenario.clone(),
            time: Duration::from_secs_f64(outcome.timings.total_ms.max(0.0) / 1000.0),
            result,
            output: Some(human_report(outcome, false)),
        }
    }

    /// A file with problems (`text`: `lvslab check`'s lines) or a run that could not start.
    pub fn error(file: &str, name: &str, message: &str, text: &str, time: Duration) -> Case {
        Case {
            classname: file.to_owned(),
            name: name.to_owned(),
            time,
            result: CaseResult::Error {
                message: message.to_owned(),
                text: text.to_owned(),
            },
            output: None,
        }
    }
}

/// "2 of 5 checks failed: even share; errors = 0".
fn failing_line(failing: &[Check], total: usize) -> String {
    let names: Vec<&str> = failing.iter().map(|c| c.what.as_str()).collect();
    format!("{} of {total} checks failed: {}", failing.len(), names.join("; "))
}

/// The `<testsuites>` document of one `lvslab run`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JunitReport {
    pub cases: Vec<Case>,
}

impl JunitReport {
    pub fn push(&mut self, case: Case) {
        self.cases.push(case);
    }

    pub fn to_xml(&self) -> String {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        self.write(&mut writer).expect("writing to a Vec does not fail");
        String::from_utf8(writer.into_inner()).expect("quick-xml writes the UTF-8 it is given")
    }

    fn write(&self, w: &mut Writer<Vec<u8>>) -> io::Result<()> {
        let count = |f: fn(&CaseResult) -> bool| self.cases.iter().filter(|c| f(&c.result)).count().to_string();
        let failures = count(|r| matches!(r, CaseResult::Failed { .. }));
        let errors = count(|r| matches!(r, CaseResult::Error { .. }));
        let tests = self.cases.len().to_string();
        let time = seconds(self.cases.iter().map(|c| c.time).sum());
        let totals = [
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", errors.as_str()),
            ("time", time.as_str()),
        ];
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.create_element("testsuites")
            .with_attribute(("name", "lvslab"))
            .with_attributes(totals)
            .write_inner_content(|w| {
                w.create_element("testsuite")
                    .with_attribute(("name", "lvslab"))
                    .with_attributes(totals)
                    .with_attribute(("skipped", "0"))
                    .write_inner_content(|w| self.cases.iter().try_for_each(|case| write_case(w, case)))?;
                Ok(())
            })?;
        Ok(())
    }
}

fn write_case(w: &mut Writer<Vec<u8>>, case: &Case) -> io::Result<()> {
    let time = seconds(case.time);
    let element = w.create_element("testcase").with_attributes([
        ("name", case.name.as_str()),
        ("classname", case.classname.as_str()),
        ("time", time.as_str()),
    ]);
    if case.result == CaseResult::Passed && case.output.is_none() {
        element.write_empty()?;
        return Ok(());
    }
    element.write_inner_content(|w| {
        match &case.result {
            CaseResult::Passed => {}
            CaseResult::Failed { message, text } => problem(w, "failure", "expectations", message, text)?,
            CaseResult::Error { message, text } => problem(w, "error", "bad-input", message, text)?,
        }
        if let Some(output) = &case.output {
            w.create_element("system-out")
                .write_text_content(BytesText::new(&xml_text(output)))?;
        }
        Ok(())
    })?;
    Ok(())
}

fn problem(w: &mut Writer<Vec<u8>>, tag: &str, kind: &str, message: &str, text: &str) -> io::Result<()> {
    w.create_element(tag)
        .with_attributes([("message", xml_text(message).as_str()), ("type", kind)])
        .write_text_content(BytesText::new(&xml_text(text)))?;
    Ok(())
}

/// Seconds with milliseconds, as the schema's time pattern allows ("12.345").
fn seconds(time: Duration) -> String {
    format!("{:.3}", time.as_secs_f64())
}

/// XML 1.0 allows no control characters but tab, newline and carriage return.
fn xml_text(text: &str) -> String {
    text.chars()
        .filter(|&c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> JunitReport {
        JunitReport {
            cases: vec![
                Case {
                    classname: "scenarios/dr-rr.toml".into(),
                    name: "dr-rr".into(),
                    time: Duration::from_millis(1234),
                    result: CaseResult::Passed,
                    output: None,
                },
                Case {
                    classname: "scenarios/why-arp-flux.toml".into(),
                    name: "why-arp-flux".into(),
                    time: Duration::from_millis(2500),
                    result: CaseResult::Failed {
                        message: failing_line(
                            &[Check::new("even share".into(), false, Some("rs2 got 60 of 60".into()))],
                            3,
                        ),
                        text: "  FAIL even share — rs2 got 60 of 60 <all>\n".into(),
                    },
                    output: Some("spread \u{1b}[1mtable\u{1b}[0m & more\n".into()),
                },
                Case::error(
                    "scenarios/typo.toml",
                    "typo",
                    "1 problem",
                    "typo.toml:2:8: error: unknown mode",
                    Duration::ZERO,
                ),
            ],
        }
    }

    #[test]
    fn totals_count_failures_and_errors_apart() {
        let xml = report().to_xml();
        assert!(
            xml.contains(r#"<testsuites name="lvslab" tests="3" failures="1" errors="1" time="3.734">"#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="dr-rr" classname="scenarios/dr-rr.toml" time="1.234"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn a_failure_message_names_the_failing_checks_and_the_text_is_escaped() {
        let xml = report().to_xml();
        assert!(
            xml.contains(r#"<failure message="1 of 3 checks failed: even share" type="expectations">"#),
            "{xml}"
        );
        assert!(xml.contains("rs2 got 60 of 60 &lt;all&gt;"), "{xml}");
        assert!(xml.contains("<system-out>spread [1mtable[0m &amp; more"), "{xml}");
        assert!(
            xml.contains(r#"<error message="1 problem" type="bad-input">typo.toml:2:8: error: unknown mode</error>"#),
            "{xml}"
        );
    }
}
