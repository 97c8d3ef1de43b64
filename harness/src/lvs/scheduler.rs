//! IPVS schedulers by their kernel names (`ip_vs_<name>.c`, `ipvsadm -s <name>`).
//!
//! [`SCHEDULERS`] is the one registry: each row names a scheduler and the facts lvslab
//! needs of it. The enum, its spellings and the name list all follow from it, as the
//! kernel's registered list is the only list of schedulers it has (`ip_vs_sched.c`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::UnknownWord;

/// What lvslab needs to know of one scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerInfo {
    pub scheduler: Scheduler,
    /// The kernel's and ipvsadm's name: `rr`, `wrr`, ...
    pub name: &'static str,
    /// What ipvsadm calls the service flags `IP_VS_SVC_F_SCHED1` and `SCHED2` for this
    /// scheduler (`print_sched_flags`): only sh and mh give them meaning.
    pub flag_names: (&'static str, &'static str),
}

macro_rules! schedulers {
    ($($variant:ident = $name:literal $(, flags($one:literal, $two:literal))?;)+) => {
        /// An IPVS scheduler, named as the kernel names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Scheduler { $(#[serde(rename = $name)] $variant),+ }

        /// Every scheduler lvslab models, in `ipvsadm`'s documentation order.
        pub const SCHEDULERS: &[SchedulerInfo] = &[$(SchedulerInfo {
            scheduler: Scheduler::$variant,
            name: $name,
            flag_names: schedulers!(@flags $($one, $two)?),
        }),+];

        impl Scheduler {
            /// Every scheduler, in the order of [`SCHEDULERS`].
            pub const ALL: &'static [Scheduler] = &[$(Scheduler::$variant),+];
        }
    };
    (@flags $one:literal, $two:literal) => { ($one, $two) };
    (@flags) => { ("flag-1", "flag-2") };
}

schedulers! {
    Rr = "rr";
    Wrr = "wrr";
    Lc = "lc";
    Wlc = "wlc";
    Sed = "sed";
    Nq = "nq";
    Fo = "fo";
    Ovf = "ovf";
    Twos = "twos";
    Sh = "sh", flags("sh-fallback", "sh-port");
    Dh = "dh";
    Mh = "mh", flags("mh-fallback", "mh-port");
    Lblc = "lblc";
    Lblcr = "lblcr";
}

impl Scheduler {
    /// What a value names, for messages.
    pub const WHAT: &'static str = "scheduler";

    /// Its row of the registry (the macro writes rows in variant order).
    pub fn info(self) -> &'static SchedulerInfo {
        &SCHEDULERS[self as usize]
    }

    /// The kernel's name.
    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    /// Every name, in registry order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        SCHEDULERS.iter().map(|s| s.name)
    }
}

super::word::words!(
    /// A scheduler flag (`ipvsadm -b`): the service's `IP_VS_SVC_F_SCHED1` (`*-fallback`) or
    /// `SCHED2` (`*-port`) bit under the name the scheduler gives it.
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

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheduler {
    type Err = UnknownWord;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        SCHEDULERS
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.scheduler)
            .ok_or_else(|| UnknownWord {
                what: Scheduler::WHAT,
                word: name.to_owned(),
                known: Scheduler::names().collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_rows_follow_the_variants_and_names_read_back() {
        for (i, row) in SCHEDULERS.iter().enumerate() {
            assert_eq!(row.scheduler as usize, i);
            assert_eq!(row.name.parse::<Scheduler>(), Ok(row.scheduler));
            assert_eq!(
                serde_json::to_string(&row.scheduler).unwrap(),
                format!("\"{}\"", row.name)
            );
        }
        assert_eq!(Scheduler::Sh.info().flag_names, ("sh-fallback", "sh-port"));
        assert_eq!(Scheduler::Rr.info().flag_names, ("flag-1", "flag-2"));
        for &flag in SchedFlag::ALL {
            let names = flag.scheduler().info().flag_names;
            assert!([names.0, names.1].contains(&flag.as_str()), "{flag}");
        }
        let err = "wrr2".parse::<Scheduler>().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown scheduler `wrr2` (known: rr, wrr, lc,"),
            "{err}"
        );
    }
}
