//! keepalived's checker child as lvslab's health records: its console lines (keepalived 2.2.7,
//! `-l -D`, with `log_all_failures` on every checker) and its notify FIFO lines read back into
//! the [`HealthRecord`]s lvslab's own [`crate::health::Monitor`] produces, so that a run's
//! health outcome, its `[expect]` checks and the diagnosis read the same either way.
//!
//! Pure: lines in, records out. The table is followed the way keepalived changes it
//! (check/ipwrapper.c): `perform_svr_state` logs "Adding/Removing service" but touches IPVS only
//! while quorum holds or no sorry server stands in; `update_quorum_state` swaps the sorry
//! server and the alive servers ("Removing alive servers from the pool").
//!
//! What keepalived does not say: why a TCP connect "failed" (refused or another error: read as
//! refused, the usual case) and which HTTP status a check got ("HTTP status code error to
//! server"): [`CheckerLog::http_status`] fills that in from the caller's own fetch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::health::{FailReason, HealthEvent, HealthRecord, TableAction, TableOp};

/// The prefix the daemon gives notify FIFO lines it keeps with the log.
pub const FIFO_PREFIX: &str = "notify_fifo: ";

/// One real server of the virtual server, as keepalived names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolServer {
    /// `[192.0.2.11]:tcp:80`.
    pub trio: String,
    pub addr: SocketAddr,
    pub weight: u32,
    pub inhibit: bool,
    /// Has a checker (else keepalived never takes it out).
    pub checked: bool,
    /// The scenario asked for `log_all_failures`: its per-attempt lines belong in the log.
    pub log_all_failures: bool,
}

/// The virtual server the checkers watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// `[192.0.2.100]:tcp:80`.
    pub vs: String,
    pub servers: Vec<PoolServer>,
    /// The sorry server's trio, address and weight.
    pub sorry: Option<(String, SocketAddr, u32)>,
    /// `alpha`: servers start out of the table until a first good check.
    pub alpha: HashSet<SocketAddr>,
}

/// What has been read so far.
#[derive(Debug)]
pub struct CheckerLog {
    pool: Pool,
    /// What IPVS holds now: dest → weight (the sorry server included).
    table: BTreeMap<SocketAddr, u32>,
    /// keepalived's `rs->alive`.
    alive: HashSet<SocketAddr>,
    quorum_up: bool,
    last_reason: HashMap<SocketAddr, FailReason>,
    /// Records, stamped with the caller's times.
    pub records: Vec<HealthRecord>,
    /// Failed checks that took their server down: (when, server, why).
    pub failures: Vec<(Duration, SocketAddr, FailReason)>,
    /// Servers whose checker has had a first result.
    pub ran_once: HashSet<SocketAddr>,
    /// Config fix-ups and IPVS trouble keepalived reported.
    pub problems: Vec<String>,
}

/// What a line asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Nothing,
    /// keepalived got an HTTP status it does not accept from this server and does not say
    /// which: fetch it, and give it to [`CheckerLog::http_status`].
    HttpStatus(SocketAddr),
}

impl CheckerLog {
    /// The table as `init_services` leaves it: every real server in at its weight, except
    /// `alpha` ones.
    pub fn new(pool: Pool) -> CheckerLog {
        let table = pool
            .servers
            .iter()
            .filter(|s| !pool.alpha.contains(&s.addr))
            .map(|s| (s.addr, s.weight))
            .collect();
        let alive = pool
            .servers
            .iter()
            .filter(|s| !pool.alpha.contains(&s.addr))
            .map(|s| s.addr)
            .collect();
        CheckerLog {
            pool,
            table,
            alive,
            quorum_up: true,
            last_reason: HashMap::new(),
            records: Vec::new(),
            failures: Vec::new(),
            ran_once: HashSet::new(),
            problems: Vec::new(),
        }
    }

    /// How many servers have a checker.
    pub fn checker_count(&self) -> usize {
        self.pool.servers.iter().filter(|s| s.checked).count()
    }

    /// IPVS's table as the lines left it: dest → weight.
    pub fn table(&self) -> &BTreeMap<SocketAddr, u32> {
        &self.table
    }

    /// keepalived started again (a new `keepalived -C` after a stop or a kill): its
    /// `init_services` builds the virtual server as at the first start, every real server in
    /// at its weight but `alpha` ones and no sorry server, with quorum, and its checkers begin
    /// anew. The table changes from the last word of the run before (a stop's "Shutting down"
    /// deletions are not followed: they are keepalived's exit, not its checkers' decision).
    pub fn restarted(&mut self, at: Duration) {
        let fresh = CheckerLog::new(self.pool.clone());
        let sorry = self.pool.sorry.as_ref().map(|s| s.1);
        let gone: Vec<SocketAddr> = self
            .table
            .keys()
            .filter(|d| !fresh.table.contains_key(d))
            .copied()
            .collect();
        for dest in gone {
            self.change(at, dest, Some(dest) == sorry, None);
        }
        for (dest, weight) in fresh.table {
            self.change(at, dest, false, Some(weight));
        }
        self.alive = fresh.alive;
        self.quorum_up = true;
        self.last_reason.clear();
    }

