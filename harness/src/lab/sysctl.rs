//! Network sysctls, written from a namespace's own thread (where /proc/sys/net follows the thread).

use std::io::{self, Write};
use std::path::PathBuf;

use super::error::LabError;

/// "net.ipv4.conf.all.arp_ignore" → /proc/sys/net/ipv4/conf/all/arp_ignore.
/// A name with '/' is taken as a path already (for interface names containing dots).
pub(crate) fn sysctl_path(name: &str) -> PathBuf {
    let rel = if name.contains('/') {
        name.to_string()
    } else {
        name.replace('.', "/")
    };
    PathBuf::from("/proc/sys").join(rel)
}

/// Must run on a thread inside the target namespace.
pub(crate) fn write_sysctl(host: &str, name: &str, value: &str) -> Result<(), LabError> {
    let path = sysctl_path(name);
    let file = std::fs::OpenOptions::new().write(true).open(&path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(LabError::UnknownSysctl {
                host: host.to_string(),
                name: name.to_string(),
                path: path.display().to_string(),
            })
        }
        Err(e) => return Err(LabError::os(host, format!("open sysctl {name}"), e)),
    };
    file.write_all(value.as_bytes())
        .map_err(|e| LabError::os(host, format!("write sysctl {name}={value}"), e))
}

/// Must run on a thread inside the target namespace.
pub(crate) fn read_sysctl(name: &str) -> io::Result<String> {
    Ok(std::fs::read_to_string(sysctl_path(name))?.trim_end().to_string())
}

/// The switch is a plain L2 switch: where br_netfilter is loaded, every bridged frame would also
/// walk the host's iptables/arptables hooks (about half the cost of forwarding a frame here).
/// Written from the switch namespace's thread; absent knobs (no br_netfilter) are fine.
pub(crate) fn plain_bridges() -> Result<(), LabError> {
    ipv4_only(super::plan::SWITCH_NAME)?;
    for knob in [
        "bridge-nf-call-iptables",
        "bridge-nf-call-ip6tables",
        "bridge-nf-call-arptables",
    ] {
        let name = format!("net.bridge.{knob}");
        if sysctl_path(&name).exists() {
            write_sysctl(super::plan::SWITCH_NAME, &name, "0")?;
        }
    }
    Ok(())
}

/// Lab hosts speak IPv4 only. With IPv6 on, every interface that comes up sends a handful of
/// multicast frames (MLD reports, duplicate address detection, router solicitations), which a
/// bridge floods to every port: in a 1000-host lab some 8000 frames × 1000 ports in the first
/// seconds, overflowing the receive backlogs and dropping ARP and SYNs with them. Written before
/// any interface but lo exists, so `default` covers them all (lo keeps ::1; it sends nothing).
/// One write, no existence check: each /proc/sys lookup walks a dentry chain as long as the
/// number of namespaces (every namespace has the same names), so at 1000 hosts lookups add up.
pub(crate) fn ipv4_only(host: &str) -> Result<(), LabError> {
    match write_sysctl(host, "net.ipv6.conf.default.disable_ipv6", "1") {
        Err(LabError::UnknownSysctl { .. }) => Ok(()), // a kernel without IPv6
        other => other,
    }
}
