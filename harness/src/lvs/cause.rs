//! The causes a diagnosis can name: the ids of `diagnose`'s rules, plus `healthy`
//! (no cause). Scenario files name them in `[expect] diagnosis`, findings carry them.

super::word::words!(
    /// A diagnosis cause, by its stable kebab-case id.
    CauseId, "diagnosis cause", {
        ArpFlux = "arp-flux",
        Persistence = "persistence",
        SourceHash = "source-hash",
        DestinationHash = "destination-hash",
        Keepalive = "keepalive",
        PortReuse = "port-reuse",
        WeightZero = "weight-zero",
        ServerDown = "server-down",
        /// keepalived's health checker took a real server out (or to weight 0) during the run.
        HealthCheck = "health-check",
        /// Quorum was lost and keepalived's sorry server took the traffic.
        SorryServer = "sorry-server",
        /// A real server failed mid-run (an `[[event]]`) and nothing took it out meanwhile.
        ServerFault = "server-fault",
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
        /// Two directors of one VRRP instance are MASTER at once, both holding the VIP.
        SplitBrain = "split-brain",
        /// Requests failed while a backup director took the VIP over from a master that died.
        Failover = "failover",
        /// A real server's firewall drops what the director hands it (VIP, or RIP:port in NAT).
        Firewall = "firewall",
        /// A router drops the DR/TUN replies a real server sends from the VIP.
        AntiSpoofing = "anti-spoofing",
        /// Several independent directors each started idle and made the same first choices.
        MultiDirector = "multi-director",
        /// Every client is behind one NAT address, and the service keys on the client address.
        MegaProxy = "mega-proxy",
        /// A keepalived setting's default breaks the service (`vrrp_strict` without `accept`, ...).
        KeepalivedConfig = "keepalived-config",
        /// A real server holds the VIP with a prefix wider than /32, or on its LAN interface.
        VipPrefix = "vip-prefix",
        /// DR/TUN: a real server configured on another port than the service's, or one RIP on two ports.
        PortRemap = "port-remap",
        /// DR: a real server the director reaches through a router, or whose replies go back via the director.
        DrTopology = "dr-topology",
        /// No cause: the spread is what the scheduler should give.
        Healthy = "healthy",
    }
);

impl CauseId {
    /// Whether the cause is read in one director's own table (its scheduler, persistence,
    /// weights and checkers), so that among several directors a finding names its director.
    pub fn is_in_director_table(self) -> bool {
        use CauseId::*;
        matches!(
            self,
            Persistence
                | SourceHash
                | DestinationHash
                | PortReuse
                | WeightZero
                | HealthCheck
                | SorryServer
                | SchedulerArithmetic
                | SingleServer
                | MegaProxy
        )
    }
}
