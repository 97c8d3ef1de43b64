//! The committed allow-list: differences between the engines that are not bugs, each with
//! its reason (`ci/conformance-allow.toml`).

use std::path::Path;

use serde::Deserialize;

use crate::scenario::{Keyword, Mode, Scenario};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Allowed>,
}

/// One allowed difference: for a scenario (by name) or every scenario of a mode, one fact or
/// every fact (`"*"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    #[serde(default)]
    pub scenario: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    pub fact: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    allow: Vec<Allowed>,
}

impl AllowList {
    pub fn empty() -> AllowList {
        AllowList { entries: Vec::new() }
    }

    pub fn load(path: &Path) -> Result<AllowList, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        AllowList::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<AllowList, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        for (i, a) in file.allow.iter().enumerate() {
            let n = i + 1;
            if a.scenario.is_none() && a.mode.is_none() {
                return Err(format!("allow entry {n}: give `scenario` or `mode`"));
            }
            if let Some(m) = &a.mode {
                if <Mode as Keyword>::from_word(m).is_none() {
                    return Err(format!("allow entry {n}: unknown mode {m:?}"));
                }
            }
            if a.reason.trim().is_empty() {
                return Err(format!("allow entry {n}: a difference is allowed only with its reason"));
            }
        }
        Ok(AllowList { entries: file.allow })
    }

    /// The reason `fact` may differ in `scenario`, if it may.
    pub fn reason(&self, scenario: &Scenario, fact: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|a| {
                a.scenario.as_deref().is_none_or(|s| s == scenario.name)
                    // A scenario of several modes answers to an entry for any of them.
                    && a.mode.as_deref().is_none_or(|m| scenario.services.iter().any(|s| s.mode.as_str() == m))
                    && (a.fact == "*" || a.fact == fact)
            })
            .map(|a| a.reason.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> Scenario {
        crate::scenario::parse(text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t.toml")))
    }

    #[test]
    fn matches_by_mode_or_name_and_fact() {
        let list = AllowList::parse(
            r#"
[[allow]]
mode = "fullnat"
fact = "run"
reason = "FULLNAT is not in mainline IPVS"

[[allow]]
scenario = "special"
fact = "*"
reason = "because"
"#,
        )
        .unwrap();
        let fullnat = scenario("[service]\nmode = \"fullnat\"\n[[real_server]]\nname = \"rs1\"\n");
        let dr = scenario("[service]\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\n");
        assert_eq!(list.reason(&fullnat, "run"), Some("FULLNAT is not in mainline IPVS"));
        assert_eq!(list.reason(&fullnat, "tally"), None);
        assert_eq!(list.reason(&dr, "run"), None);
        let special = scenario("name = \"special\"\n[service]\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\n");
        assert_eq!(list.reason(&special, "sequence"), Some("because"));
    }

    #[test]
    fn refuses_entries_without_reason_or_target() {
        let no_reason = "[[allow]]\nscenario = \"x\"\nfact = \"run\"\nreason = \" \"\n";
        assert!(AllowList::parse(no_reason)
            .unwrap_err()
            .contains("only with its reason"));
        let no_target = "[[allow]]\nfact = \"run\"\nreason = \"r\"\n";
        assert!(AllowList::parse(no_target)
            .unwrap_err()
            .contains("`scenario` or `mode`"));
        let bad_mode = "[[allow]]\nmode = \"drr\"\nfact = \"run\"\nreason = \"r\"\n";
        assert!(AllowList::parse(bad_mode).unwrap_err().contains("unknown mode"));
        let typo = "[[allow]]\nscenaro = \"x\"\nfact = \"run\"\nreason = \"r\"\n";
        assert!(AllowList::parse(typo).unwrap_err().contains("scenaro"));
    }
}
