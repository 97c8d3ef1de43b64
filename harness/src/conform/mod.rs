//! `lvslab conform`: every scenario under kernel IPVS and under the embedded engine, side by
//! side. The kernel is the reference: any difference in the facts the two runs must share
//! ([`facts`]) fails, unless the committed allow-list ([`allow`]) holds it with a reason.
//! On the kernel run, the real `ipvsadm`'s views of the table are compared with lvslab's
//! own, line for line ([`witness`]).

pub mod allow;
pub mod facts;
pub mod witness;

use std::fmt::Write;
use std::time::Instant;

pub use allow::AllowList;
pub use facts::Facts;

use crate::run::{self, DiagnoseWhen, RunOptions, RunOutcome};
use crate::scenario::{CheckersChoice, EngineChoice, Scenario};

#[derive(Debug, Clone)]
pub struct ConformOptions {
    /// Runs per engine; the first is compared, the rest count passes and must repeat its facts.
    pub runs: u32,
    pub allow: AllowList,
    /// Compare with the real `ipvsadm` on the kernel run.
    pub witness: bool,
    /// Who runs the kernel run's checkers (the embedded run's are always lvslab's).
    pub kernel_checkers: CheckersChoice,
}

/// One fact that differs between two runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub fact: String,
    /// The reference side (kernel IPVS, or the real ipvsadm, or the first run).
    pub reference: String,
    pub other: String,
    /// Why it may differ, from the allow-list.
    pub allowed: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Both engines agree and pass; ipvsadm agrees with lvslab.
    Same,
    /// Every difference is in the allow-list.
    Allowed,
    /// A difference not in the allow-list, a failed verdict, or facts that change between runs.
    Different,
}

/// What one scenario gave.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub name: String,
    pub status: Status,
    pub differences: Vec<Difference>,
    /// Passing runs out of `runs`, kernel then embedded.
    pub passes: [(u32, u32); 2],
    /// ipvsadm views compared and matched.
    pub views: (u32, u32),
    pub seconds: f64,
    /// Differences of a first pass that a second pass did not repeat (see [`conform_retrying`]).
    pub not_repeated: Vec<Difference>,
}

/// [`conform_scenario`], and once more when it differs: a difference the second pass does
/// not repeat is a race of the lab (a client's late RST, a timer read a second later), not
/// of the engines; it is reported as such and does not fail. One that repeats fails.
pub async fn conform_retrying(scenario: &Scenario, opts: &ConformOptions) -> ScenarioReport {
    let first = conform_scenario(scenario, opts).await;
    if first.status != Status::Different {
        return first;
    }
    let mut second = conform_scenario(scenario, opts).await;
    if second.status == Status::Different {
        return first;
    }
    second.seconds += first.seconds;
    second.not_repeated = first.differences.into_iter().filter(|d| d.allowed.is_none()).collect();
    second
}

const ENGINES: [(EngineChoice, &str); 2] = [(EngineChoice::Kernel, "kernel"), (EngineChoice::Embedded, "embedded")];

