//! The embedded (userspace) IPVS engine: `crate::ipvs` decides, an AF_PACKET
//! loop in the director's namespace forwards.
//!
//! The director's kernel never holds the VIP (nor FULLNAT local addresses) and
//! keeps `ip_forward=0`, so it silently drops the frames this engine handles
//! (counted as InAddrErrors), sending no RST or ICMP. The engine answers ARP
//! for those addresses itself, resolves next hops as the kernel's neighbour
//! layer does (`neighbour.rs`), and relays the ICMP errors that belong to its
//! connections as IPVS does (`relay.rs`, over the wire view in `icmp.rs`).

pub mod drops;
pub mod engine;
pub mod forward;
pub mod frame;
pub mod icmp;
pub mod icmp_limit;
pub mod neighbour;
pub mod relay;
pub mod reset;
pub mod segment;
pub mod socket;

/// The state the packet thread shares; poisoned only if that thread panicked holding it.
fn lock_state(shared: &Mutex<Shared>) -> Result<std::sync::MutexGuard<'_, Shared>> {
    shared
        .lock()
        .map_err(|_| DirectorError::Thread("panicked while holding the engine state".into()))
}

#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod tap_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::ipvs::{self, Ipvs, ServiceId};
use super::{DirectorConfig, DirectorError, Engine, EngineKind, EngineStats, Result, ServiceKey};
pub use drops::DropReason;
pub use engine::IfaceFacts;
use engine::{PacketLoop, Shared};

/// Per service: its id in `Ipvs` and its real servers as configured.
type ServiceTable = HashMap<ServiceKey, (ServiceId, Vec<ipvs::DestConfig>)>;

/// How long `start` waits for the packet thread to open its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(5);

pub struct EmbeddedEngine {
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    services: ServiceTable,
}

/// Builds the `Ipvs` state from the configuration.
pub(crate) fn build_ipvs(cfg: &DirectorConfig) -> Result<(Ipvs, ServiceTable)> {
    let mut ipvs = Ipvs::new(cfg.sysctls);
    ipvs.set_fullnat_local_addrs(cfg.fullnat_local_addrs.clone());
    let mut services = HashMap::new();
    for (svc, dests) in &cfg.services {
        let key = svc.key();
        let id = ipvs
            .add_service(svc.clone())
            .map_err(|e| DirectorError::refused(format!("service {key}"), e))?;
        for d in dests {
            ipvs.add_dest(id, d.clone())
                .map_err(|e| DirectorError::refused(format!("real server {}:{} of {key}", d.addr, d.port), e))?;
        }
        services.insert(key, (id, dests.clone()));
    }
    Ok((ipvs, services))
}

impl EmbeddedEngine {
    /// Starts the engine on `host` (the director's namespace): reads its
    /// interfaces, opens the sockets on a thread inside that namespace and
    /// returns once they are open.
    pub fn start(host: &crate::lab::Host, cfg: DirectorConfig) -> Result<EmbeddedEngine> {
        let facts = |name: &str| -> Result<IfaceFacts> {
            let i = host
                .iface(name)
                .ok_or_else(|| DirectorError::NoInterface(name.to_string()))?;
            Ok(IfaceFacts {
                name: i.name.clone(),
                index: i.index,
                mac: i.mac,
                addrs: i.addrs.clone(),
            })
        };
        let client = facts(&cfg.client_iface)?;
        let server = if cfg.server_iface == cfg.client_iface {
            None
        } else {
            Some(facts(&cfg.server_iface)?)
        };
        Self::start_with(cfg, client, server, |name, body| host.spawn_thread(&name, body))
    }

