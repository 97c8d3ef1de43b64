//! Checker kinds and their timing settings, with keepalived's defaults.
//!
//! Defaults: `alloc_vs` (delay_loop 60 s, connect_timeout 5 s), `queue_checker`
//! (retry 1, delay_before_retry 1 s, check/check_api.c), overridden per kind by
//! `check_http.c` (delay_before_retry 3 s) and `check_misc.c` (retry 0). The
//! VS → RS → checker inheritance is `validate_check_config` (check/check_data.c):
//! an unset value takes the level above's, `warmup` falls back to the checker's
//! own delay_loop.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

/// What a checker probes. The probes themselves run elsewhere (the lab wires them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckerKind {
    /// TCP_CHECK: a connect within connect_timeout is a success.
    Tcp,
    /// HTTP_GET: one URL per cycle (`check_http.c` epilog).
    Http(HttpGet),
    /// MISC_CHECK: a command in the director's namespace; exit 0 is a success.
    Misc(MiscCheck),
}

impl CheckerKind {
    /// The name used in keepalived's transition lines ("TCP_CHECK on service ...").
    pub fn keyword(&self) -> &'static str {
        match self {
            CheckerKind::Tcp => "TCP_CHECK",
            CheckerKind::Http(_) => "HTTP_GET",
            CheckerKind::Misc(_) => "MISC_CHECK",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpGet {
    pub urls: Vec<Url>,
    /// `fast_recovery`: no delay before the next check while recovering.
    pub fast_recovery: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub path: String,
    /// Accepted status codes; empty means keepalived's default 200-299 (`check_http.c`).
    pub status_codes: Vec<RangeInclusive<u16>>,
    /// MD5 of the body, lower-case hex, as `genhash` prints it.
    pub digest: Option<String>,
}

impl Url {
    pub fn new(path: &str) -> Url {
        Url {
            path: path.to_string(),
            status_codes: Vec::new(),
            digest: None,
        }
    }

    pub fn accepts_status(&self, status: u16) -> bool {
        if self.status_codes.is_empty() {
            return (200..=299).contains(&status);
        }
        self.status_codes.iter().any(|range| range.contains(&status))
    }

    /// Judges a response the way `http_handle_response` does: no data, then status, then digest.
    pub fn judge(&self, response: Option<(u16, &str)>) -> super::CheckOutcome {
        use super::{CheckOutcome, FailReason};
        let Some((status, body_md5)) = response else {
            return CheckOutcome::Failure(FailReason::NoData);
        };
        if !self.accepts_status(status) {
            return CheckOutcome::Failure(FailReason::HttpStatus(status));
        }
        match &self.digest {
            Some(digest) if !digest.eq_ignore_ascii_case(body_md5) => CheckOutcome::Failure(FailReason::Digest),
            _ => CheckOutcome::Success,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiscCheck {
    /// `misc_path`: the command line, run through a shell by keepalived.
    pub command: String,
    /// `misc_timeout`; unset means the virtual server's delay_loop (`misc_check_thread`).
    pub timeout: Option<Duration>,
    /// `misc_dynamic`: exit 0 ok, 1 failed, 2..=255 ok with weight = status − 2.
    pub dynamic: bool,
}

/// Timing settings as written at one level (VS, RS or checker); `None` = not written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimingOverrides {
    pub delay_loop: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
}

/// The resolved settings one checker runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerSettings {
    pub delay_loop: Duration,
    pub connect_timeout: Duration,
    /// Extra attempts after a failure while the checker is up.
    pub retry: u32,
    pub delay_before_retry: Duration,
    /// Upper bound of the random delay before the first check; zero disables it.
    pub warmup: Duration,
    /// Start as failed: the server joins the pool only after a first success.
    pub alpha: bool,
    /// Log every failed attempt, not only the transition (`log_all_failures`).
    pub log_all_failures: bool,
    /// `connect_ip`/`connect_port`; `None` = the real server's own address.
    pub connect_to: Option<SocketAddr>,
}

/// keepalived's `KEEPALIVED_DEFAULT_DELAY` (include/check_data.h).
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// `alloc_vs`: `connection_to = 5 * TIMER_HZ`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl CheckerSettings {
    /// Resolves VS → RS → checker, each level overriding the one above, then the kind's defaults.
    pub fn resolve(
        kind: &CheckerKind,
        vs: &TimingOverrides,
        rs: &TimingOverrides,
        checker: &TimingOverrides,
    ) -> CheckerSettings {
        let pick = |f: fn(&TimingOverrides) -> Option<Duration>| f(checker).or(f(rs)).or(f(vs));
        let delay_loop = pick(|o| o.delay_loop).unwrap_or(DEFAULT_DELAY_LOOP);
        let (default_retry, default_delay_before_retry) = match kind {
            CheckerKind::Tcp => (1, Duration::from_secs(1)),
            CheckerKind::Http(_) => (1, Duration::from_secs(3)),
            CheckerKind::Misc(_) => (0, Duration::from_secs(1)),
        };
        CheckerSettings {
            delay_loop,
            connect_timeout: pick(|o| o.connect_timeout).unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            retry: checker.retry.or(rs.retry).or(vs.retry).unwrap_or(default_retry),
            delay_before_retry: pick(|o| o.delay_before_retry).unwrap_or(default_delay_before_retry),
            // warmup falls back to the checker's delay_loop, not the VS's default.
            warmup: pick(|o| o.warmup).unwrap_or(delay_loop),
            alpha: checker.alpha.or(rs.alpha).or(vs.alpha).unwrap_or(false),
            log_all_failures: checker
                .log_all_failures
                .or(rs.log_all_failures)
                .or(vs.log_all_failures)
                .unwrap_or(false),
            connect_to: None,
        }
    }

    /// keepalived's defaults for a checker written without any timing keyword.
    pub fn defaults(kind: &CheckerKind) -> CheckerSettings {
        let none = TimingOverrides::default();
        CheckerSettings::resolve(kind, &none, &none, &none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_per_kind() {
        let tcp = CheckerSettings::defaults(&CheckerKind::Tcp);
        assert_eq!(
            (tcp.delay_loop, tcp.connect_timeout, tcp.retry),
            (Duration::from_secs(60), Duration::from_secs(5), 1)
        );
        assert_eq!(
            (tcp.delay_before_retry, tcp.warmup),
            (Duration::from_secs(1), Duration::from_secs(60))
        );
        let http = CheckerSettings::defaults(&CheckerKind::Http(HttpGet {
            urls: vec![Url::new("/")],
            fast_recovery: false,
        }));
        assert_eq!((http.retry, http.delay_before_retry), (1, Duration::from_secs(3)));
        let misc = CheckerSettings::defaults(&CheckerKind::Misc(MiscCheck {
            command: "true".into(),
            timeout: None,
            dynamic: false,
        }));
        assert_eq!(misc.retry, 0);
    }

    #[test]
    fn inner_level_wins_and_warmup_follows_the_checkers_delay_loop() {
        let vs = TimingOverrides {
            delay_loop: Some(Duration::from_secs(6)),
            retry: Some(3),
            ..Default::default()
        };
        let rs = TimingOverrides {
            retry: Some(2),
            ..Default::default()
        };
        let checker = TimingOverrides {
            delay_loop: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let s = CheckerSettings::resolve(&CheckerKind::Tcp, &vs, &rs, &checker);
        assert_eq!(
            (s.delay_loop, s.retry, s.warmup),
            (Duration::from_secs(2), 2, Duration::from_secs(2))
        );
    }

    #[test]
    fn url_judgement_order() {
        let mut url = Url::new("/health");
        assert!(url.accepts_status(204) && !url.accepts_status(302));
        url.status_codes = vec![200..=200, 301..=302];
        url.digest = Some("9b3b9a4e5f6b4f0c8d7e6a5b4c3d2e1f".into());
        use crate::health::{CheckOutcome, FailReason};
        assert_eq!(url.judge(None), CheckOutcome::Failure(FailReason::NoData));
        assert_eq!(
            url.judge(Some((500, "x"))),
            CheckOutcome::Failure(FailReason::HttpStatus(500))
        );
        assert_eq!(url.judge(Some((302, "x"))), CheckOutcome::Failure(FailReason::Digest));
        assert_eq!(
            url.judge(Some((200, "9B3B9A4E5F6B4F0C8D7E6A5B4C3D2E1F"))),
            CheckOutcome::Success
        );
    }
}