/// Runs `scenario` under both engines and compares.
pub async fn conform_scenario(scenario: &Scenario, opts: &ConformOptions) -> ScenarioReport {
    let started = Instant::now();
    let mut differences = Vec::new();
    let mut passes = [(0, opts.runs), (0, opts.runs)];
    let mut first: [Option<Result<Facts, String>>; 2] = [None, None];
    let mut views = (0, 0);
    for (e, (choice, engine)) in ENGINES.iter().enumerate() {
        for i in 0..opts.runs {
            let run_opts = RunOptions {
                engine: Some(*choice),
                progress: false,
                diagnose: DiagnoseWhen::Always,
                settle_stats: true,
                witness: opts.witness && i == 0,
                vrrp: None,
                // The embedded engine can only run lvslab's checkers; the kernel run takes
                // `--checkers` (lvslab's by default, so that only the engines differ).
                checkers: Some(match choice {
                    EngineChoice::Embedded => CheckersChoice::Embedded,
                    _ => opts.kernel_checkers,
                }),
            };
            let result = run::run(scenario, &run_opts).await.map_err(|e| e.to_string());
            if let Ok(outcome) = &result {
                if outcome.verdict.passed {
                    passes[e].0 += 1;
                }
                if i == 0 {
                    differences.extend(witness_differences(scenario, outcome, &mut views));
                }
            }
            let facts = result.map(|o| Facts::of(scenario, &o));
            match &first[e] {
                None => first[e] = Some(facts),
                Some(reference) => differences.extend(compare(reference, &facts).into_iter().map(|d| Difference {
                    fact: format!("{engine} run {} vs run 1: {}", i + 1, d.fact),
                    ..d
                })),
            }
        }
    }
    let [Some(kernel), Some(embedded)] = first else {
        unreachable!("runs >= 1")
    };
    differences.splice(0..0, compare(&kernel, &embedded));
    for (side, (_, engine)) in [&kernel, &embedded].iter().zip(ENGINES.iter()) {
        if let Ok(f) = side {
            if f.get("verdict").is_some_and(|v| v != "PASS") {
                differences.push(Difference {
                    fact: format!("{engine} verdict"),
                    reference: "PASS".into(),
                    other: f.get("verdict").unwrap_or_default().to_owned(),
                    allowed: None,
                });
            }
        }
    }
    for d in &mut differences {
        let fact = d.fact.rsplit(": ").next().unwrap_or(&d.fact).to_owned();
        d.allowed = opts.allow.reason(scenario, &fact).map(str::to_owned);
    }
    let status = if differences.iter().any(|d| d.allowed.is_none()) {
        Status::Different
    } else if differences.is_empty() {
        Status::Same
    } else {
        Status::Allowed
    };
    ScenarioReport {
        name: scenario.name.clone(),
        status,
        differences,
        passes,
        views,
        seconds: started.elapsed().as_secs_f64(),
        not_repeated: Vec::new(),
    }
}

/// Facts that differ; a run that could not happen differs in `run`.
fn compare(reference: &Result<Facts, String>, other: &Result<Facts, String>) -> Vec<Difference> {
    let diff = |fact: &str, a: &str, b: &str| Difference {
        fact: fact.to_owned(),
        reference: a.to_owned(),
        other: b.to_owned(),
        allowed: None,
    };
    match (reference, other) {
        (Ok(a), Ok(b)) => {
            let mut out: Vec<Difference> = a
                .facts
                .iter()
                .zip(&b.facts)
                .filter(|((_, x), (_, y))| x != y)
                .map(|((name, x), (_, y))| diff(name, x, y))
                .collect();
            if a.facts.len() != b.facts.len() {
                out.push(diff(
                    "directors",
                    &format!("{} facts", a.facts.len()),
                    &format!("{} facts", b.facts.len()),
                ));
            }
            out
        }
        (Err(a), Err(b)) if a == b => Vec::new(),
        (a, b) => {
            let show = |r: &Result<Facts, String>| match r {
                Ok(_) => "ran".to_owned(),
                Err(e) => format!("error: {e}"),
            };
            vec![diff("run", &show(a), &show(b))]
        }
    }
}

/// The real ipvsadm against lvslab's views of the same snapshot, for each director.
fn witness_differences(scenario: &Scenario, outcome: &RunOutcome, views: &mut (u32, u32)) -> Vec<Difference> {
    let mut out = Vec::new();
    for d in &outcome.directors {
        for real in d.witness.iter().flatten() {
            // An IPVS table holds no mark rules: a fwmark service's come from the director's
            // own `nft list table ip lvslab_fwmark`, given to the import beside the table.
            if let (Ok(saved), "-S -n") = (&real.output, real.args.as_str()) {
                let left = witness::as_left_by_the_run(scenario, &d.ipvs, d.vip);
                let rules = match &d.mark_rules {
                    Some(Ok(text)) => Some(text.as_str()),
                    _ => None,
                };
                if let Err(why) = witness::import_gives_back(&left, d.vip, saved, rules) {
                    out.push(Difference {
                        fact: "lvslab import of ipvsadm -S -n".into(),
                        reference: "the scenario's service and the real servers its table holds".into(),
                        other: why,
                        allowed: None,
                    });
                }
            }
            views.0 += 1;
            let fact = format!("ipvsadm {}", real.args);
            match witness::compare(&d.ipvs, real) {
                witness::ViewMatch::Same => views.1 += 1,
                witness::ViewMatch::Differs { line, lvslab, ipvsadm } => out.push(Difference {
                    fact,
                    reference: format!("line {line}: {ipvsadm}"),
                    other: format!("line {line}: {lvslab}"),
                    allowed: None,
                }),
                witness::ViewMatch::Missing(why) => out.push(Difference {
                    fact,
                    reference: why,
                    other: "lvslab's view".into(),
                    allowed: None,
                }),
            }
        }
    }
    out
}

