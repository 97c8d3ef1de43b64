//! Real-server services: an HTTP/UDP server that names itself, and the
//! userspace IPIP decapsulator for TUN mode on kernels without `ipip`.
//!
//! Everything runs as tasks on a runtime handle supplied by the caller; the
//! lab hands out one per namespace (its worker thread lives inside that
//! namespace), so the sockets created here belong to that namespace.

mod http_server;
mod reply;
#[cfg(test)]
pub(crate) mod test_support;
pub mod tun_decap;
mod udp_server;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use reply::BackendReply;
pub use tun_decap::{start_decap, Decap, DecapError, DecapStats};

/// Transport of a service (servers and client traffic share it).
pub use crate::lvs::Proto;

/// How a real server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers at once with 200.
    Up,
    /// Nothing listens: the kernel answers with RST (TCP) or ICMP port unreachable (UDP).
    Refuse,
    /// Answers after the given delay.
    Slow(Duration),
    /// Answers HTTP 500 (UDP: the reply carries `"status":500`).
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Name reported in `X-Backend` and in the JSON body.
    pub name: String,
    /// Usually `0.0.0.0:port`, so the VIP on lo/tunl0 is served too.
    pub bind: SocketAddr,
    pub proto: Proto,
    pub behaviour: Behaviour,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("server {name}: cannot bind {proto:?} {addr}: {source}")]
    Bind {
        name: String,
        proto: Proto,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server {name}: {what}: {source}")]
    Socket {
        name: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("server {name}: UDP servers are IPv4 only (IP_PKTINFO), got {addr}")]
    UdpNotIpv4 { name: String, addr: SocketAddr },
    #[error("decapsulator: {what}: {source}")]
    Decap { what: &'static str, source: std::io::Error },
    #[error("the namespace runtime stopped before the {0} was ready")]
    RuntimeGone(String),
}

/// A started server. Dropping it stops it too; `stop` also waits until its
/// sockets are closed.
#[derive(Debug)]
pub struct RunningServer {
    name: String,
    proto: Proto,
    local_addr: Option<SocketAddr>,
    served: Arc<AtomicU64>,
    stop_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningServer {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// Address actually bound (resolves port 0); `None` for `Behaviour::Refuse`.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Requests (TCP) or datagrams (UDP) answered so far, errors included.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Stops accepting, closes open connections and waits for the server task to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // The task ends on the signal; a panic in it is not ours to re-raise here.
            let _ = task.await;
        }
    }
}

/// Starts a server on `rt`; returns once it is listening (bound inside `rt`).
pub async fn start(rt: &Handle, spec: ServerSpec) -> Result<RunningServer, ServerError> {
    let served = Arc::new(AtomicU64::new(0));
    let ServerSpec {
        name,
        bind,
        proto,
        behaviour,
    } = spec;
    if behaviour == Behaviour::Refuse {
        return Ok(RunningServer {
            name,
            proto,
            local_addr: None,
            served,
            stop_tx: None,
            task: None,
        });
    }
    if proto == Proto::Udp && !bind.is_ipv4() {
        return Err(ServerError::UdpNotIpv4 { name, addr: bind });
    }
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let ctx = ServeCtx {
        name: name.clone(),
        behaviour,
        served: served.clone(),
    };
    let task = match proto {
        Proto::Tcp => rt.spawn(http_server::run(bind, ctx, ready_tx, stop_rx)),
        Proto::Udp => rt.spawn(udp_server::run(bind, ctx, ready_tx, stop_rx)),
    };
    match ready_rx.await {
        Ok(Ok(local_addr)) => Ok(RunningServer {
            name,
            proto,
            local_addr: Some(local_addr),
            served,
            stop_tx: Some(stop_tx),
            task: Some(task),
        }),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(ServerError::RuntimeGone(format!("server {name}"))),
    }
}

/// What a serving task needs to answer.
#[derive(Debug, Clone)]
pub(crate) struct ServeCtx {
    pub name: String,
    pub behaviour: Behaviour,
    pub served: Arc<AtomicU64>,
}

impl ServeCtx {
    /// Waits as the behaviour says, counts the answer and builds it.
    pub(crate) async fn answer(&self, client: SocketAddr, local: SocketAddr) -> BackendReply {
        if let Behaviour::Slow(delay) = self.behaviour {
            tokio::time::sleep(delay).await;
        }
        self.served.fetch_add(1, Ordering::Relaxed);
        BackendReply {
            backend: self.name.clone(),
            client,
            local,
            status: (self.behaviour == Behaviour::Error).then_some(500),
            request: None,
        }
    }
}

pub(crate) type ReadyTx = oneshot::Sender<Result<SocketAddr, ServerError>>;
pub(crate) type StopRx = oneshot::Receiver<()>;
