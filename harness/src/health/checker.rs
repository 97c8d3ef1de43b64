//! One checker's retry state machine: what a finished attempt means and when
//! the next one starts. Each kind follows its own epilog in keepalived 2.2.7,
//! and they differ:
//! * TCP_CHECK (`tcp_epilog`, check_tcp.c): the next attempt is scheduled from
//!   the *end* of this one; the retry counter also runs while the checker is
//!   down, so a down checker alternates delay_before_retry and delay_loop.
//! * HTTP_GET (`epilog`/`timeout_epilog`, check_http.c): one URL per cycle; a
//!   down checker retries its failed URL every max(delay_before_retry,
//!   delay_loop) and, once it answers, needs one more clean pass over all URLs.
//! * MISC_CHECK (`misc_check_child_thread`, check_misc.c): scheduled from the
//!   *start* of the last run; no retries while down.

use std::time::Duration;

use super::settings::{CheckerKind, CheckerSettings};
use super::{CheckOutcome, FailReason, HealthEvent};

/// The `checker_t` fields the state machine reads and `update_svr_checker_state` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckerState {
    pub is_up: bool,
    pub has_run: bool,
    pub retry_it: u32,
}

/// What a checker may do to its real server (check/ipwrapper.c).
pub(crate) trait ServerHost {
    /// `update_svr_checker_state`: the checker goes up (`true`) or down.
    fn update_state(&mut self, state: &mut CheckerState, alive: bool, out: &mut Vec<HealthEvent>);
    /// The server's configured weight (`rs->iweight`).
    fn initial_weight(&self) -> i64;
    fn effective_weight(&self) -> i64;
    /// `update_svr_wgt(.., true)`: logs, edits the table and re-evaluates quorum.
    fn change_weight(&mut self, weight: i64, out: &mut Vec<HealthEvent>);
    /// A bare `rs->effective_weight` assignment, as check_misc.c does on a failure.
    fn store_weight(&mut self, weight: i64);
}

pub(crate) struct Checker {
    pub kind: CheckerKind,
    pub settings: CheckerSettings,
    pub state: CheckerState,
    /// `FMT_CHK`: the real server's trio.
    rs_name: String,
    vs_name: String,
    /// HTTP: the URL the next attempt fetches (`url_it`) and the one that failed (`failed_url`).
    url_it: usize,
    failed_url: Option<usize>,
    /// MISC with misc_dynamic: the weight the last exit status added, and that status.
    cur_weight: i64,
    last_exit_code: u8,
}

impl Checker {
    pub fn new(kind: CheckerKind, settings: CheckerSettings, rs_name: String, vs_name: String) -> Checker {
        // validate_check_config: alpha starts failed; "one failure is enough initially" either way.
        let state = CheckerState {
            is_up: !settings.alpha,
            has_run: false,
            retry_it: settings.retry,
        };
        Checker {
            kind,
            settings,
            state,
            rs_name,
            vs_name,
            url_it: 0,
            failed_url: None,
            cur_weight: 0,
            last_exit_code: 0,
        }
    }

    /// The URL the next HTTP attempt must fetch.
    pub fn current_url(&self) -> usize {
        self.url_it
    }

    /// Handles a finished attempt; returns when the next one starts.
    pub fn complete(
        &mut self,
        outcome: &CheckOutcome,
        started: Duration,
        ended: Duration,
        out: &mut Vec<HealthEvent>,
        host: &mut dyn ServerHost,
    ) -> Duration {
        match self.kind {
            CheckerKind::Tcp => self.tcp_epilog(outcome, ended, out, host),
            CheckerKind::Http(_) => self.http_epilog(outcome, ended, out, host),
            CheckerKind::Misc(_) => self.misc_epilog(outcome, started, ended, out, host),
        }
    }

    fn log_all(&self) -> bool {
        self.settings.log_all_failures
    }

