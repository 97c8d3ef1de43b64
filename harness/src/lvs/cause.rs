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
