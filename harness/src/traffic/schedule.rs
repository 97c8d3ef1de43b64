//! When each request is sent: back to back, or at a steady rate computed from the start
//! (request `seq` is due at `start + offset + seq × interval`), so pacing never drifts however
//! late one request went out. Also the shared count of requests sent, which events follow.

use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A steady rate: one request every `interval`, the first `offset` after the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub interval: Duration,
    pub offset: Duration,
}

impl Pacing {
    /// `rate` requests per second over all `clients` together: client `index` takes every
    /// `clients`-th slot, so their requests interleave at the total rate.
    pub fn share_of(rate: f64, clients: u32, index: u32) -> Pacing {
        let slot = Duration::from_secs_f64(1.0 / rate.max(f64::MIN_POSITIVE));
        Pacing {
            interval: slot * clients.max(1),
            offset: slot * index,
        }
    }

    /// When request `seq` is due, since the start.
    pub fn due(&self, seq: u32) -> Duration {
        self.offset + self.interval * seq
    }
}

/// How one client's requests are spread in time, and who hears of them.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Traffic start: send times are measured from it (shared by every client of a run).
    pub start: Instant,
    /// `None`: back to back, as fast as the workers go.
    pub pacing: Option<Pacing>,
    /// No request is sent later than this after the start.
    pub stop_after: Option<Duration>,
    /// Requests sent so far, over every client sharing the sender.
    pub sent: Option<watch::Sender<u64>>,
}

impl Schedule {
    pub fn back_to_back() -> Schedule {
        Schedule {
            start: Instant::now(),
            pacing: None,
            stop_after: None,
            sent: None,
        }
    }

    /// When request `seq` may go: `None` = at once.
    pub fn due(&self, seq: u32) -> Option<Instant> {
        self.pacing.map(|p| self.start + p.due(seq))
    }

    /// Whether a request due at `due` (or now, for back to back) is past the run's end.
    pub fn past_end(&self, due: Instant) -> bool {
        self.stop_after
            .is_some_and(|limit| due.saturating_duration_since(self.start) >= limit)
    }

    pub(super) fn count_sent(&self) {
        if let Some(sent) = &self.sent {
            sent.send_modify(|n| *n += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_is_due_every_interval_from_the_start() {
        let p = Pacing::share_of(100.0, 1, 0);
        assert_eq!(p.due(0), Duration::ZERO);
        assert_eq!(p.due(1), Duration::from_millis(10));
        // No accumulated error: the millionth slot is exactly where it belongs.
        assert_eq!(p.due(1_000_000), Duration::from_secs(10_000));
    }

    #[test]
    fn clients_interleave_at_the_total_rate() {
        let rate = 50.0; // one slot per 20 ms over three clients
        let mut due: Vec<Duration> = (0..3)
            .flat_map(|client| {
                let p = Pacing::share_of(rate, 3, client);
                (0..4).map(move |seq| p.due(seq))
            })
            .collect();
        due.sort();
        let expected: Vec<Duration> = (0..12).map(|slot| Duration::from_millis(20) * slot).collect();
        assert_eq!(due, expected);
    }

    #[test]
    fn the_end_bounds_due_times_not_back_to_back_requests_before_it() {
        let start = Instant::now();
        let schedule = Schedule {
            start,
            pacing: Some(Pacing::share_of(10.0, 1, 0)),
            stop_after: Some(Duration::from_millis(250)),
            sent: None,
        };
        let sendable: Vec<u32> = (0..10)
            .filter(|&s| !schedule.past_end(schedule.due(s).unwrap()))
            .collect();
        assert_eq!(sendable, vec![0, 1, 2]);
        assert!(!Schedule::back_to_back().past_end(Instant::now()));
    }
}
