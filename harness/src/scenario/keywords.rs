//! The closed vocabularies of a scenario file (modes, schedulers, ...):
//! each knows its spelling in the file, so validation can list the valid
//! words and suggest the nearest one. Words that name LVS concepts spell the
//! shared types of `crate::lvs`; the rest are the scenario's own.

/// A diagnosis cause under its scenario name (`[expect] diagnosis`).
pub use crate::lvs::CauseId as Cause;
/// The L4 protocol under its scenario name (`protocol = "tcp"`).
pub use crate::lvs::Proto as Protocol;
pub use crate::lvs::{CauseId, Mode, SchedFlag, Scheduler};

/// A word from a closed list in the scenario file.
pub trait Keyword: Sized + Copy + PartialEq + 'static {
    /// What the word names, for messages ("scheduler", "mode", ...).
    const WHAT: &'static str;
    /// Every valid value, in documentation order.
    const ALL: &'static [Self];

    /// The spelling in the file.
    fn word(self) -> &'static str;

    fn from_word(word: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.word() == word)
    }

    fn words() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.word()).collect()
    }
}

/// The LVS types are keywords under their own names and lists.
macro_rules! lvs_keyword {
    ($($name:ty),+) => {$(
        impl Keyword for $name {
            const WHAT: &'static str = <$name>::WHAT;
            const ALL: &'static [Self] = <$name>::ALL;
            fn word(self) -> &'static str {
                self.as_str()
            }
        }
    )+};
}

lvs_keyword!(crate::lvs::Proto, Mode, Scheduler, SchedFlag, CauseId);

macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl Keyword for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn word(self) -> &'static str {
                self.as_str()
            }
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
    /// Who runs VRRP on the directors of a `[vrrp_instance]`.
    VrrpChoice, "vrrp", {
        /// The real keepalived when it is installed, else lvslab's own.
        Auto = "auto",
        /// `keepalived -P` in each director's namespace, its config written by lvslab.
        Keepalived = "keepalived",
        /// lvslab's own VRRP (`crate::vrrp`), with keepalived's timers and packets.
        Embedded = "embedded",
    }
);

keyword_enum!(
    /// Who runs the health checkers of `[service.check]`.
    CheckersChoice, "checkers", {
        /// The real keepalived when it is installed, the director runs the kernel engine and
        /// the scenario has `[service.check]`; else lvslab's own.
        Auto = "auto",
        /// `keepalived -C` in each director's namespace: its checkers drive kernel IPVS.
        Keepalived = "keepalived",
        /// lvslab's own checkers (`crate::health`), on either engine.
        Embedded = "embedded",
    }
);

keyword_enum!(
    /// keepalived's `state`: an initial wish, not a guarantee.
    VrrpState, "state", { Master = "MASTER", Backup = "BACKUP" }
);

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
        /// Only facts that do not depend on how many requests a timed fault caught (which
        /// backends answer, errors by kind, table layout, connection states, diagnosis, the
        /// verdict): a server stopping between two paced requests catches one more or less.
        CountFree = "count-free",
        /// `count-free` minus the connection rows and the error kinds: when the VIP moves
        /// between directors while the traffic runs, which connections were in flight at the
        /// takeover (half-open in one table, or failed) rests on that moment, not on IPVS. The
        /// directors' VRRP transitions and final masters are compared instead, and the verdict
        /// holds the scenario's bound on errors.
        TakeoverFree = "takeover-free",
    }
);

keyword_enum!(
    /// The scenario key an import's default set (`[service.origin] defaults`).
    DefaultedKey, "defaulted key", {
        Mode = "mode",
        Protocol = "protocol",
        Persistence = "persistence",
        Scheduler = "scheduler",
        Port = "port",
        RealPort = "real_port",
    }
);
