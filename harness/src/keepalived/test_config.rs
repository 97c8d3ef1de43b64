//! `keepalived -t`: keepalived's own check of a config, run where the config will run (it
//! needs the VRRP interfaces to exist, so inside the director's namespace).

use std::path::Path;
use std::process::{Command, Stdio};

use super::{binary, KeepalivedError};
use crate::lab::Host;

/// Runs `keepalived -t -f CONF` in `host`'s namespace. Exit 0 passes; any other status fails
/// with keepalived's output: it exits 5 for mere warnings (an unknown keyword among them),
/// and a generated config must be clean.
pub async fn config_test(host: &Host, conf: &Path) -> Result<(), KeepalivedError> {
    let binary = binary().ok_or(KeepalivedError::NotInstalled)?;
    let conf_text = conf.display().to_string();
    let conf = conf.to_path_buf();
    let name = host.name().to_string();
    let thread_name = format!("ka-test-{name}");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = host.spawn_thread(&thread_name, move || {
        let mut cmd = Command::new(&binary);
        cmd.arg("-t").arg("-f").arg(&conf).stdin(Stdio::null());
        crate::sys::process::die_with_parent_in_child(&mut cmd);
        let _ = tx.send(cmd.output());
    });
    let thread = spawned.map_err(|e| KeepalivedError::os(host.name(), "start a thread in the namespace", e))?;
    let output = rx
        .await
        .map_err(|_| KeepalivedError::os(host.name(), "run keepalived -t", std::io::Error::other("thread ended")))?;
    let _ = thread.join();
    let output = output.map_err(|e| KeepalivedError::os(&name, "run keepalived -t", e))?;
    if output.status.success() {
        return Ok(());
    }
    let lines = String::from_utf8_lossy(&output.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&output.stdout).lines())
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    Err(KeepalivedError::ConfigTest {
        host: name,
        conf: conf_text,
        status: output.status.to_string(),
        lines,
    })
}