    fn tcp_epilog(
        &mut self,
        outcome: &CheckOutcome,
        ended: Duration,
        out: &mut Vec<HealthEvent>,
        host: &mut dyn ServerHost,
    ) -> Duration {
        let rs = &self.rs_name;
        let success = *outcome == CheckOutcome::Success;
        // tcp_check_thread: per-attempt lines only while up and with log_all_failures.
        if let CheckOutcome::Failure(reason) = outcome {
            if self.state.is_up && self.log_all() {
                let how = if *reason == FailReason::ConnectTimeout {
                    "timeout"
                } else {
                    "failed"
                };
                out.push(HealthEvent::Log(format!("TCP connection to {rs} {how}.")));
            }
        }
        let delay;
        if success || self.state.retry_it >= self.settings.retry {
            delay = self.settings.delay_loop;
            self.state.retry_it = 0;
            if success && (!self.state.is_up || !self.state.has_run) {
                out.push(HealthEvent::Log(format!("TCP connection to {rs} success.")));
                host.update_state(&mut self.state, true, out);
            } else if !success && (self.state.is_up || !self.state.has_run) {
                let line = if self.settings.retry > 0 && self.state.has_run {
                    format!(
                        "TCP_CHECK on service {rs} failed after {} retries.",
                        self.settings.retry
                    )
                } else {
                    format!("TCP_CHECK on service {rs} failed.")
                };
                out.push(HealthEvent::Log(line));
                host.update_state(&mut self.state, false, out);
            }
        } else {
            delay = self.settings.delay_before_retry;
            self.state.retry_it += 1;
        }
        self.state.has_run = true;
        ended + delay
    }

    fn http_epilog(
        &mut self,
        outcome: &CheckOutcome,
        ended: Duration,
        out: &mut Vec<HealthEvent>,
        host: &mut dyn ServerHost,
    ) -> Duration {
        let CheckOutcome::Failure(reason) = outcome else {
            return self.http_register(Method::New, ended, out, host);
        };
        // timeout_epilog: a known-dead server is not retried.
        if !self.state.is_up && self.state.has_run {
            return self.http_register(Method::Failed, ended, out, host);
        }
        if self.log_all() {
            out.push(HealthEvent::Log(format!(
                "{} server {}.",
                http_failure_text(*reason),
                self.rs_name
            )));
        }
        self.state.has_run = true;
        self.http_register(Method::Retry, ended, out, host)
    }

    fn http_register(
        &mut self,
        method: Method,
        ended: Duration,
        out: &mut Vec<HealthEvent>,
        host: &mut dyn ServerHost,
    ) -> Duration {
        let CheckerKind::Http(http) = &self.kind else {
            unreachable!("HTTP epilog on a non-HTTP checker")
        };
        let url_count = http.urls.len().max(1);
        let fast_recovery = http.fast_recovery;
        let mut end_of_pass = false;
        match method {
            Method::New => {
                end_of_pass = self.url_it + 1 >= url_count;
                self.url_it = if end_of_pass { 0 } else { self.url_it + 1 };
                self.state.retry_it = 0;
            }
            Method::Retry => self.state.retry_it += 1,
            Method::Failed => {}
        }
        if method == Method::New && end_of_pass && self.failed_url.is_none() {
            if !self.state.is_up || !self.state.has_run {
                out.push(HealthEvent::Log(format!(
                    "Remote Web server {} succeed on service.",
                    self.rs_name
                )));
                host.update_state(&mut self.state, true, out);
                self.state.has_run = true;
            }
            self.url_it = 0;
            self.state.retry_it = 0;
        } else if method == Method::Retry && self.state.retry_it > self.settings.retry {
            if self.state.is_up || !self.state.has_run {
                let line = if self.state.has_run && self.settings.retry > 0 {
                    format!(
                        "HTTP_CHECK on service {} failed after {} retries.",
                        self.rs_name,
                        self.state.retry_it - 1
                    )
                } else {
                    format!("HTTP_CHECK on service {} failed.", self.rs_name)
                };
                out.push(HealthEvent::Log(line));
                host.update_state(&mut self.state, false, out);
            }
            self.failed_url = Some(self.url_it);
        } else if method == Method::New && self.failed_url.is_some() {
            // The failed URL answered: check every URL again before going up.
            self.failed_url = None;
            self.url_it = 0;
            self.state.retry_it = 0;
        }
        let s = &self.settings;
        let delay = if method == Method::New {
            if !self.state.has_run {
                self.state.retry_it = s.retry;
            }
            s.delay_loop
        } else if self.failed_url.is_some() {
            s.delay_before_retry.max(s.delay_loop)
        } else {
            s.delay_before_retry
        };
        let recovering = !self.state.is_up && self.failed_url.is_none();
        if fast_recovery && (!self.state.has_run || recovering) {
            return ended;
        }
        ended + delay
    }