    /// Starts the engine with interface facts given directly; `spawn` must run
    /// its closure on a new thread inside the director's namespace.
    pub fn start_with<S>(
        cfg: DirectorConfig,
        client: IfaceFacts,
        server: Option<IfaceFacts>,
        spawn: S,
    ) -> Result<EmbeddedEngine>
    where
        S: FnOnce(String, Box<dyn FnOnce() + Send + 'static>) -> std::io::Result<JoinHandle<()>>,
    {
        if cfg.services.is_empty() {
            return Err(DirectorError::Config("no virtual service".into()));
        }
        let (ipvs, services) = build_ipvs(&cfg)?;
        let shared = Arc::new(Mutex::new(Shared {
            ipvs,
            stats: EngineStats::default(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<()>>();
        let body = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            let laddrs = cfg.fullnat_local_addrs.clone();
            let gate = cfg.vip_gate.clone();
            let marks = cfg.marks.clone();
            let complete_checksums = cfg.complete_checksums;
            Box::new(move || {
                match PacketLoop::open(shared, stop, client, server, laddrs, gate, complete_checksums)
                    .map(|lp| lp.with_marks(marks))
                {
                    Ok(lp) => {
                        let _ = ready_tx.send(Ok(()));
                        lp.run();
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
        };
        let thread = spawn("director-embedded".to_string(), body)
            .map_err(|e| DirectorError::io("spawning the director's packet thread", e))?;
        let engine = EmbeddedEngine {
            shared,
            stop,
            thread: Some(thread),
            services,
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(engine),
            Ok(Err(e)) => {
                let _ = engine.stop_thread(); // the start error is the one worth reporting
                Err(DirectorError::io("opening the director's AF_PACKET sockets", e))
            }
            Err(_) => {
                let _ = engine.stop_thread(); // the start error is the one worth reporting
                Err(DirectorError::Thread(format!("did not start within {START_TIMEOUT:?}")))
            }
        }
    }

    fn stop_thread(mut self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| DirectorError::Thread("panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for EmbeddedEngine {
    fn drop(&mut self) {
        // Dropped without shutdown(): still stop the thread (it sees the flag within POLL_TIMEOUT).
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Engine for EmbeddedEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Embedded
    }

    fn snapshot(&self) -> Result<ipvs::IpvsSnapshot> {
        Ok(lock_state(&self.shared)?.ipvs.snapshot(std::time::Instant::now()))
    }

    fn set_weight(&mut self, service: ServiceKey, dest: SocketAddrV4, weight: u32) -> Result<()> {
        let (id, dests) = service_entry(&mut self.services, service)?;
        let d = dests
            .iter_mut()
            .find(|d| d.addr == *dest.ip() && d.port == dest.port())
            .ok_or_else(|| DirectorError::NoDest {
                service: service.to_string(),
                dest,
            })?;
        let mut edited = d.clone();
        edited.weight = weight;
        lock_state(&self.shared)?
            .ipvs
            .edit_dest(*id, edited.clone())
            .map_err(|e| DirectorError::refused(format!("weight {weight} for {dest} in {service}"), e))?;
        *d = edited;
        Ok(())
    }

    fn add_dest(&mut self, service: ServiceKey, dest: ipvs::DestConfig) -> Result<()> {
        let (id, dests) = service_entry(&mut self.services, service)?;
        lock_state(&self.shared)?
            .ipvs
            .add_dest(*id, dest.clone())
            .map_err(|e| DirectorError::refused(format!("real server {}:{} of {service}", dest.addr, dest.port), e))?;
        dests.retain(|d| (d.addr, d.port) != (dest.addr, dest.port));
        dests.push(dest);
        Ok(())
    }

    fn remove_dest(&mut self, service: ServiceKey, dest: SocketAddrV4) -> Result<()> {
        let (id, dests) = service_entry(&mut self.services, service)?;
        // Ipvs::del_dest unlinks it like ip_vs_unlink_dest: its connections keep pointing at
        // an unavailable dest, which `expire_nodest_conn` decides about packet by packet.
        lock_state(&self.shared)?
            .ipvs
            .del_dest(*id, *dest.ip(), dest.port(), std::time::Instant::now())
            .map_err(|e| DirectorError::refused(format!("removing {dest} from {service}"), e))?;
        dests.retain(|d| (d.addr, d.port) != (*dest.ip(), dest.port()));
        Ok(())
    }

    fn edit_dest(&mut self, service: ServiceKey, dest: ipvs::DestConfig) -> Result<()> {
        let (id, dests) = service_entry(&mut self.services, service)?;
        lock_state(&self.shared)?
            .ipvs
            .edit_dest(*id, dest.clone())
            .map_err(|e| DirectorError::refused(format!("real server {}:{} of {service}", dest.addr, dest.port), e))?;
        match dests.iter_mut().find(|d| (d.addr, d.port) == (dest.addr, dest.port)) {
            Some(d) => *d = dest,
            None => dests.push(dest),
        }
        Ok(())
    }

    fn stats(&self) -> EngineStats {
        self.shared.lock().map(|s| s.stats.clone()).unwrap_or_default()
    }

    fn shutdown(self: Box<Self>) -> Result<()> {
        (*self).stop_thread()
    }
}

/// The engine's own record of `service` (its table id and destinations), or NoService.
fn service_entry(services: &mut ServiceTable, service: ServiceKey) -> Result<&mut (ServiceId, Vec<ipvs::DestConfig>)> {
    services
        .get_mut(&service)
        .ok_or_else(|| DirectorError::NoService(service.to_string()))
}
