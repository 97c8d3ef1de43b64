//! The sysctls the diagnosis reads, by dotted name, from /proc/sys on a thread inside the
//! namespace (there /proc/sys/net follows the thread's namespace).

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use super::error::ObserveError;

/// Per-interface knobs, read for `all`, `default` and every interface.
pub const CONF_KNOBS: [&str; 4] = ["arp_ignore", "arp_announce", "rp_filter", "accept_local"];

/// Host-wide knobs.
pub const GLOBAL_KNOBS: [&str; 1] = ["net.ipv4.ip_forward"];

/// Dotted names to read for a host with these interfaces.
pub fn sysctl_names(ifaces: &[String]) -> Vec<String> {
    let scopes = ["all", "default"]
        .into_iter()
        .map(str::to_string)
        .chain(ifaces.iter().cloned());
    let mut names: Vec<String> = scopes
        .flat_map(|scope| {
            CONF_KNOBS
                .iter()
                .map(move |knob| format!("net.ipv4.conf.{scope}.{knob}"))
        })
        .collect();
    names.extend(GLOBAL_KNOBS.iter().map(|n| n.to_string()));
    names
}

/// /proc/sys path of `net.ipv4.conf.<scope>.<knob>` or a plain dotted name. The interface
/// part may hold dots itself (eth0.100), so conf names are split around it, not at every dot.
pub fn sysctl_path(name: &str) -> PathBuf {
    let rel = match name
        .strip_prefix("net.ipv4.conf.")
        .and_then(|rest| rest.rsplit_once('.'))
    {
        Some((scope, knob)) => format!("net/ipv4/conf/{scope}/{knob}"),
        None => name.replace('.', "/"),
    };
    PathBuf::from("/proc/sys").join(rel)
}

/// Reads each name; one that does not exist (an interface that vanished, a knob an older
/// kernel lacks) is left out rather than failing the whole gathering.
/// Must run on a thread inside the namespace.
pub fn read_sysctls(host: &str, names: &[String]) -> Result<BTreeMap<String, String>, ObserveError> {
    let mut values = BTreeMap::new();
    for name in names {
        match std::fs::read_to_string(sysctl_path(name)) {
            Ok(v) => {
                values.insert(name.clone(), v.trim().to_string());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ObserveError::os(host, format!("read sysctl {name}"), e)),
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_all_default_and_each_interface() {
        let names = sysctl_names(&["lo".into(), "eth0".into()]);
        for want in [
            "net.ipv4.conf.all.arp_ignore",
            "net.ipv4.conf.default.rp_filter",
            "net.ipv4.conf.eth0.arp_announce",
            "net.ipv4.conf.lo.accept_local",
            "net.ipv4.ip_forward",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
        }
        assert_eq!(names.len(), 4 * 4 + 1);
    }

    #[test]
    fn interface_names_with_dots_map_to_one_directory() {
        assert_eq!(
            sysctl_path("net.ipv4.conf.eth0.100.arp_ignore"),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/arp_ignore")
        );
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward"),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
    }
}
