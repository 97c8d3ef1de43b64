//! The vocabulary of Linux Virtual Server, defined once at the bottom of the stack:
//! the L4 protocol, the forwarding method, the scheduler, the service key and the cause
//! ids of a diagnosis. Every layer above (`ipvs`, `scenario`, `import`, `diagnose`,
//! `director`, `realserver`) uses these same types, so no layer converts between copies.
//!
//! Each type knows its spellings: the scenario keyword and serde name (lowercase:
//! `tcp`, `dr`, `wrr`, `arp-flux`), and where it has one, the word ipvsadm prints
//! (`TCP`, `Route`). No I/O, no other lvslab module.

mod cause;
mod forwarding;
mod protocol;
mod scheduler;
mod service;
mod word;

pub use cause::CauseId;
pub use forwarding::{Forward, Mode};
pub use protocol::Proto;
pub use scheduler::{SchedFlag, Scheduler, SchedulerInfo, SCHEDULERS};
pub use service::ServiceKey;
pub use word::UnknownWord;
