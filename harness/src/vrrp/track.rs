//! What tracked objects (track_interface, track_script) do to an instance:
//! an unweighted one puts it in FAULT while failed, a weighted one moves its
//! priority (vrrp/vrrp_track.c `process_script_update_priority`,
//! `initialise_track_script_state`, `vrrp_set_effective_priority`).

/// One `track_interface` / `track_script` entry of an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackConfig {
    pub name: String,
    /// 0: FAULT while failed. W > 0: +W while ok. W < 0: −|W| while failed.
    pub weight: i32,
    /// `reverse`: the sense of ok/failed is swapped.
    pub reverse: bool,
    /// The object's state when the instance starts. A script that has not run yet counts no
    /// weight in keepalived (`initialise_track_script_state`): pass
    /// `ok_at_start: weight < 0`, so that nothing is added until its first result flips it.
    pub ok_at_start: bool,
}

impl TrackConfig {
    pub fn new(name: &str, weight: i32) -> TrackConfig {
        TrackConfig {
            name: name.to_string(),
            weight,
            reverse: false,
            ok_at_start: true,
        }
    }

    /// Whether this track holds the instance in FAULT when the object is `ok`.
    pub fn faults(&self, ok: bool) -> bool {
        self.weight == 0 && ok == self.reverse
    }

    /// The priority this track adds (or removes) when the object is `ok`. keepalived adds
    /// `weight × multiplier` for a positive weight while ok, a negative one while failed,
    /// and moves by ±|weight| × multiplier on each change.
    pub fn contribution(&self, ok: bool) -> i64 {
        let multiplier = if self.reverse { -1 } else { 1 };
        let weight = i64::from(self.weight);
        multiplier * if ok { weight.max(0) } else { weight.min(0) }
    }
}

/// `vrrp_set_effective_priority`: tracking never makes a non-owner 255 nor drops below 1.
pub fn clamp_priority(total: i64) -> u8 {
    total.clamp(1, 254) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_move_priority_like_keepalived() {
        let down60 = TrackConfig::new("chk", -60);
        assert_eq!((down60.contribution(true), down60.contribution(false)), (0, -60));
        let up20 = TrackConfig::new("chk", 20);
        assert_eq!((up20.contribution(true), up20.contribution(false)), (20, 0));
        let reversed = TrackConfig {
            reverse: true,
            ..TrackConfig::new("chk", 20)
        };
        // A change moves by |W| × multiplier: ok→failed is +20 for a reversed +20.
        assert_eq!(reversed.contribution(false) - reversed.contribution(true), 20);
        assert!(TrackConfig::new("eth0", 0).faults(false));
        assert!(!TrackConfig::new("eth0", 0).faults(true));
        assert!(!down60.faults(false));
        assert_eq!(
            (clamp_priority(-5), clamp_priority(90), clamp_priority(300)),
            (1, 90, 254)
        );
    }
}
