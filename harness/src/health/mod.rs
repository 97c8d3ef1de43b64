//! keepalived's health checkers, pure: a state machine per checker and per
//! virtual server, driven by check results on a caller's clock.
//!
//! The caller (a lab, an engine) asks [`Monitor`] which checks are due, runs
//! them (TCP connect, HTTP GET, a command) however it likes, and reports each
//! [`CheckOutcome`] with the time the attempt ended. The monitor answers with
//! [`HealthRecord`]s: keepalived's own log lines, the table changes to apply
//! through the engine ([`TableAction`]), and the notify events. No I/O, no
//! clock, no randomness: warmup's random pick is the caller's.
//!
//! Sources (keepalived 2.2.7, the authority): `check/check_tcp.c`
//! (`tcp_epilog`), `check/check_http.c` (`epilog`, `timeout_epilog`),
//! `check/check_misc.c` (`misc_check_child_thread`), `check/check_api.c`
//! (`register_checkers_thread`), `check/ipwrapper.c` (`init_service_rs`,
//! `update_svr_checker_state`, `perform_svr_state`, `update_quorum_state`,
//! `clear_service_rs`), `check/ipvswrapper.c` (`ipvs_cmd`: inhibit turns a
//! removal into weight 0), `check/check_data.c` (`validate_check_config`).
//! Facts and arithmetic: shared/reference/keepalived.md §2.
//!
//! Not reproduced: UDP/DNS/SMTP/PING/FILE/BFD checkers,
//! ha_suspend, reloads, virtual server groups' per-entry bookkeeping, SMTP
//! alerts, and a failing IPVS command (every table change is assumed to work).

mod checker;
mod monitor;
mod pool;
mod service;
mod settings;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

pub use checker::CheckerState;
pub use monitor::{CheckTarget, CheckerId, DueCheck, Monitor, RealServerConfig, VirtualServerConfig};
pub use service::{Trio, VsName};
pub use settings::{
    CheckerKind, CheckerSettings, HttpGet, MiscCheck, TimingOverrides, Url, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DELAY_LOOP,
};

/// What one attempt of a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    Success,
    Failure(FailReason),
}

/// Why an attempt failed, in the terms keepalived logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailReason {
    /// No answer within connect_timeout (packets dropped, host gone).
    ConnectTimeout,
    /// Refused (RST) or unreachable (ICMP): the attempt ends at once.
    ConnectRefused,
    /// Any other socket error while connecting.
    ConnectError,
    /// HTTP: the connection closed before any data.
    NoData,
    /// HTTP: a status code outside the URL's accepted set.
    HttpStatus(u16),
    /// HTTP: the body's MD5 differs from the URL's digest.
    Digest,
    /// HTTP: the response did not complete within connect_timeout.
    ReadTimeout,
    /// MISC: the command exited with this non-zero status.
    MiscExit(u8),
    /// MISC: the command ran past misc_timeout and was killed.
    MiscTimeout,
    /// MISC: the command died from this signal.
    MiscSignal(i32),
}

/// One table change for the engine, after keepalived's `ipvs_cmd` translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableAction {
    pub dest: SocketAddr,
    /// The sorry server rather than a real server.
    pub sorry: bool,
    pub op: TableOp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableOp {
    /// IPVS ADD_DEST with this weight (0 when inhibited and failed).
    Add { weight: u32 },
    /// IPVS DEL_DEST.
    Remove,
    /// IPVS EDIT_DEST: weight 0 for an inhibited failure, the real weight when it returns.
    SetWeight { weight: u32 },
}

/// Something the checkers did, in the order keepalived does it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthEvent {
    /// A line keepalived 2.2.7 logs at this point, verbatim.
    Log(String),
    Table(TableAction),
    /// `notify_up` / `notify_down` and the FIFO line `RS <rs> <vs> UP|DOWN`.
    RealServer {
        rs: SocketAddr,
        up: bool,
        fifo: String,
    },
    /// `quorum_up` / `quorum_down` and the FIFO line `VS <vs> UP|DOWN`.
    Quorum {
        up: bool,
        fifo: String,
    },
}

/// An event with the virtual time it happened at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthRecord {
    pub at: Duration,
    pub event: HealthEvent,
}

/// keepalived's `BOOTSTRAP_DELAY` (lib/scheduler.h): the first check waits 1 s plus warmup.
pub const BOOTSTRAP_DELAY: Duration = Duration::from_secs(1);

/// The latest a real server that is dead from the start leaves the table, counted from the
/// checkers' start (reference §2.7, "at startup"): its first attempt starts at
/// BOOTSTRAP_DELAY + warmup at most and one failure is enough, ending within the attempt's
/// timeout (a refused connect ends at once; packets that vanish take the whole timeout).
/// With alpha it is never added, so this bounds its absence too.
pub fn removed_at_start_within(kind: &CheckerKind, settings: &CheckerSettings, vs_delay_loop: Duration) -> Duration {
    let attempt = match kind {
        CheckerKind::Misc(misc) => misc.timeout.unwrap_or(vs_delay_loop),
        CheckerKind::Tcp | CheckerKind::Http(_) => settings.connect_timeout,
    };
    BOOTSTRAP_DELAY + settings.warmup + attempt
}
