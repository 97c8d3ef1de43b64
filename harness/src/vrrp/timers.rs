//! VRRP timer arithmetic exactly as keepalived computes it, in microseconds
//! (`TIMER_HZ`), with its integer divisions (include/vrrp.h
//! `VRRP_TIMER_SKEW_CALC`, `VRRP_MS_DOWN_TIMER`), and the advert_int fix-ups
//! of `vrrp_complete_instance` (vrrp/vrrp.c).

use std::time::Duration;

/// VRRP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

const TIMER_HZ: u64 = 1_000_000;
const TIMER_CENTI_HZ: u64 = 10_000;

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `VRRP_TIMER_SKEW_CALC(svr, 256 - prio)`. v2: (256 − prio)/256 s, independent of the
/// interval; v3: (256 − prio) × interval / 256, computed as `× cs × 625 / 16` in µs.
pub fn skew_time(version: Version, priority: u8, master_adver_int: Duration) -> Duration {
    skew_calc(version, 256 - u64::from(priority), master_adver_int)
}

/// `VRRP_TIMER_SKEW_MIN`: the skew of priority 255 (one 256th).
pub fn skew_min(version: Version, master_adver_int: Duration) -> Duration {
    skew_calc(version, 1, master_adver_int)
}

fn skew_calc(version: Version, pri_val: u64, master_adver_int: Duration) -> Duration {
    let us = match version {
        Version::V3 => pri_val * (micros(master_adver_int) / TIMER_CENTI_HZ) * 625 / 16,
        Version::V2 => pri_val * TIMER_HZ / 256,
    };
    Duration::from_micros(us)
}

/// `VRRP_MS_DOWN_TIMER`: down_timer_adverts × Master_Adver_Interval + Skew_Time.
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_int: Duration,
    down_timer_adverts: u32,
) -> Duration {
    master_adver_int * down_timer_adverts + skew_time(version, priority, master_adver_int)
}

/// Rounds a configured advert_int the way `vrrp_complete_instance` does; returns the
/// interval used and keepalived's warning when it changed it.
pub fn normalise_advert_int(name: &str, version: Version, configured: Duration) -> (Duration, Option<String>) {
    let us = micros(configured);
    if us == 0 {
        return (Duration::from_secs(1), None);
    }
    let seconds = us as f64 / TIMER_HZ as f64;
    let (unit, max_units) = match version {
        Version::V2 => (TIMER_HZ, 1u64 << 8),
        Version::V3 => (TIMER_CENTI_HZ, 1u64 << 12),
    };
    if us >= max_units * unit {
        let fixed = (max_units - 1) * unit;
        let warning = match version {
            Version::V2 => format!(
                "({name}) VRRPv2 advertisement interval {seconds:.2}s is out of range. Must be less than {}s. Setting to {}s",
                max_units,
                max_units - 1
            ),
            Version::V3 => format!(
                "({name}) VRRPv3 advertisement interval {seconds:.2}s is out of range. Must be less than {:.2}s. Setting to {:.2}s",
                max_units as f64 / 100.0,
                (max_units - 1) as f64 / 100.0
            ),
        };
        return (Duration::from_micros(fixed), Some(warning));
    }
    if us.is_multiple_of(unit) {
        return (configured, None);
    }
    let rounded = ((us + unit / 2) - (us + unit / 2) % unit).max(unit);
    let warning = match version {
        Version::V2 => format!("({name}) VRRPv2 advertisement interval {seconds:.6}s must be an integer. rounding"),
        Version::V3 => {
            format!("({name}) VRRPv3 advertisement interval {seconds:.6}s must be in units of 10ms - rounding")
        }
    };
    (Duration::from_micros(rounded), Some(warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    #[test]
    fn worked_values_of_the_reference() {
        let one = Duration::from_secs(1);
        // §1.4: adv 1 s, v2.
        assert_eq!(
            master_down_interval(Version::V2, 100, one, 3),
            Duration::from_micros(3_609_375)
        );
        assert_eq!(
            master_down_interval(Version::V2, 150, one, 3),
            Duration::from_micros(3_414_062)
        );
        assert_eq!(
            master_down_interval(Version::V2, 200, one, 3),
            Duration::from_micros(3_218_750)
        );
        assert_eq!(
            master_down_interval(Version::V2, 254, one, 3),
            Duration::from_micros(3_007_812)
        );
        // v2 skew does not scale with the interval: adv 3, prio 100 -> 9.609 s.
        assert_eq!(
            master_down_interval(Version::V2, 100, Duration::from_secs(3), 3),
            Duration::from_micros(9_609_375)
        );
        // v3 adv 0.1 s: 0.361 s and 0.341 s; 156 × 10 × 625 / 16 truncates to 60937 µs.
        let tenth = Duration::from_millis(100);
        assert_eq!(skew_time(Version::V3, 100, tenth), Duration::from_micros(60_937));
        assert!((ms(master_down_interval(Version::V3, 100, tenth, 3)) - 360.937).abs() < 1e-9);
        assert!((ms(master_down_interval(Version::V3, 150, tenth, 3)) - 341.406).abs() < 1e-9);
        // Priority 0 adverts leave a backup with its skew: 0.609 s for prio 100 (EXP-2: 0.624 measured).
        assert_eq!(skew_time(Version::V2, 100, one), Duration::from_micros(609_375));
        assert_eq!(skew_min(Version::V2, one), Duration::from_micros(3_906));
    }

    #[test]
    fn advert_int_fixups() {
        let (v2, warning) = normalise_advert_int("VI_1", Version::V2, Duration::from_millis(500));
        assert_eq!(v2, Duration::from_secs(1));
        assert_eq!(
            warning.unwrap(),
            "(VI_1) VRRPv2 advertisement interval 0.500000s must be an integer. rounding"
        );
        let (v3, warning) = normalise_advert_int("VI_1", Version::V3, Duration::from_millis(123));
        assert_eq!(v3, Duration::from_millis(120));
        assert!(warning.unwrap().ends_with("must be in units of 10ms - rounding"));
        assert_eq!(
            normalise_advert_int("VI_1", Version::V3, Duration::from_millis(100)),
            (Duration::from_millis(100), None)
        );
        let (capped, warning) = normalise_advert_int("VI_1", Version::V2, Duration::from_secs(300));
        assert_eq!(capped, Duration::from_secs(255));
        assert_eq!(
            warning.unwrap(),
            "(VI_1) VRRPv2 advertisement interval 300.00s is out of range. Must be less than 256s. Setting to 255s"
        );
    }
}
