//! What the VRRP nodes of a run did, in order, with when: keepalived's log lines and the
//! state transitions its notify FIFO reports, from lvslab's nodes and the real keepalived alike.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::vrrp::State;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// A line as keepalived logs it (`-D`), without its timestamp.
    Log(String),
    Transition {
        from: State,
        to: State,
        priority: u8,
    },
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub at: Instant,
    pub director: String,
    pub what: What,
}

/// Shared by every node of a run; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Journal(Arc<Mutex<Vec<Entry>>>);

impl Journal {
    pub fn add(&self, director: &str, what: What) {
        self.add_at(Instant::now(), director, what);
    }

    pub fn add_at(&self, at: Instant, director: &str, what: What) {
        let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        entries.push(Entry {
            at,
            director: director.to_string(),
            what,
        });
    }

    /// Every entry so far, in time order.
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        entries.sort_by_key(|e| e.at);
        entries
    }

    /// The state each director's last transition left it in.
    pub fn last_state(&self, director: &str) -> Option<State> {
        let entries = self.0.lock().unwrap_or_else(|p| p.into_inner());
        entries.iter().rev().find_map(|e| match e.what {
            What::Transition { to, .. } if e.director == director => Some(to),
            _ => None,
        })
    }
}
