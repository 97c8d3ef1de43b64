//! The closed vocabularies of a scenario file (modes, schedulers, ...):
//! each enum knows its spelling in the file, so validation can list the
//! valid words and suggest the nearest one.

/// A word from a closed list in the scenario file.
pub trait Keyword: Sized + Copy + 'static {
    /// What the word names, for messages ("scheduler", "mode", ...).
    const WHAT: &'static str;
    /// Every valid spelling with its value, in documentation order.
    const ALL: &'static [(&'static str, Self)];

    fn from_word(word: &str) -> Option<Self> {
        Self::ALL.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
    }

    fn words() -> Vec<&'static str> {
        Self::ALL.iter().map(|(w, _)| *w).collect()
    }
}

macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl Keyword for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [(&'static str, Self)] = &[$(($word, $name::$variant)),+];
        }

        impl $name {
            /// The spelling used in scenario files (and by ipvsadm where it has one).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keyword_enum!(
    /// Which director engine runs the service.
    EngineChoice, "engine", {
        /// Kernel IPVS when present, else embedded.
        Auto = "auto",
        Embedded = "embedded",
        Kernel = "kernel",
    }
);

keyword_enum!(
    /// LVS forwarding method (`ipvsadm -g/-m/-i`), plus `direct` (no director).
    Mode, "mode", {
        /// No director: clients reach the real servers' own addresses round robin.
        Direct = "direct",
        Dr = "dr",
        Nat = "nat",
        Tun = "tun",
        FullNat = "fullnat",
    }
);

keyword_enum!(Protocol, "protocol", { Tcp = "tcp", Udp = "udp" });

keyword_enum!(
    /// IPVS schedulers, named as `ipvsadm -s` names them.
    Scheduler, "scheduler", {
        Rr = "rr", Wrr = "wrr", Lc = "lc", Wlc = "wlc", Sed = "sed", Nq = "nq",
        Fo = "fo", Ovf = "ovf", Twos = "twos", Sh = "sh", Dh = "dh", Mh = "mh",
        Lblc = "lblc", Lblcr = "lblcr",
    }
);

keyword_enum!(
    /// Scheduler flags (`ipvsadm -b`).
    SchedFlag, "scheduler flag", {
        ShFallback = "sh-fallback", ShPort = "sh-port",
        MhFallback = "mh-fallback", MhPort = "mh-port",
    }
);

impl SchedFlag {
    /// The scheduler this flag affects.
    pub fn scheduler(self) -> Scheduler {
        match self {
            SchedFlag::ShFallback | SchedFlag::ShPort => Scheduler::Sh,
            SchedFlag::MhFallback | SchedFlag::MhPort => Scheduler::Mh,
        }
    }
}

keyword_enum!(
    /// How a real server behaves.
    ServerState, "state", {
        Up = "up",
        /// Host dead: its links are down.
        Down = "down",
        /// Host up, nothing listening: connections are refused.
        Refuse = "refuse",
        /// Answers after `delay_ms`.
        Slow = "slow",
        /// Answers HTTP 500.
        Error = "error",
    }
);

keyword_enum!(
    /// Where a real server holds the VIP.
    VipOn, "vip_on", { Lo = "lo", Tunl0 = "tunl0", Eth0 = "eth0", None = "none" }
);

keyword_enum!(
    /// One connection per request, or requests reusing connections.
    ConnectionMode, "connection", { New = "new", Keepalive = "keepalive" }
);

keyword_enum!(
    /// What `lvslab conform` compares between the kernel and the embedded engine.
    Comparison, "compare", {
        /// Everything, the answer sequence included: one client, one request at a time.
        Exact = "exact",
        /// Only facts that do not depend on which of several racing first packets won
        /// (which backends answer, error counts, table layout, connection states,
        /// diagnosis): several clients or concurrent connections.
        OrderFree = "order-free",
    }
);

keyword_enum!(
    /// Cause ids the diagnose layer can report.
    Cause, "diagnosis cause", {
        ArpFlux = "arp-flux",
        Persistence = "persistence",
        SourceHash = "source-hash",
        DestinationHash = "destination-hash",
        Keepalive = "keepalive",
        PortReuse = "port-reuse",
        WeightZero = "weight-zero",
        ServerDown = "server-down",
        VipNotLocal = "vip-not-local",
        RpFilter = "rp-filter",
        NatReturnPath = "nat-return-path",
        TunnelDecap = "tunnel-decap",
        UdpFlow = "udp-flow",
        SingleServer = "single-server",
        LocalClient = "local-client",
        ChecksumOffload = "checksum-offload",
        SchedulerArithmetic = "scheduler-arithmetic",
        /// The client ran out of source ports (not a director fault).
        SourcePorts = "source-ports",
        /// No cause: the spread is what the scheduler should give.
        Healthy = "healthy",
    }
);