    fn misc_epilog(
        &mut self,
        outcome: &CheckOutcome,
        started: Duration,
        ended: Duration,
        out: &mut Vec<HealthEvent>,
        host: &mut dyn ServerHost,
    ) -> Duration {
        let CheckerKind::Misc(misc) = &self.kind else {
            unreachable!("MISC epilog on a non-MISC checker")
        };
        let script = misc.command.split_whitespace().next().unwrap_or("").to_string();
        let retry = self.settings.retry;
        let mut exit_type: Option<&str> = None;
        let mut reason: Option<(&str, i64)> = None;
        let mut success = false;
        let mut message_only = false;
        let exit_status = match outcome {
            CheckOutcome::Success => Some(0u8),
            CheckOutcome::Failure(FailReason::MiscExit(code)) => Some(*code),
            CheckOutcome::Failure(_) => None,
        };
        // misc_dynamic: exit 2..=255 is a success that sets the weight to status − 2.
        let ok_status = exit_status.filter(|&status| status == 0 || (misc.dynamic && status >= 2));
        if let Some(status) = ok_status {
            if status != self.last_exit_code {
                let mut weight = host.effective_weight() - self.cur_weight;
                self.cur_weight = if status == 0 {
                    0
                } else {
                    i64::from(status) - 2 - host.initial_weight()
                };
                weight += self.cur_weight;
                host.change_weight(weight, out);
                self.last_exit_code = status;
            }
            if !self.state.is_up || !self.state.has_run {
                exit_type = Some("succeeded");
                success = true;
            }
            self.state.retry_it = 0;
        } else if self.state.is_up || !self.state.has_run {
            let CheckOutcome::Failure(why) = outcome else {
                unreachable!("a success always has an ok status")
            };
            match why {
                FailReason::MiscTimeout => exit_type = Some("timed out"),
                FailReason::MiscSignal(sig) => {
                    exit_type = Some("failed");
                    reason = Some(("due to signal", i64::from(*sig)));
                }
                FailReason::MiscExit(code) => {
                    exit_type = Some("failed");
                    reason = Some(("exited with status", i64::from(*code)));
                }
                // A network reason for a command: keepalived only knows exit statuses.
                _ => {
                    exit_type = Some("failed");
                    reason = Some(("exited with status", 1));
                }
            }
            if self.state.retry_it < retry {
                self.state.retry_it += 1;
                if self.log_all() {
                    message_only = true;
                } else {
                    exit_type = None;
                }
            } else {
                self.state.retry_it = 0;
                if let Some(status) = exit_status {
                    // The dynamic part of the weight goes, without a log line or a table edit.
                    host.store_weight(host.effective_weight() - self.cur_weight);
                    self.cur_weight = 0;
                    self.last_exit_code = status;
                }
            }
        }
        if let Some(exit_type) = exit_type {
            let plural = |n: u32| if n == 1 { "retry" } else { "retries" };
            let message = if success {
                String::new()
            } else if retry == 0 {
                " with retry disabled".to_string()
            } else if self.state.retry_it == 1 {
                format!(", will do {retry} {}", plural(retry))
            } else if self.state.retry_it > 1 {
                format!(" on retry {}/{retry}", self.state.retry_it - 1)
            } else {
                format!(" after {retry} {}", plural(retry))
            };
            let mut line = format!(
                "Misc check for [{} VS {}] by [{script}] {exit_type}{message}",
                self.rs_name, self.vs_name
            );
            if let Some((text, code)) = reason {
                line.push_str(&format!(" ({text} {code})"));
            }
            line.push('.');
            out.push(HealthEvent::Log(line));
            if !message_only {
                host.update_state(&mut self.state, success, out);
                if !success {
                    self.cur_weight = 0;
                }
            }
        }
        self.state.has_run = true;
        let delay = if self.state.retry_it > 0 {
            self.settings.delay_before_retry
        } else {
            self.settings.delay_loop
        };
        // From the start of the run; a run longer than the delay starts the next one at once (1 µs).
        (started + delay).max(ended + Duration::from_micros(1))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// REGISTER_CHECKER_NEW: the URL answered as expected.
    New,
    /// REGISTER_CHECKER_RETRY: a failure while up (or before the first result).
    Retry,
    /// REGISTER_CHECKER_FAILED: a failure while already down.
    Failed,
}

/// The `debug_msg` each failure hands to `timeout_epilog` (check_http.c).
fn http_failure_text(reason: FailReason) -> &'static str {
    match reason {
        FailReason::ConnectTimeout => "Timeout connecting",
        FailReason::ConnectRefused => "Connection failed",
        FailReason::ConnectError => "Error connecting",
        // The source's text ends with a space, so the line has two.
        FailReason::NoData => "Read, no data received from ",
        FailReason::HttpStatus(_) => "HTTP status code error to",
        FailReason::Digest => "MD5 digest error to",
        FailReason::ReadTimeout => "Timeout HTTP read",
        FailReason::MiscExit(_) | FailReason::MiscTimeout | FailReason::MiscSignal(_) => "Read error with",
    }
}