    /// Reads one line (without keepalived's date), logged `at` after the checkers started.
    pub fn read(&mut self, at: Duration, line: &str) -> Ask {
        if let Some(fifo) = line.strip_prefix(FIFO_PREFIX) {
            self.fifo(at, fifo);
            return Ask::Nothing;
        }
        if line.contains("WARNING") || line.contains("Warning") || line.starts_with("IPVS") {
            self.problems.push(format!("keepalived: {line}"));
        }
        // Another virtual_server's line: its own reader takes it.
        if !self.mentions_pool(line) {
            return Ask::Nothing;
        }
        let (keep, ask) = self.interpret(at, line);
        // keepalived's own start and stop, BFD and the like are not the checkers' doing.
        if keep && is_checker_line(line) {
            self.log(at, line);
        }
        ask
    }

    /// The status an HTTP check got, fetched by the caller after [`Ask::HttpStatus`].
    pub fn http_status(&mut self, server: SocketAddr, status: u16) {
        let reason = FailReason::HttpStatus(status);
        if let Some(r) = self.last_reason.get_mut(&server) {
            if *r == FailReason::HttpStatus(0) {
                *r = reason;
            }
        }
        for f in self.failures.iter_mut().filter(|f| f.1 == server) {
            if f.2 == FailReason::HttpStatus(0) {
                f.2 = reason;
            }
        }
    }

    /// Whether `line` names this virtual server, one of its real servers or its sorry server.
    /// A real server in two virtual servers on one port is named alike in both: keepalived's
    /// checker lines name the real server only, so both readers take those.
    fn mentions_pool(&self, line: &str) -> bool {
        let pool = &self.pool;
        std::iter::once(pool.vs.as_str())
            .chain(pool.servers.iter().map(|s| s.trio.as_str()))
            .chain(pool.sorry.iter().map(|s| s.0.as_str()))
            .any(|trio| names_trio(line, trio))
    }

    fn log(&mut self, at: Duration, line: &str) {
        self.push(at, HealthEvent::Log(line.to_string()));
    }

    fn push(&mut self, at: Duration, event: HealthEvent) {
        self.records.push(HealthRecord { at, event });
    }

    fn server(&self, trio: &str) -> Option<&PoolServer> {
        self.pool.servers.iter().find(|s| s.trio == trio)
    }

    /// Whether the line belongs in the log, and what it asks.
    fn interpret(&mut self, at: Duration, line: &str) -> (bool, Ask) {
        // A first result: the line every checker logs on its first run (`has_run` false).
        for (prefix, suffix) in [
            ("TCP connection to ", " success."),
            ("Remote Web server ", " succeed on service."),
        ] {
            if let Some(trio) = between(line, prefix, suffix) {
                self.first_result(trio);
                return (true, Ask::Nothing);
            }
        }
        if let Some(rest) = line
            .strip_prefix("TCP_CHECK on service ")
            .or_else(|| line.strip_prefix("HTTP_CHECK on service "))
        {
            if let Some((trio, _)) = rest.split_once(" failed") {
                let trio = trio.to_string();
                self.first_result(&trio);
                self.down(at, &trio, FailReason::ConnectError);
            }
            return (true, Ask::Nothing);
        }
        if let Some(rest) = line.strip_prefix("Misc check for [") {
            return (self.misc(at, rest), Ask::Nothing);
        }
        // TCP_CHECK's per-attempt lines (log_all_failures).
        for (suffix, reason) in [
            (" timeout.", FailReason::ConnectTimeout),
            // "failed" is any connect error; a refusal (RST or ICMP) is the usual one.
            (" failed.", FailReason::ConnectRefused),
        ] {
            if let Some(trio) = between(line, "TCP connection to ", suffix) {
                return (self.attempt(trio, reason), Ask::Nothing);
            }
        }
        // HTTP_GET's per-attempt lines: `timeout_epilog`'s "<why> server <rs>.".
        if let Some((why, trio)) = line.strip_suffix('.').and_then(|l| l.rsplit_once(" server ")) {
            if let Some(reason) = http_reason(why) {
                let keep = self.attempt(trio, reason);
                let ask = match (reason, self.server(trio)) {
                    (FailReason::HttpStatus(_), Some(s)) => Ask::HttpStatus(s.addr),
                    _ => Ask::Nothing,
                };
                return (keep, ask);
            }
        }
        self.table_line(at, line);
        (true, Ask::Nothing)
    }

