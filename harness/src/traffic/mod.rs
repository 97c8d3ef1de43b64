//! Client traffic: requests fired from a client namespace, one record each.
//!
//! All work runs as tasks on the runtime handle given (the client
//! namespace's), so every socket is created in that namespace.

mod error;
mod http_client;
mod record;
mod schedule;
mod udp_client;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::mpsc::UnboundedSender;

pub use crate::realserver::Proto;
pub use error::RequestError;
pub use record::RequestRecord;
pub use schedule::{Pacing, Schedule};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionMode {
    /// One TCP connection (UDP: one socket) per request. TCP asks `Connection: close` and
    /// the server closes first, so the server's end holds the TIME_WAIT, not the client's.
    New,
    /// Reuse a connection (socket) per target and source, per worker.
    KeepAlive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSpec {
    /// Usually `[VIP:port]`; several = client-side round robin (direct mode).
    pub targets: Vec<SocketAddr>,
    pub proto: Proto,
    pub requests: u32,
    pub mode: ConnectionMode,
    /// Parallel workers sharing one request counter.
    pub concurrency: u32,
    /// Source addresses to bind, round robin by request; empty = kernel chooses. The port is
    /// picked at connect time (IP_BIND_ADDRESS_NO_PORT), unless `source_port` pins it.
    pub sources: Vec<Ipv4Addr>,
    /// Fixed source port (port-reuse reproductions), bound with SO_REUSEADDR and
    /// closed with RST (SO_LINGER 0) so the next connection can reuse it at once.
    /// Parallel connections to one target then collide: the later ones fail
    /// with an `Other` error, as they would for a real client.
    pub source_port: Option<u16>,
    /// Bound on one request: connect, complete response and (new connections) the close.
    pub timeout: Duration,
    pub path: String,
    /// Name of the client, copied into each record.
    pub client: String,
    /// TCP: the body of each request, sent as a POST; empty = a GET. (Cheap to clone.)
    pub body: bytes::Bytes,
}

/// State shared by the workers of one run.
struct Run {
    spec: TrafficSpec,
    schedule: Schedule,
    /// Requests this run may send: `spec.requests`, fewer when paced and the end comes first.
    limit: u32,
    next_seq: AtomicU32,
    next_connection: AtomicU32,
    progress: Option<UnboundedSender<()>>,
}

impl Run {
    fn target(&self, seq: u32) -> SocketAddr {
        self.spec.targets[seq as usize % self.spec.targets.len()]
    }

    /// Local address to bind for request `seq`, if any is imposed.
    fn bind_addr(&self, seq: u32) -> Option<SocketAddr> {
        let ip = match self.spec.sources.len() {
            0 => None,
            n => Some(self.spec.sources[seq as usize % n]),
        };
        if ip.is_none() && self.spec.source_port.is_none() {
            return None;
        }
        Some(SocketAddr::from((
            ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.spec.source_port.unwrap_or(0),
        )))
    }

    fn connection_ordinal(&self) -> u32 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    fn blank_record(&self, seq: u32) -> RequestRecord {
        RequestRecord {
            seq,
            client: self.spec.client.clone(),
            target: self.target(seq),
            backend: None,
            latency: Duration::ZERO,
            local: None,
            seen_as: None,
            connection: 0,
            sent_at: Duration::ZERO,
            error: None,
        }
    }
}

/// Key of a reusable connection: where to, and from which bound address.
type ConnKey = (SocketAddr, Option<SocketAddr>);

/// Fires `spec.requests` requests and returns one record per request, in
/// `seq` order. Each request is bounded by `spec.timeout`, so the run is too.
/// `progress` receives one message per finished request.
pub async fn fire(rt: &Handle, spec: TrafficSpec, progress: Option<UnboundedSender<()>>) -> Vec<RequestRecord> {
    fire_scheduled(rt, spec, Schedule::back_to_back(), progress).await
}

/// [`fire`], with requests sent when `schedule` says: paced requests whose due time is past
/// its end are not sent, nor are back-to-back ones once the end has come. One record per
/// request sent, in `seq` order, each with its send time since `schedule.start`.
pub async fn fire_scheduled(
    rt: &Handle,
    spec: TrafficSpec,
    schedule: Schedule,
    progress: Option<UnboundedSender<()>>,
) -> Vec<RequestRecord> {
    let requests = spec.requests;
    if spec.targets.is_empty() {
        return (0..requests)
            .map(|seq| {
                RequestRecord::failed(
                    seq,
                    &spec.client,
                    None,
                    RequestError::Other("no target to send to".into()),
                )
            })
            .collect();
    }
    let workers = spec.concurrency.clamp(1, requests.max(1));
    let limit = match schedule.pacing {
        Some(_) => (0..requests)
            .take_while(|&seq| schedule.due(seq).is_none_or(|due| !schedule.past_end(due)))
            .count() as u32,
        None => requests,
    };
    let run = Arc::new(Run {
        spec,
        schedule,
        limit,
        next_seq: AtomicU32::new(0),
        next_connection: AtomicU32::new(0),
        progress,
    });
    let handles: Vec<_> = (0..workers).map(|_| rt.spawn(worker(run.clone()))).collect();
    let mut records = Vec::with_capacity(requests as usize);
    for handle in handles {
        // A worker that panicked loses its records; they are filled in below.
        if let Ok(mut done) = handle.await {
            records.append(&mut done);
        }
    }
    records.sort_by_key(|record| record.seq);
    fill_missing(&run, records)
}

/// Gives every seq a worker took a record, so callers can count on it.
fn fill_missing(run: &Run, records: Vec<RequestRecord>) -> Vec<RequestRecord> {
    let taken = run.next_seq.load(Ordering::Relaxed).min(run.limit);
    if records.len() == taken as usize {
        return records;
    }
    let mut by_seq: HashMap<u32, RequestRecord> = records.into_iter().map(|r| (r.seq, r)).collect();
    (0..taken)
        .map(|seq| {
            by_seq.remove(&seq).unwrap_or_else(|| {
                let mut record = run.blank_record(seq);
                record.error = Some(RequestError::Other("client worker failed".into()));
                record
            })
        })
        .collect()
}

async fn worker(run: Arc<Run>) -> Vec<RequestRecord> {
    let mut records = Vec::new();
    let mut http_pool = http_client::Pool::default();
    let mut udp_pool = udp_client::Pool::default();
    loop {
        // Checked before taking a seq, so that every seq taken is sent.
        if run.schedule.pacing.is_none() && run.schedule.past_end(Instant::now()) {
            break;
        }
        let seq = run.next_seq.fetch_add(1, Ordering::Relaxed);
        if seq >= run.limit {
            break;
        }
        if let Some(due) = run.schedule.due(seq) {
            tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        }
        let mut record = run.blank_record(seq);
        let started = Instant::now();
        record.sent_at = started.saturating_duration_since(run.schedule.start);
        run.schedule.count_sent();
        let deadline = tokio::time::Instant::from_std(started) + run.spec.timeout;
        let exchange = async {
            match run.spec.proto {
                Proto::Tcp => http_client::request(&run, seq, deadline, &mut http_pool, &mut record).await,
                Proto::Udp => udp_client::request(&run, seq, &mut udp_pool, &mut record).await,
            }
        };
        let outcome = tokio::time::timeout_at(deadline, exchange).await;
        record.latency = started.elapsed();
        record.error = match outcome {
            Err(_elapsed) => Some(RequestError::Timeout),
            Ok(Err(err)) => Some(err),
            Ok(Ok(())) => None,
        };
        if let Some(progress) = &run.progress {
            let _ = progress.send(());
        }
        records.push(record);
    }
    records
}
