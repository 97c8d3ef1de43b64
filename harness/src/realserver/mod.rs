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
use std::sync::{Arc, Mutex};
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
    /// Answers with this HTTP status (UDP: in the reply's `status`).
    Status(u16),
}

impl Behaviour {
    /// The status a listening server answers with; `None` = 200.
    fn status(self) -> Option<u16> {
        match self {
            Behaviour::Error => Some(500),
            Behaviour::Status(code) => Some(code),
            Behaviour::Up | Behaviour::Refuse | Behaviour::Slow(_) => None,
        }
    }
}

/// How a server's answers change while it listens (slow, erroring, healthy again), shared
/// with its serving tasks so that the change applies to the next request.
type SharedBehaviour = Arc<Mutex<Behaviour>>;

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
/// sockets are closed. While it runs, it can be stopped and started again on the same
/// address and port, made to refuse, or to answer slowly or with an error (faults).
#[derive(Debug)]
pub struct RunningServer {
    name: String,
    proto: Proto,
    /// What it binds again after a stop: the port actually bound, for specs with port 0.
    bind: SocketAddr,
    rt: Handle,
    local_addr: Option<SocketAddr>,
    served: Arc<AtomicU64>,
    behaviour: SharedBehaviour,
    listening: Option<Listening>,
    /// Tasks still serving connections accepted before a `refuse`.
    draining: Vec<JoinHandle<()>>,
}

/// The serving task while the server listens.
#[derive(Debug)]
struct Listening {
    stop_tx: oneshot::Sender<Stop>,
    task: JoinHandle<()>,
}

/// How a serving task ends.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The listener and every open connection close at once (a process that died).
    Abort,
    /// Only the listener closes (then the sender fires); open connections are served to their end.
    Drain(oneshot::Sender<()>),
}

impl RunningServer {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// Address actually bound (resolves port 0); `None` while nothing listens.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listening.as_ref().and(self.local_addr)
    }

    /// Whether a socket listens (or, UDP, is bound) now.
    pub fn is_listening(&self) -> bool {
        self.listening.is_some()
    }

    /// Requests (TCP) or datagrams (UDP) answered so far, errors included.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// How the next requests are answered (while listening); `Refuse` is [`Self::refuse`].
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap_or_else(|e| e.into_inner()) = behaviour;
    }

    /// The server goes away: listener and open connections closed (those kept after a
    /// `refuse` too). Returns once they are.
    pub async fn halt(&mut self) {
        if let Some(listening) = self.listening.take() {
            let _ = listening.stop_tx.send(Stop::Abort);
            let _ = listening.task.await;
        }
        for task in std::mem::take(&mut self.draining) {
            task.abort();
            let _ = task.await;
        }
    }

    /// Stops listening, so new connections are refused (RST; UDP: port unreachable), while
    /// connections already open are still served. Returns once the listener is closed.
    pub async fn refuse(&mut self) {
        let Some(listening) = self.listening.take() else { return };
        let (closed_tx, closed_rx) = oneshot::channel();
        if listening.stop_tx.send(Stop::Drain(closed_tx)).is_ok() {
            // Dropped unsent only if the task already ended: its socket is gone either way.
            let _ = closed_rx.await;
        }
        self.draining.push(listening.task);
    }

    /// Listens again on the same address and port, answering as before the stop (slow or
    /// erroring stays so); returns once listening. A server already listening answers
    /// normally again: the `start` after a `slow` or `error` event is the repair.
    pub async fn resume(&mut self) -> Result<(), ServerError> {
        if self.listening.is_some() {
            self.set_behaviour(Behaviour::Up);
            return Ok(());
        }
        if *self.behaviour.lock().unwrap_or_else(|e| e.into_inner()) == Behaviour::Refuse {
            self.set_behaviour(Behaviour::Up);
        }
        let (listening, local) = listen(&self.rt, self.proto, self.bind, self.ctx()).await?;
        self.local_addr = Some(local);
        self.listening = Some(listening);
        Ok(())
    }

    /// Stops accepting, closes open connections and waits for the server task to end.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    fn ctx(&self) -> ServeCtx {
        ServeCtx {
            name: self.name.clone(),
            behaviour: self.behaviour.clone(),
            served: self.served.clone(),
        }
    }
}

/// Starts a server on `rt`; returns once it is listening (bound inside `rt`).
pub async fn start(rt: &Handle, spec: ServerSpec) -> Result<RunningServer, ServerError> {
    let ServerSpec {
        name,
        bind,
        proto,
        behaviour,
    } = spec;
    if proto == Proto::Udp && !bind.is_ipv4() {
        return Err(ServerError::UdpNotIpv4 { name, addr: bind });
    }
    let mut server = RunningServer {
        name,
        proto,
        bind,
        rt: rt.clone(),
        local_addr: None,
        served: Arc::new(AtomicU64::new(0)),
        behaviour: Arc::new(Mutex::new(behaviour)),
        listening: None,
        draining: Vec::new(),
    };
    if behaviour == Behaviour::Refuse {
        return Ok(server);
    }
    let (listening, local) = listen(rt, proto, bind, server.ctx()).await?;
    server.bind = SocketAddr::new(bind.ip(), local.port());
    server.local_addr = Some(local);
    server.listening = Some(listening);
    Ok(server)
}

async fn listen(
    rt: &Handle,
    proto: Proto,
    bind: SocketAddr,
    ctx: ServeCtx,
) -> Result<(Listening, SocketAddr), ServerError> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let name = ctx.name.clone();
    let task = match proto {
        Proto::Tcp => rt.spawn(http_server::run(bind, ctx, ready_tx, stop_rx)),
        Proto::Udp => rt.spawn(udp_server::run(bind, ctx, ready_tx, stop_rx)),
    };
    match ready_rx.await {
        Ok(Ok(local)) => Ok((Listening { stop_tx, task }, local)),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(ServerError::RuntimeGone(format!("server {name}"))),
    }
}

/// What a serving task needs to answer.
#[derive(Debug, Clone)]
pub(crate) struct ServeCtx {
    pub name: String,
    pub behaviour: SharedBehaviour,
    pub served: Arc<AtomicU64>,
}

impl ServeCtx {
    /// Waits as the behaviour says, counts the answer and builds it.
    pub(crate) async fn answer(&self, client: SocketAddr, local: SocketAddr) -> BackendReply {
        let behaviour = *self.behaviour.lock().unwrap_or_else(|e| e.into_inner());
        if let Behaviour::Slow(delay) = behaviour {
            tokio::time::sleep(delay).await;
        }
        self.served.fetch_add(1, Ordering::Relaxed);
        BackendReply {
            backend: self.name.clone(),
            client,
            local,
            status: behaviour.status(),
            request: None,
        }
    }
}

pub(crate) type ReadyTx = oneshot::Sender<Result<SocketAddr, ServerError>>;
pub(crate) type StopRx = oneshot::Receiver<Stop>;