    fn first_result(&mut self, trio: &str) {
        if let Some(addr) = self.server(trio).map(|s| s.addr) {
            self.ran_once.insert(addr);
        }
    }

    /// A failed attempt's reason; whether its line belongs in the log.
    fn attempt(&mut self, trio: &str, reason: FailReason) -> bool {
        let Some(server) = self.server(trio) else { return true };
        let (addr, keep) = (server.addr, server.log_all_failures);
        self.last_reason.insert(addr, reason);
        keep
    }

    /// The checker of `trio` went down: the failure that did it.
    fn down(&mut self, at: Duration, trio: &str, fallback: FailReason) {
        let Some(addr) = self.server(trio).map(|s| s.addr) else {
            return;
        };
        let reason = self.last_reason.remove(&addr).unwrap_or(fallback);
        self.failures.push((at, addr, reason));
    }

    /// `Misc check for [<rs> VS <vs>] by [<script>] <exit_type><message>[ (<reason> <n>)].`
    fn misc(&mut self, at: Duration, rest: &str) -> bool {
        let Some((trio, after)) = rest.split_once(" VS ") else {
            return true;
        };
        let trio = trio.to_string();
        let Some((_, outcome)) = after.split_once("] by [").and_then(|(_, r)| r.split_once("] ")) else {
            return true;
        };
        self.first_result(&trio);
        // Retry messages ("will do", "on retry") come only with log_all_failures.
        let retrying = outcome.contains(", will do ") || outcome.contains(" on retry ");
        let keep = !retrying || self.server(&trio).is_some_and(|s| s.log_all_failures);
        if outcome.starts_with("succeeded") || retrying {
            return keep;
        }
        let number = |text: &str| {
            outcome
                .split_once(text)
                .and_then(|(_, n)| n.trim_end_matches([')', '.']).trim().parse::<i64>().ok())
        };
        let reason = if outcome.starts_with("timed out") {
            FailReason::MiscTimeout
        } else if let Some(signal) = number("(due to signal ") {
            FailReason::MiscSignal(signal as i32)
        } else if let Some(code) = number("(exited with status ") {
            FailReason::MiscExit(u8::try_from(code).unwrap_or(u8::MAX))
        } else {
            FailReason::MiscExit(1)
        };
        self.down(at, &trio, reason);
        keep
    }

    /// The lines of ipwrapper.c that change the table.
    fn table_line(&mut self, at: Duration, line: &str) {
        let vs = self.pool.vs.clone();
        let sorry_trio = self.pool.sorry.as_ref().map(|s| s.0.clone());
        let quorum_line = ["Lost quorum ", "Starting with quorum down ", "Gained quorum "]
            .iter()
            .any(|p| line.starts_with(p));
        if quorum_line && !line.ends_with(&format!("VS {vs}")) {
            return;
        }
        if line.starts_with("Lost quorum ") || line.starts_with("Starting with quorum down ") {
            self.quorum_up = false;
            return;
        }
        if line.starts_with("Gained quorum ") {
            self.quorum_up = true;
            return;
        }
        if line == format!("Removing alive servers from the pool for VS {vs}") {
            for addr in self.alive_servers() {
                self.change(at, addr, false, None);
            }
            return;
        }
        if line == format!("Adding alive servers to the pool for VS {vs}") {
            for addr in self.alive_servers() {
                let weight = self.weight_of(addr);
                self.change(at, addr, false, Some(weight));
            }
            return;
        }
        let Some((verb, rest)) = line.split_once(' ') else {
            return;
        };
        let (sorry, rest) = match rest.strip_prefix("sorry server ") {
            Some(r) => (true, r),
            None => match rest
                .strip_prefix("service ")
                .or_else(|| rest.strip_prefix("(inhibited) service "))
            {
                Some(r) => (false, r),
                None => return,
            },
        };
        let Some((trio, tail)) = rest.split_once(' ') else {
            return;
        };
        if !tail.ends_with(&format!("VS {vs}")) {
            return;
        }
        if sorry {
            let Some((_, addr, weight)) = self.pool.sorry.clone().filter(|_| sorry_trio.as_deref() == Some(trio))
            else {
                return;
            };
            match verb {
                "Adding" => self.change(at, addr, true, Some(weight)),
                "Enabling" => self.change(at, addr, true, Some(weight)),
                "Removing" => self.change(at, addr, true, None),
                "Disabling" => self.change(at, addr, true, Some(0)),
                _ => {}
            }
            return;
        }
        let Some(server) = self.server(trio).cloned() else {
            return;
        };
        let up = match verb {
            "Adding" | "Enabling" => true,
            "Removing" | "Disabling" => false,
            // "Shutting down": keepalived stopping, not a checker's decision.
            _ => return,
        };
        if up {
            self.alive.insert(server.addr);
        } else {
            self.alive.remove(&server.addr);
        }
        let sorry_in = self.pool.sorry.as_ref().is_some_and(|s| self.table.contains_key(&s.1));
        if !self.quorum_up && sorry_in {
            // perform_svr_state: the sorry server stands in, IPVS is left alone.
            return;
        }
        let weight = match (up, server.inhibit) {
            (true, _) => Some(server.weight),
            (false, true) => Some(0),
            (false, false) => None,
        };
        self.change(at, server.addr, false, weight);
    }

