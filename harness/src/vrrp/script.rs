//! A `vrrp_script`'s rise/fall counter: which runs flip it between ok and
//! failed (vrrp/vrrp_scheduler.c `vrrp_script_child_thread`, `vrrp_init_script`).
//! A flip is what the caller reports to [`super::Instance::on_track`].
//!
//! keepalived keeps one `result` in 0..rise+fall: ok once it reaches `rise`,
//! and from the top (rise+fall−1) it takes `fall` failures to drop to failed.

use std::time::Duration;

/// How one run of the script ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptRun {
    Exit(i32),
    /// Killed after `timeout`.
    TimedOut,
    Signal(i32),
}

/// A `vrrp_script` block's counting state.
#[derive(Clone, Debug)]
pub struct VrrpScript {
    pub name: String,
    /// `interval` (default 1 s): runs start this far apart.
    pub interval: Duration,
    rise: u32,
    fall: u32,
    result: u32,
    /// Before the first result keepalived counts the script neither ok nor failed.
    initial: bool,
    last_status: i32,
}

/// What one run changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptStep {
    /// keepalived's log lines for this run.
    pub logs: Vec<String>,
    /// `Some(ok)` when the tracked state flips (`update_script_priorities`).
    pub flip: Option<bool>,
}

impl VrrpScript {
    /// `rise`/`fall` default to 1; `init_fail` starts the script as failed instead of unknown.
    pub fn new(name: &str, interval: Duration, rise: u32, fall: u32, init_fail: bool) -> VrrpScript {
        let (rise, fall) = (rise.max(1), fall.max(1));
        // "one success is enough" from the init state; init_fail: "assume failed by config".
        let result = if init_fail { 0 } else { rise - 1 };
        VrrpScript {
            name: name.to_string(),
            interval,
            rise,
            fall,
            result,
            initial: !init_fail,
            last_status: 0,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.result >= self.rise
    }

    /// Counts one finished run.
    pub fn record(&mut self, run: ScriptRun) -> ScriptStep {
        let mut step = ScriptStep::default();
        let name = self.name.clone();
        let (success, exit_type, reason) = match run {
            ScriptRun::Exit(status) => {
                if status != self.last_status {
                    step.logs.push(format!("Script `{name}` now returning {status}"));
                }
                self.last_status = status;
                if status == 0 {
                    (true, "succeeded", None)
                } else {
                    (false, "failed", Some(("exited with status", status)))
                }
            }
            // keepalived's own spelling, with the underscore.
            ScriptRun::TimedOut => (false, "timed_out", None),
            ScriptRun::Signal(sig) => (false, "failed", Some(("due to signal", sig))),
        };
        let top = self.rise + self.fall - 1;
        if success {
            if self.result < self.rise - 1 {
                self.result += 1;
            } else if self.result != top {
                if self.result < self.rise {
                    step.logs.push(format!("VRRP_Script({name}) {exit_type}"));
                    step.flip = Some(true);
                }
                self.result = top;
            }
        } else if self.result > self.rise {
            self.result -= 1;
        } else {
            if self.result == self.rise || self.initial {
                step.logs.push(match reason {
                    Some((text, code)) => format!("VRRP_Script({name}) {exit_type} ({text} {code})"),
                    None => format!("VRRP_Script({name}) {exit_type}"),
                });
                step.flip = Some(false);
            }
            self.result = 0;
        }
        self.initial = false;
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fall_two_fails_on_the_second_failed_run_as_in_exp_7() {
        let mut chk = VrrpScript::new("chk", Duration::from_secs(1), 1, 2, false);
        let first = chk.record(ScriptRun::Exit(0));
        assert_eq!(
            first,
            ScriptStep {
                logs: vec!["VRRP_Script(chk) succeeded".into()],
                flip: Some(true)
            }
        );
        assert_eq!(chk.record(ScriptRun::Exit(0)), ScriptStep::default());
        let one = chk.record(ScriptRun::Exit(1));
        assert_eq!(
            one,
            ScriptStep {
                logs: vec!["Script `chk` now returning 1".into()],
                flip: None
            }
        );
        let two = chk.record(ScriptRun::Exit(1));
        assert_eq!(
            two,
            ScriptStep {
                logs: vec!["VRRP_Script(chk) failed (exited with status 1)".into()],
                flip: Some(false)
            }
        );
        assert!(!chk.is_ok());
        // Further failures say nothing; rise 1: one success flips it back.
        assert_eq!(chk.record(ScriptRun::TimedOut), ScriptStep::default());
        let back = chk.record(ScriptRun::Exit(0));
        assert_eq!(back.flip, Some(true));
        assert_eq!(
            back.logs,
            vec![
                "Script `chk` now returning 0".to_string(),
                "VRRP_Script(chk) succeeded".to_string()
            ]
        );
    }

    #[test]
    fn rise_needs_consecutive_successes_and_a_first_failure_counts_at_once() {
        let mut chk = VrrpScript::new("chk", Duration::from_secs(2), 3, 1, false);
        // The first result decides, whatever rise and fall say.
        assert_eq!(
            chk.record(ScriptRun::Signal(9)).logs,
            vec!["VRRP_Script(chk) failed (due to signal 9)".to_string()]
        );
        let flips: Vec<Option<bool>> = (0..3).map(|_| chk.record(ScriptRun::Exit(0)).flip).collect();
        assert_eq!(flips, vec![None, None, Some(true)]);
        let mut init_fail = VrrpScript::new("chk", Duration::from_secs(1), 2, 1, true);
        assert!(!init_fail.is_ok());
        assert_eq!(init_fail.record(ScriptRun::Exit(0)).flip, None);
        assert_eq!(init_fail.record(ScriptRun::Exit(0)).flip, Some(true));
    }
}
