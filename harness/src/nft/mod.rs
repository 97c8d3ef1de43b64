//! Host firewalls through the `nft` command (Debian's nftables package): scenarios write their
//! rules in nft's own syntax, the syntax users already write and read, so lvslab hands them to
//! the same parser rather than to a second one that could accept or refuse differently. Rules
//! are loaded with `nft -f -` in the host's namespace, checked with `nft -c -f -` in a
//! namespace of its own, and read back with `nft -j list ruleset` (JSON, for the counters).

pub mod mark;
pub mod ruleset;

use std::io::{self, Write};
use std::process::{Command, Output, Stdio};

/// One complaint of nft about a script, at its 1-based line and column (0 when nft gave none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftError {
    pub line: usize,
    pub column: usize,
    /// nft's message, without the `Error:` prefix.
    pub message: String,
    /// The script's line nft quoted under the message.
    pub source_line: Option<String>,
}

const NOT_INSTALLED: &str = "nft is not installed (Debian: apt-get install nftables)";

/// Runs `nft args` with `input` on stdin in the calling thread's namespace.
fn run(mut cmd: Command, input: &str) -> io::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    child.wait_with_output()
}

fn nft_missing(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::NotFound {
        NOT_INSTALLED.to_string()
    } else {
        format!("cannot run nft: {e}")
    }
}

/// Loads `script` (`nft -f -`) into the calling thread's network namespace.
pub fn load(script: &str) -> Result<(), String> {
    let mut cmd = Command::new("nft");
    cmd.args(["-f", "-"]);
    let out = run(cmd, script).map_err(|e| nft_missing(&e))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors = parse_errors(&stderr);
    Err(match errors.first() {
        Some(e) if e.line > 0 => format!("nft refused the rules at line {}:{}: {}", e.line, e.column, e.message),
        _ => format!("nft refused the rules: {}", stderr.trim()),
    })
}

/// What nft says of `script` (`nft -c -f -`) in an empty namespace of its own that has
/// interfaces named as `interfaces` (nft refuses `iif` on a device that does not exist): no
/// complaint is an empty list. `Err` when nft cannot be run at all.
pub fn check(script: &str, interfaces: &[String]) -> Result<Vec<NftError>, String> {
    // nft alone first: `sh` would hide "not installed" behind its own exit code.
    Command::new("nft")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| nft_missing(&e))?;
    let mut shell = String::new();
    // veth pairs: the dummy driver may be a module this kernel cannot load.
    for (i, name) in interfaces.iter().filter(|n| is_plain_name(n)).enumerate() {
        shell.push_str(&format!(
            "ip link add {name} type veth peer name lvslab-peer{i} 2>/dev/null; "
        ));
    }
    shell.push_str("exec nft -c -f -");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &shell]);
    crate::sys::process::new_netns_in_child(&mut cmd);
    let out = run(cmd, script).map_err(|e| format!("cannot run nft in a namespace of its own: {e}"))?;
    if out.status.success() {
        return Ok(Vec::new());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors = parse_errors(&stderr);
    if errors.is_empty() {
        return Ok(vec![NftError {
            line: 0,
            column: 0,
            message: stderr.trim().to_string(),
            source_line: None,
        }]);
    }
    Ok(errors)
}

/// Interface names that are safe in a shell line (lab names are `eth0`, `tunl0`, ...).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "lo"
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// nft's complaints: `/dev/stdin:3:5-10: Error: message`, the quoted line, a caret line; or
/// `Error: message` with no place.
pub fn parse_errors(stderr: &str) -> Vec<NftError> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((place, message)) = line.split_once("Error: ") else {
            continue;
        };
        let (line_no, column) = place_of(place.trim_end_matches([' ', ':'])).unwrap_or((0, 0));
        let source_line = lines
            .get(i + 1)
            .filter(|l| line_no > 0 && !l.contains("Error: "))
            .map(|l| l.to_string());
        errors.push(NftError {
            line: line_no,
            column,
            message: message.trim().to_string(),
            source_line,
        });
    }
    errors
}

/// `file:3:5-10` → (3, 5).
fn place_of(place: &str) -> Option<(usize, usize)> {
    let mut parts = place.rsplitn(3, ':');
    let columns = parts.next()?;
    let line = parts.next()?.parse().ok()?;
    let column = columns.split('-').next()?.parse().ok()?;
    Some((line, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_with_their_place_and_quoted_line() {
        let stderr = "/dev/stdin:2:30-33: Error: syntax error, unexpected drop\n\
                      \x20 chain c { ip daddr 1.2.3.4 frob drop; }\n\
                      \x20                            ^^^^\n\
                      /dev/stdin:4:6-9: Error: Interface does not exist\n\
                      \x20iif eth9 drop\n\
                      \x20    ^^^^\n\
                      Error: Could not process rule: Operation not permitted\n";
        let errors = parse_errors(stderr);
        assert_eq!(errors.len(), 3);
        assert_eq!((errors[0].line, errors[0].column), (2, 30));
        assert_eq!(errors[0].message, "syntax error, unexpected drop");
        assert_eq!(
            errors[0].source_line.as_deref(),
            Some("  chain c { ip daddr 1.2.3.4 frob drop; }")
        );
        assert_eq!((errors[1].line, errors[1].column), (4, 6));
        assert_eq!((errors[2].line, errors[2].column), (0, 0));
        assert_eq!(errors[2].source_line, None);
    }

    #[test]
    fn nft_checks_in_a_namespace_of_its_own() {
        // Needs nft (ci/install.sh installs it) and either root or user namespaces.
        let good = "table inet f {\n  chain c {\n    type filter hook input priority 0;\n    iif eth0 ip daddr 192.0.2.100 counter drop\n  }\n}\n";
        assert_eq!(check(good, &["eth0".to_string()]), Ok(vec![]));
        let bad = good.replace("counter drop", "counter dorp");
        let errors = check(&bad, &["eth0".to_string()]).unwrap();
        assert_eq!(errors[0].line, 4, "{errors:?}");
        assert!(errors[0].message.contains("syntax error"), "{errors:?}");
        // Without the interface, nft refuses `iif eth0`: the namespace is empty but for the dummies.
        let errors = check(good, &[]).unwrap();
        assert_eq!(errors[0].message, "Interface does not exist", "{errors:?}");
    }
}