    fn alive_servers(&self) -> Vec<SocketAddr> {
        self.pool
            .servers
            .iter()
            .filter(|s| self.alive.contains(&s.addr))
            .map(|s| s.addr)
            .collect()
    }

    fn weight_of(&self, addr: SocketAddr) -> u32 {
        self.pool
            .servers
            .iter()
            .find(|s| s.addr == addr)
            .map_or(1, |s| s.weight)
    }

    /// `dest` to `weight` (None: deleted), as the IPVS command keepalived sends for it.
    fn change(&mut self, at: Duration, dest: SocketAddr, sorry: bool, weight: Option<u32>) {
        let present = self.table.get(&dest).copied();
        let op = match (weight, present) {
            (Some(w), None) => TableOp::Add { weight: w },
            (Some(w), Some(now)) if now != w => TableOp::SetWeight { weight: w },
            (Some(_), Some(_)) | (None, None) => return,
            (None, Some(_)) => TableOp::Remove,
        };
        match weight {
            Some(w) => self.table.insert(dest, w),
            None => self.table.remove(&dest),
        };
        self.push(at, HealthEvent::Table(TableAction { dest, sorry, op }));
    }

    /// `RS <rs> <vs> UP|DOWN` and `VS <vs> UP|DOWN` (check/ipwrapper.c).
    fn fifo(&mut self, at: Duration, line: &str) {
        let up = match line.rsplit_once(' ') {
            Some((_, "UP")) => true,
            Some((_, "DOWN")) => false,
            _ => return,
        };
        let fifo = line.to_string();
        if let Some(rest) = line.strip_prefix("RS ") {
            // `<rs> <vs> <state>`: a fwmark VS is two words (`FWM 3`).
            let Some((trio, vs)) = rest.rsplit_once(' ').and_then(|(r, _)| r.split_once(' ')) else {
                return;
            };
            if vs != self.pool.vs {
                return;
            }
            let Some(rs) = self.server(trio).map(|s| s.addr) else {
                return;
            };
            self.push(at, HealthEvent::RealServer { rs, up, fifo });
        } else if line
            .strip_prefix("VS ")
            .is_some_and(|r| r.starts_with(&format!("{} ", self.pool.vs)))
        {
            self.push(at, HealthEvent::Quorum { up, fifo });
        }
    }
}

/// The lines of the checkers, the quorum and the table (check_*.c, ipwrapper.c), as
/// lvslab's own checkers log them too.
fn is_checker_line(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Activating healthchecker for service ",
        "Deactivating healthchecker for service ",
        "TCP connection to ",
        "TCP_CHECK on service ",
        "HTTP_CHECK on service ",
        "Remote Web server ",
        "HTTP status code ",
        "MD5 digest ",
        "Misc check for ",
        "Removing ",
        "Adding ",
        "Enabling ",
        "Disabling ",
        "Lost quorum ",
        "Gained quorum ",
        "Starting with quorum down ",
        "Changing weight ",
    ];
    PREFIXES.iter().any(|p| line.starts_with(p))
        || line
            .rsplit_once(" server ")
            .is_some_and(|(why, _)| http_reason(why).is_some())
}

