//! The sysctls lvslab itself knows, with the values each takes: the ARP, reverse-path and
//! forwarding knobs the modes set (ip-sysctl.rst), and the `net.ipv4.vs.*` knobs its engines
//! emulate (ip_vs_ctl.c, ipvs-sysctl.rst). Ranges are what the kernel acts on: the kernel's
//! `proc_dointvec` stores any int, but reads only these.

use crate::ipvs;

/// The values a knob takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Takes {
    /// 0 or 1 (a TOML `true`/`false` too).
    Bool,
    /// An integer in `min..=max`.
    Range(i64, i64),
    /// One of these integers.
    OneOf(&'static [i64]),
}

impl Takes {
    pub fn allows(self, n: i64) -> bool {
        match self {
            Takes::Bool => n == 0 || n == 1,
            Takes::Range(min, max) => (min..=max).contains(&n),
            Takes::OneOf(set) => set.contains(&n),
        }
    }

    /// "0 or 1", "0 to 2", "0, 1, 2, 3 or 8".
    pub fn describe(self) -> String {
        match self {
            Takes::Bool => "0 or 1".to_owned(),
            Takes::Range(min, max) => format!("{min} to {max}"),
            Takes::OneOf(set) => {
                let words: Vec<String> = set.iter().map(i64::to_string).collect();
                match words.split_last() {
                    Some((last, [])) => last.clone(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
                }
            }
        }
    }
}

/// One knob: its leaf name, what it takes and what the values mean (for hints).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Knob {
    pub leaf: &'static str,
    pub takes: Takes,
    pub meaning: &'static str,
}

/// `net.ipv4.conf.<all|default|iface>.<leaf>`.
const CONF: &[Knob] = &[
    Knob {
        leaf: "arp_ignore",
        takes: Takes::OneOf(&[0, 1, 2, 3, 8]),
        meaning: "0 answers ARP for any local address, 1 only for the receiving interface's, 2 also needs the sender in its subnet, 3 skips host-scope addresses, 8 never answers (4-7 are reserved)",
    },
    Knob {
        leaf: "arp_announce",
        takes: Takes::Range(0, 2),
        meaning: "0 any local source address, 1 avoid addresses outside the target's subnet, 2 always the best local address",
    },
    Knob {
        leaf: "rp_filter",
        takes: Takes::Range(0, 2),
        meaning: "0 no source validation, 1 strict, 2 loose; the larger of `all` and the interface counts",
    },
    Knob {
        leaf: "accept_local",
        takes: Takes::Bool,
        meaning: "1 accepts packets with a local source address",
    },
    Knob {
        leaf: "forwarding",
        takes: Takes::Bool,
        meaning: "1 forwards packets on this interface",
    },
];

/// Whole-namespace knobs by full name.
const GLOBAL: &[(&str, Knob)] = &[(
    "net.ipv4.ip_forward",
    Knob {
        leaf: "ip_forward",
        takes: Takes::Bool,
        meaning: "1 forwards packets between interfaces",
    },
)];

pub(crate) const ENGINE_PREFIX: &str = "net.ipv4.vs.";

/// A `net.ipv4.vs.*` knob the engines emulate, and where it goes in their settings.
pub(crate) struct EngineKnob {
    pub knob: Knob,
    pub set: fn(&mut ipvs::Sysctls, i64),
}

