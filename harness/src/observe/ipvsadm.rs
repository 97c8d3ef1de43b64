//! The real `ipvsadm`, run in a director's namespace: a second witness of the kernel's
//! IPVS table beside lvslab's own views of it.

use std::process::{Command, Stdio};

use serde::Serialize;

/// The views `lvslab conform` compares, as ipvsadm's arguments.
pub const IPVSADM_VIEWS: [&str; 6] = [
    "-Ln",
    "-Ln --stats",
    "-Ln --rate",
    "-Lnc",
    "-Ln --persistent-conn",
    "-S -n",
];

/// What one `ipvsadm` invocation printed, or why it printed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpvsadmView {
    pub args: String,
    pub output: Result<String, String>,
}

/// Runs every view in [`IPVSADM_VIEWS`]. Call on a thread inside the director's namespace:
/// a child process inherits the namespace of the thread that forks it.
pub fn ipvsadm_views() -> Vec<IpvsadmView> {
    IPVSADM_VIEWS.iter().map(|args| run(args)).collect()
}

fn run(args: &str) -> IpvsadmView {
    let output = Command::new("ipvsadm")
        .args(args.split(' '))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ipvsadm {args}: {e} (is the ipvsadm package installed?)"))
        .and_then(|out| {
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(format!(
                    "ipvsadm {args} exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        });
    IpvsadmView {
        args: args.to_owned(),
        output,
    }
}

/// `nft list table ip lvslab_fwmark`, as the director's namespace holds it: the marking rules
/// beside `ipvsadm -S -n` for an import of a fwmark service. Call as [`ipvsadm_views`].
pub fn mark_rules() -> Result<String, String> {
    let table = crate::nft::mark::TABLE;
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run nft list table ip {table}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "nft list table ip {table} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