/// Whether `line` holds `trio` whole (`[a]:tcp:80` is not in `[a]:tcp:8080`).
fn names_trio(line: &str, trio: &str) -> bool {
    line.match_indices(trio)
        .any(|(i, _)| !line[i + trio.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// `line` is `prefix` + X + `suffix`: X.
fn between<'a>(line: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    line.strip_prefix(prefix)?.strip_suffix(suffix)
}

/// `timeout_epilog`'s messages (check_http.c), as lvslab's reasons. `HttpStatus(0)`: the
/// status is not in the line.
fn http_reason(why: &str) -> Option<FailReason> {
    Some(match why.trim_end() {
        "Timeout connecting" => FailReason::ConnectTimeout,
        "Connection failed" | "HTTP_CHECK - network unreachable" => FailReason::ConnectRefused,
        "Error connecting" | "Cannot send get request to" | "Timeout WEB write" => FailReason::ConnectError,
        "Read, no data received from" => FailReason::NoData,
        "HTTP status code error to" => FailReason::HttpStatus(0),
        "MD5 digest error to" => FailReason::Digest,
        "Timeout HTTP read" | "Timeout WEB read" => FailReason::ReadTimeout,
        "Read error with" => FailReason::NoData,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], 80))
    }

    fn server(last: u8, inhibit: bool) -> PoolServer {
        PoolServer {
            trio: format!("[192.0.2.{last}]:tcp:80"),
            addr: addr(last),
            weight: 1,
            inhibit,
            checked: true,
            log_all_failures: false,
        }
    }

    const VS: &str = "[192.0.2.100]:tcp:80";

    fn pool(inhibit: bool, sorry: bool) -> Pool {
        Pool {
            vs: VS.into(),
            servers: vec![server(11, inhibit), server(12, inhibit), server(13, inhibit)],
            sorry: sorry.then(|| ("[192.0.2.14]:tcp:80".to_string(), addr(14), 1)),
            alpha: HashSet::new(),
        }
    }

    fn feed(log: &mut CheckerLog, lines: &[(u64, &str)]) {
        for (ms, line) in lines {
            log.read(Duration::from_millis(*ms), line);
        }
    }

    fn table_ops(log: &CheckerLog) -> Vec<(u64, SocketAddr, bool, TableOp)> {
        log.records
            .iter()
            .filter_map(|r| match r.event {
                HealthEvent::Table(a) => Some((r.at.as_millis() as u64, a.dest, a.sorry, a.op)),
                _ => None,
            })
            .collect()
    }

    fn lines(log: &CheckerLog) -> Vec<String> {
        log.records
            .iter()
            .filter_map(|r| match &r.event {
                HealthEvent::Log(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    /// keepalived 2.2.7's lines for dr-health-check (rs3 refuses), as its source writes them.
    #[test]
    fn a_refused_server_is_removed_with_its_reason_and_first_results_counted() {
        let mut log = CheckerLog::new(pool(false, false));
        feed(
            &mut log,
            &[
                (0, "Starting Healthcheck child process, pid=4242"),
                (1, "Initializing ipvs"),
                (
                    2,
                    "Activating healthchecker for service [192.0.2.11]:tcp:80 for VS [192.0.2.100]:tcp:80",
                ),
                (
                    2,
                    "Activating healthchecker for service [192.0.2.12]:tcp:80 for VS [192.0.2.100]:tcp:80",
                ),
                (
                    2,
                    "Activating healthchecker for service [192.0.2.13]:tcp:80 for VS [192.0.2.100]:tcp:80",
                ),
                (1300, "TCP connection to [192.0.2.11]:tcp:80 success."),
                (1500, "TCP connection to [192.0.2.13]:tcp:80 failed."),
                (1500, "TCP_CHECK on service [192.0.2.13]:tcp:80 failed."),
                (
                    1501,
                    "Removing service [192.0.2.13]:tcp:80 from VS [192.0.2.100]:tcp:80",
                ),
                (1502, "notify_fifo: RS [192.0.2.13]:tcp:80 [192.0.2.100]:tcp:80 DOWN"),
            ],
        );
        assert_eq!(log.ran_once.len(), 2);
        assert!(!lines(&log)
            .iter()
            .any(|l| l.starts_with("Starting") || l == "Initializing ipvs"));
        feed(&mut log, &[(1900, "TCP connection to [192.0.2.12]:tcp:80 success.")]);
        assert_eq!(log.ran_once.len(), log.checker_count());
        assert_eq!(table_ops(&log), vec![(1501, addr(13), false, TableOp::Remove)]);
        assert_eq!(
            log.failures,
            vec![(Duration::from_millis(1500), addr(13), FailReason::ConnectRefused)]
        );
        // The per-attempt line was lvslab's asking (log_all_failures), not the scenario's.
        let l = lines(&log);
        assert!(
            !l.iter().any(|l| l == "TCP connection to [192.0.2.13]:tcp:80 failed."),
            "{l:?}"
        );
        assert_eq!(
            l[0],
            "Activating healthchecker for service [192.0.2.11]:tcp:80 for VS [192.0.2.100]:tcp:80"
        );
        assert!(log.records.iter().any(|r| matches!(
            &r.event,
            HealthEvent::RealServer { rs, up: false, .. } if *rs == addr(13)
        )));
        assert_eq!(log.table().len(), 2);
    }

    #[test]
    fn a_server_that_returns_is_added_back_at_its_weight() {
        let mut p = pool(false, false);
        p.servers[1].weight = 3;
        let mut log = CheckerLog::new(p);
        feed(
            &mut log,
            &[
                (
                    2,
                    "Activating healthchecker for service [192.0.2.12]:tcp:80 for VS [192.0.2.100]:tcp:80",
                ),
                (1000, "TCP connection to [192.0.2.12]:tcp:80 timeout."),
                (2000, "TCP_CHECK on service [192.0.2.12]:tcp:80 failed after 1 retries."),
                (
                    2000,
                    "Removing service [192.0.2.12]:tcp:80 from VS [192.0.2.100]:tcp:80",
                ),
                (4000, "TCP connection to [192.0.2.12]:tcp:80 success."),
                (4000, "Adding service [192.0.2.12]:tcp:80 to VS [192.0.2.100]:tcp:80"),
            ],
        );
        assert_eq!(
            table_ops(&log),
            vec![
                (2000, addr(12), false, TableOp::Remove),
                (4000, addr(12), false, TableOp::Add { weight: 3 })
            ]
        );
        assert_eq!(log.failures[0].2, FailReason::ConnectTimeout);
    }

    #[test]
    fn inhibit_on_failure_is_weight_zero_and_http_status_is_filled_in() {
        let mut log = CheckerLog::new(pool(true, false));
        let asks: Vec<Ask> = [
            "Activating healthchecker for service [192.0.2.12]:tcp:80 for VS [192.0.2.100]:tcp:80",
            "HTTP status code error to server [192.0.2.12]:tcp:80.",
            "HTTP status code error to server [192.0.2.12]:tcp:80.",
            "HTTP_CHECK on service [192.0.2.12]:tcp:80 failed after 1 retries.",
            "Disabling service [192.0.2.12]:tcp:80 of VS [192.0.2.100]:tcp:80",
        ]
        .iter()
        .enumerate()
        .map(|(i, l)| log.read(Duration::from_millis(i as u64 * 500), l))
        .collect();
        assert_eq!(asks[1], Ask::HttpStatus(addr(12)));
        assert_eq!(log.failures[0].2, FailReason::HttpStatus(0));
        log.http_status(addr(12), 500);
        assert_eq!(log.failures[0].2, FailReason::HttpStatus(500));
        feed(
            &mut log,
            &[
                (4000, "HTTP status code success to [192.0.2.12]:tcp:80 url(/health)"),
                (5000, "Remote Web server [192.0.2.12]:tcp:80 succeed on service."),
                (5000, "Enabling service [192.0.2.12]:tcp:80 of VS [192.0.2.100]:tcp:80"),
            ],
        );
        assert_eq!(
            table_ops(&log),
            vec![
                (2000, addr(12), false, TableOp::SetWeight { weight: 0 }),
                (5000, addr(12), false, TableOp::SetWeight { weight: 1 })
            ]
        );
        assert!(lines(&log).contains(&"HTTP status code success to [192.0.2.12]:tcp:80 url(/health)".to_string()));
    }

    /// dr-quorum-sorry's sequence: quorum 2 over three servers, then the sorry server.
    #[test]
    fn quorum_loss_swaps_in_the_sorry_server_and_back() {
        let mut log = CheckerLog::new(pool(false, true));
        feed(
            &mut log,
            &[
                (
                    0,
                    "Activating healthchecker for service [192.0.2.11]:tcp:80 for VS [192.0.2.100]:tcp:80",
                ),
                (1000, "TCP_CHECK on service [192.0.2.11]:tcp:80 failed."),
                (
                    1000,
                    "Removing service [192.0.2.11]:tcp:80 from VS [192.0.2.100]:tcp:80",
                ),
                (2000, "TCP_CHECK on service [192.0.2.12]:tcp:80 failed."),
                (
                    2000,
                    "Removing service [192.0.2.12]:tcp:80 from VS [192.0.2.100]:tcp:80",
                ),
                (2000, "Lost quorum 2-0=2 > 1 for VS [192.0.2.100]:tcp:80"),
                (
                    2000,
                    "Adding sorry server [192.0.2.14]:tcp:80 to VS [192.0.2.100]:tcp:80",
                ),
                (2000, "Removing alive servers from the pool for VS [192.0.2.100]:tcp:80"),
                (2000, "notify_fifo: VS [192.0.2.100]:tcp:80 DOWN"),
                // While the sorry server stands in, a returning server changes nothing in IPVS.
                (3000, "TCP connection to [192.0.2.12]:tcp:80 success."),
                (3000, "Adding service [192.0.2.12]:tcp:80 to VS [192.0.2.100]:tcp:80"),
                (3000, "Gained quorum 2+0=2 <= 2 for VS [192.0.2.100]:tcp:80"),
                (
                    3000,
                    "Removing sorry server [192.0.2.14]:tcp:80 from VS [192.0.2.100]:tcp:80",
                ),
                (3000, "Adding alive servers to the pool for VS [192.0.2.100]:tcp:80"),
            ],
        );
        assert_eq!(
            table_ops(&log),
            vec![
                (1000, addr(11), false, TableOp::Remove),
                (2000, addr(12), false, TableOp::Remove),
                (2000, addr(14), true, TableOp::Add { weight: 1 }),
                (2000, addr(13), false, TableOp::Remove),
                (3000, addr(14), true, TableOp::Remove),
                (3000, addr(12), false, TableOp::Add { weight: 1 }),
                (3000, addr(13), false, TableOp::Add { weight: 1 }),
            ]
        );
        assert!(log
            .records
            .iter()
            .any(|r| matches!(r.event, HealthEvent::Quorum { up: false, .. })));
    }

    #[test]
    fn misc_checks_give_their_exit_status() {
        let mut log = CheckerLog::new(pool(false, false));
        feed(
            &mut log,
            &[
                (0, "Activating healthchecker for service [192.0.2.11]:tcp:80 for VS [192.0.2.100]:tcp:80"),
                (
                    1000,
                    "Misc check for [[192.0.2.11]:tcp:80 VS [192.0.2.100]:tcp:80] by [/bin/sh] failed with retry disabled (exited with status 3).",
                ),
                (1000, "Removing service [192.0.2.11]:tcp:80 from VS [192.0.2.100]:tcp:80"),
            ],
        );
        assert_eq!(log.failures[0].2, FailReason::MiscExit(3));
        assert!(log.ran_once.contains(&addr(11)));
    }

    #[test]
    fn warnings_and_ipvs_trouble_are_problems_and_shutdown_is_not_a_decision() {
        let mut log = CheckerLog::new(pool(false, false));
        feed(
            &mut log,
            &[
                (0, "Warning - quorum 5 for [192.0.2.100]:tcp:80 exceeds total weight of real servers 3, reducing quorum to 3"),
                (0, "Activating healthchecker for service [192.0.2.11]:tcp:80 for VS [192.0.2.100]:tcp:80"),
                (9000, "Shutting down service [192.0.2.11]:tcp:80 from VS [192.0.2.100]:tcp:80"),
            ],
        );
        assert_eq!(log.problems.len(), 1);
        assert!(table_ops(&log).is_empty());
    }

    /// Two virtual servers on one VIP, 80 and 443, with the same real servers: each reader
    /// takes its own virtual server's lines, and a server out of one stays in the other.
    #[test]
    fn each_virtual_server_reads_its_own_lines() {
        let tls = |last: u8| SocketAddr::from(([192, 0, 2, last], 443));
        let mut web = CheckerLog::new(pool(false, false));
        let mut https = CheckerLog::new(Pool {
            vs: "[192.0.2.100]:tcp:443".into(),
            servers: [11, 12, 13]
                .into_iter()
                .map(|last| PoolServer {
                    trio: format!("[192.0.2.{last}]:tcp:443"),
                    addr: tls(last),
                    ..server(last, false)
                })
                .collect(),
            sorry: None,
            alpha: HashSet::new(),
        });
        let lines: &[(u64, &str)] = &[
            (1300, "TCP connection to [192.0.2.12]:tcp:443 success."),
            (1400, "MD5 digest error to server [192.0.2.12]:tcp:80."),
            (1400, "HTTP_CHECK on service [192.0.2.12]:tcp:80 failed after 1 retry."),
            (
                1401,
                "Removing service [192.0.2.12]:tcp:80 from VS [192.0.2.100]:tcp:80",
            ),
            (1402, "notify_fifo: RS [192.0.2.12]:tcp:80 [192.0.2.100]:tcp:80 DOWN"),
            (1500, "Lost quorum 1-0=1 > 0 for VS [192.0.2.100]:tcp:443"),
        ];
        feed(&mut web, lines);
        feed(&mut https, lines);
        assert_eq!(table_ops(&web), vec![(1401, addr(12), false, TableOp::Remove)]);
        assert!(table_ops(&https).is_empty());
        assert_eq!(https.table().len(), 3, "rs2 stays in 443");
        assert_eq!(
            web.failures,
            vec![(Duration::from_millis(1400), addr(12), FailReason::Digest)]
        );
        assert!(https.failures.is_empty());
        assert_eq!(https.ran_once.len(), 1);
        assert!(web.quorum_up, "443's quorum line is not 80's");
        assert!(!https.quorum_up);
        assert!(lines_of(&web).iter().all(|l| !l.contains(":443")));
        assert!(lines_of(&https).iter().all(|l| !l.contains(":tcp:80")));
        assert!(!https
            .records
            .iter()
            .any(|r| matches!(r.event, HealthEvent::RealServer { .. })));
    }

    /// A fwmark virtual server (`virtual_server fwmark 1`): keepalived names it `FWM 1` and
    /// its real servers without protocol or port (`FMT_VS`, `FMT_RS` with service_type 0).
    #[test]
    fn a_fwmark_virtual_server_is_read_by_its_mark() {
        let dest = |last: u8| SocketAddr::from(([192, 0, 2, last], 0));
        let fwm = |mark: u32| Pool {
            vs: format!("FWM {mark}"),
            servers: [11, 12]
                .into_iter()
                .map(|last| PoolServer {
                    trio: format!("[192.0.2.{last}]:none:0"),
                    addr: dest(last),
                    ..server(last, false)
                })
                .collect(),
            sorry: None,
            alpha: HashSet::new(),
        };
        let mut one = CheckerLog::new(fwm(1));
        let mut ten = CheckerLog::new(fwm(10));
        let lines: &[(u64, &str)] = &[
            (
                0,
                "Activating healthchecker for service [192.0.2.12]:none:0 for VS FWM 1",
            ),
            (900, "TCP connection to [192.0.2.12]:none:0 success."),
            (1900, "TCP_CHECK on service [192.0.2.12]:none:0 failed."),
            (1900, "Removing service [192.0.2.12]:none:0 from VS FWM 1"),
            (1901, "notify_fifo: RS [192.0.2.12]:none:0 FWM 1 DOWN"),
        ];
        feed(&mut one, lines);
        feed(&mut ten, lines);
        assert_eq!(table_ops(&one), vec![(1900, dest(12), false, TableOp::Remove)]);
        assert!(one.records.iter().any(|r| matches!(
            &r.event,
            HealthEvent::RealServer { rs, up: false, .. } if *rs == dest(12)
        )));
        assert_eq!(one.failures.len(), 1);
        // FWM 1's table lines are not FWM 10's.
        assert!(table_ops(&ten).is_empty());
        assert!(!ten
            .records
            .iter()
            .any(|r| matches!(r.event, HealthEvent::RealServer { .. })));
    }

    /// A server removed before keepalived stopped is in again when it starts (init_services),
    /// until the new run's checker takes it out once more; the new run's lines are read as
    /// the first run's were.
    #[test]
    fn a_restarted_keepalived_starts_from_a_full_table() {
        let mut log = CheckerLog::new(pool(false, false));
        feed(
            &mut log,
            &[
                (1000, "TCP_CHECK on service [192.0.2.13]:tcp:80 failed."),
                (
                    1000,
                    "Removing service [192.0.2.13]:tcp:80 from VS [192.0.2.100]:tcp:80",
                ),
                (
                    2000,
                    "Shutting down service [192.0.2.11]:tcp:80 from VS [192.0.2.100]:tcp:80",
                ),
            ],
        );
        assert_eq!(log.table().len(), 2);
        log.restarted(Duration::from_millis(3000));
        assert_eq!(log.table().len(), 3);
        feed(
            &mut log,
            &[
                (
                    3000,
                    "Activating healthchecker for service [192.0.2.12]:tcp:80 for VS [192.0.2.100]:tcp:80",
                ),
                (4500, "TCP_CHECK on service [192.0.2.12]:tcp:80 failed."),
                (
                    4500,
                    "Removing service [192.0.2.12]:tcp:80 from VS [192.0.2.100]:tcp:80",
                ),
                (4800, "TCP_CHECK on service [192.0.2.13]:tcp:80 failed."),
                (
                    4800,
                    "Removing service [192.0.2.13]:tcp:80 from VS [192.0.2.100]:tcp:80",
                ),
            ],
        );
        assert_eq!(
            table_ops(&log),
            vec![
                (1000, addr(13), false, TableOp::Remove),
                (3000, addr(13), false, TableOp::Add { weight: 1 }),
                (4500, addr(12), false, TableOp::Remove),
                (4800, addr(13), false, TableOp::Remove),
            ]
        );
        assert_eq!(log.table().keys().copied().collect::<Vec<_>>(), vec![addr(11)]);
        assert_eq!(log.failures.len(), 3);
    }

    fn lines_of(log: &CheckerLog) -> Vec<String> {
        lines(log)
    }

    #[test]
    fn a_trio_is_named_whole() {
        assert!(names_trio(
            "Removing service [1.2.3.4]:tcp:80 from VS x",
            "[1.2.3.4]:tcp:80"
        ));
        assert!(!names_trio(
            "Removing service [1.2.3.4]:tcp:8080 from VS x",
            "[1.2.3.4]:tcp:80"
        ));
        assert!(names_trio("TCP connection to [1.2.3.4]:tcp:80.", "[1.2.3.4]:tcp:80"));
    }
}