/// What both engines take: the embedded engine emulates these, the kernel engine writes them.
pub(crate) const ENGINE: &[EngineKnob] = &[
    EngineKnob {
        knob: Knob {
            leaf: "conn_reuse_mode",
            takes: Takes::Range(0, 3),
            meaning: "a bitmap: 1 reschedules a new connection that reuses the port of one in TIME_WAIT, 2 also of one in FIN_WAIT without replies seen (DR/TUN); 0 never",
        },
        set: |s, n| s.conn_reuse_mode = n as u8,
    },
    EngineKnob {
        knob: Knob {
            leaf: "expire_nodest_conn",
            takes: Takes::Bool,
            meaning: "1 expires a connection as soon as a packet finds its real server unavailable (a new SYN also when its weight is 0)",
        },
        set: |s, n| s.expire_nodest_conn = n != 0,
    },
    EngineKnob {
        knob: Knob {
            leaf: "expire_quiescent_template",
            takes: Takes::Bool,
            meaning: "1 expires persistence templates of a real server with weight 0",
        },
        set: |s, n| s.expire_quiescent_template = n != 0,
    },
    EngineKnob {
        knob: Knob {
            leaf: "sloppy_tcp",
            takes: Takes::Bool,
            meaning: "1 creates connections from any TCP packet, not only SYN",
        },
        set: |s, n| s.sloppy_tcp = n != 0,
    },
];

/// Every knob of kernel IPVS's /proc/sys/net/ipv4/vs (ip_vs_ctl.c `vs_vars`), to tell "not
/// emulated" from "no such knob".
pub(crate) const KERNEL_IPVS: &[&str] = &[
    "amemthresh",
    "am_droprate",
    "drop_entry",
    "drop_packet",
    "secure_tcp",
    "conntrack",
    "snat_reroute",
    "sync_version",
    "sync_ports",
    "sync_persist_mode",
    "sync_qlen_max",
    "sync_sock_size",
    "cache_bypass",
    "expire_nodest_conn",
    "sloppy_tcp",
    "sloppy_sctp",
    "expire_quiescent_template",
    "sync_threshold",
    "sync_refresh_period",
    "sync_retries",
    "nat_icmp_send",
    "pmtu_disc",
    "backup_only",
    "conn_reuse_mode",
    "schedule_icmp",
    "ignore_tunneled",
    "run_estimation",
    "est_cpulist",
    "est_nice",
    "lblc_expiration",
    "lblcr_expiration",
    "debug_level",
];

pub(crate) fn engine_knob(leaf: &str) -> Option<&'static EngineKnob> {
    ENGINE.iter().find(|e| e.knob.leaf == leaf)
}

/// The knob a host sysctl name stands for, if lvslab knows it.
pub(crate) fn host_knob(name: &str) -> Option<&'static Knob> {
    if let Some((_, knob)) = GLOBAL.iter().find(|(n, _)| *n == name) {
        return Some(knob);
    }
    let (scope, leaf) = name.strip_prefix("net.ipv4.conf.")?.split_once('.')?;
    (!scope.is_empty()).then_some(())?;
    CONF.iter().find(|k| k.leaf == leaf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_described_as_a_reader_would_say_them() {
        assert_eq!(Takes::Bool.describe(), "0 or 1");
        assert_eq!(Takes::Range(0, 3).describe(), "0 to 3");
        assert_eq!(Takes::OneOf(&[0, 1, 2, 3, 8]).describe(), "0, 1, 2, 3 or 8");
        assert!(Takes::OneOf(&[0, 1, 2, 3, 8]).allows(8) && !Takes::OneOf(&[0, 1, 2, 3, 8]).allows(5));
    }

    #[test]
    fn host_knobs_are_found_by_scope_and_leaf() {
        assert_eq!(
            host_knob("net.ipv4.conf.eth0.arp_ignore").map(|k| k.leaf),
            Some("arp_ignore")
        );
        assert_eq!(host_knob("net.ipv4.ip_forward").map(|k| k.leaf), Some("ip_forward"));
        assert!(host_knob("net.ipv4.conf.all.proxy_arp").is_none());
        assert!(host_knob("net.ipv6.conf.all.forwarding").is_none());
    }

    #[test]
    fn every_emulated_knob_is_a_kernel_ipvs_knob() {
        for e in ENGINE {
            assert!(KERNEL_IPVS.contains(&e.knob.leaf), "{}", e.knob.leaf);
        }
    }
}