impl ScenarioReport {
    /// One line, then one indented line per difference.
    pub fn render(&self) -> String {
        let word = match self.status {
            Status::Same => "same",
            Status::Allowed => "allowed",
            Status::Different => "DIFFERENT",
        };
        let [(kp, n), (ep, _)] = self.passes;
        let mut out = format!(
            "{word:<9} {:<28} kernel {kp}/{n} pass, embedded {ep}/{n} pass",
            self.name
        );
        if self.views.0 > 0 {
            let _ = write!(out, ", ipvsadm {}/{} views match", self.views.1, self.views.0);
        }
        let _ = writeln!(out, " ({:.1} s)", self.seconds);
        for d in &self.not_repeated {
            let _ = writeln!(
                out,
                "    not repeated by a second pass: {}: reference {:?} | other {:?}",
                d.fact, d.reference, d.other
            );
        }
        for d in &self.differences {
            let _ = write!(out, "    {}: reference {:?} | other {:?}", d.fact, d.reference, d.other);
            match &d.allowed {
                Some(reason) => {
                    let _ = writeln!(out, " — allowed: {reason}");
                }
                None => out.push('\n'),
            }
        }
        out
    }
}

/// The closing line.
pub fn summary(reports: &[ScenarioReport]) -> String {
    let count = |s: Status| reports.iter().filter(|r| r.status == s).count();
    let views: u32 = reports.iter().map(|r| r.views.0).sum();
    let matched: u32 = reports.iter().map(|r| r.views.1).sum();
    let retried = reports.iter().filter(|r| !r.not_repeated.is_empty()).count();
    format!(
        "conformance: {} scenarios: {} same, {} allowed, {} different ({retried} needed a second pass); ipvsadm: {matched}/{views} views match\n",
        reports.len(),
        count(Status::Same),
        count(Status::Allowed),
        count(Status::Different),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pairs: &[(&'static str, &str)]) -> Result<Facts, String> {
        Ok(Facts {
            facts: pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        })
    }

    #[test]
    fn differences_name_the_fact_and_both_sides() {
        let k = facts(&[("verdict", "PASS"), ("tally", "rs1 10, rs2 10")]);
        let e = facts(&[("verdict", "PASS"), ("tally", "rs2 20")]);
        let d = compare(&k, &e);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].fact, "tally");
        assert_eq!(
            (d[0].reference.as_str(), d[0].other.as_str()),
            ("rs1 10, rs2 10", "rs2 20")
        );
        assert!(compare(&k, &k).is_empty());
    }

    #[test]
    fn a_run_that_fails_on_one_engine_differs_in_run() {
        let k = Err("director: not supported by kernel IPVS".to_owned());
        let e = facts(&[("verdict", "PASS")]);
        let d = compare(&k, &e);
        assert_eq!(d[0].fact, "run");
        assert!(d[0].reference.starts_with("error: director"));
        assert_eq!(compare(&k, &k), Vec::new());
    }

    #[test]
    fn summary_counts_each_status() {
        let report = |status| ScenarioReport {
            name: "x".into(),
            status,
            differences: Vec::new(),
            passes: [(1, 1), (1, 1)],
            views: (6, 6),
            seconds: 1.0,
            not_repeated: Vec::new(),
        };
        let text = summary(&[report(Status::Same), report(Status::Allowed), report(Status::Different)]);
        assert_eq!(
            text,
            "conformance: 3 scenarios: 1 same, 1 allowed, 1 different (0 needed a second pass); ipvsadm: 18/18 views match\n"
        );
        assert!(report(Status::Same).render().starts_with("same      x "));
    }
}
