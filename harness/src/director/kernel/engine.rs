//! [`KernelEngine`]: the [`Engine`] trait on the kernel's own IPVS, configured
//! over generic netlink in the director's namespace like `ipvsadm` does.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::client::{GenlError, IpvsSocket};
use super::genl::{Cmd, CmdAttr, IpvsMessage, Stats};
use super::objects::{self, decode_dest, decode_service, KernelDest, KernelService};
use super::{proc_conn, setup, snapshot};
use crate::director::{DirectorConfig, DirectorError, Engine, EngineKind, EngineStats, Result, ServiceKey};
use crate::ipvs::{self, Forward};
use crate::lab::Host;

/// What `/proc/net/ip_vs_conn` is called from a thread inside the namespace.
const CONN_TABLE: &str = "/proc/thread-self/net/ip_vs_conn";
/// `IP_VS_CONN_TAB_SIZE` when GET_INFO does not say.
const DEFAULT_CONN_TAB_SIZE: u32 = 4096;
/// How often IPVS's estimator folds per-CPU counters into the exported ones.
const ESTIMATOR_PERIOD: Duration = Duration::from_secs(2);

pub struct KernelEngine {
    socket: IpvsSocket,
    /// Opened inside the namespace: the file stays bound to it, so any thread can re-read it.
    conn_table: File,
    /// Our services and their real servers as configured (SET_DEST needs the whole dest).
    services: Vec<(ipvs::ServiceConfig, Vec<ipvs::DestConfig>)>,
    /// Services of `services` that another program owns in the namespace (keepalived's
    /// checkers): this engine neither creates nor deletes them, only reads and edits them.
    attached: Vec<ServiceKey>,
}

impl KernelEngine {
    /// Configures kernel IPVS in `host`'s namespace: the VIPs and sysctls the
    /// namespace needs (`setup`), then every service and its real servers.
    /// FULLNAT is refused before anything is touched.
    pub async fn start(host: &Host, cfg: &DirectorConfig) -> Result<KernelEngine> {
        KernelEngine::start_attached(host, cfg, &[]).await
    }

    /// As [`KernelEngine::start`], but the services of `attached` are someone else's: the
    /// real keepalived creates them from its `virtual_server` (and deletes them when it stops),
    /// and its checkers add and remove their real servers. The engine sets up the namespace
    /// (VIP, sysctls) and the other services as usual, and reads every one in its snapshots.
    pub async fn start_attached(host: &Host, cfg: &DirectorConfig, attached: &[ServiceKey]) -> Result<KernelEngine> {
        if cfg.services.is_empty() {
            return Err(DirectorError::Config("no virtual service".into()));
        }
        check_supported(cfg)?;
        // Every message is built first, so a bad configuration changes nothing.
        let mut requests = Vec::new();
        for (svc, dests) in &cfg.services {
            let key = objects::key_of(svc);
            if attached.contains(&key) {
                continue;
            }
            let svc_attrs = objects::service_attrs(svc)?;
            let mut dest_msgs = Vec::new();
            for d in dests {
                dest_msgs.push((d, objects::new_dest_message(&key, d)?));
            }
            requests.push((key, svc, svc_attrs, dest_msgs));
        }
        let opened = host
            .exec(|| -> std::result::Result<(IpvsSocket, File), DirectorError> {
                let socket = IpvsSocket::open().map_err(|e| DirectorError::Ipvs {
                    what: "the generic netlink family IPVS".into(),
                    why: e.to_string(),
                })?;
                let conn_table =
                    File::open(CONN_TABLE).map_err(|e| DirectorError::io(format!("open {CONN_TABLE}"), e))?;
                Ok((socket, conn_table))
            })
            .await??;
        let (socket, conn_table) = opened;
        setup::apply(host, &setup::plan(cfg)).await?;

        let engine = KernelEngine {
            socket,
            conn_table,
            services: cfg.services.clone(),
            attached: attached.to_vec(),
        };
        let configured = (|| {
            for (key, svc, svc_attrs, dest_msgs) in requests {
                let msg = IpvsMessage::new(Cmd::NewService, vec![CmdAttr::Service(svc_attrs)]);
                engine
                    .socket
                    .command(msg)
                    .map_err(|e| refused(Cmd::NewService, format!("service {key}"), svc.scheduler.as_str(), e))?;
                for (d, msg) in dest_msgs {
                    engine.socket.command(msg).map_err(|e| {
                        refused(
                            Cmd::NewDest,
                            format!("real server {}:{} of {key}", d.addr, d.port),
                            svc.scheduler.as_str(),
                            e,
                        )
                    })?;
                }
            }
            Ok(())
        })();
        if let Err(e) = configured {
            // Leave the namespace as it was; the first error is the one to report.
            let _ = engine.delete_services();
            return Err(e);
        }
        Ok(engine)
    }

    /// Every service of the namespace with its real servers (kernel order), as dumped.
    pub fn dump(&self) -> Result<Vec<(KernelService, Vec<KernelDest>)>> {
        dump(&self.socket)
    }

    /// Every counter and rate of this engine's services and their real servers.
    fn dump_stats(&self) -> Result<Vec<Stats>> {
        let services = self.dump()?;
        Ok(services
            .iter()
            .filter(|(s, _)| self.services.iter().any(|(c, _)| objects::key_of(c) == s.key))
            .flat_map(|(s, dests)| std::iter::once(s.stats).chain(dests.iter().map(|d| d.stats)))
            .collect())
    }

    /// Deletes the services this engine created (not the attached ones).
    fn delete_services(&self) -> Result<()> {
        for (svc, _) in &self.services {
            let key = objects::key_of(svc);
            if self.attached.contains(&key) {
                continue;
            }
            let msg = IpvsMessage::new(Cmd::DelService, vec![CmdAttr::Service(objects::ident_attrs(&key))]);
            match self.socket.command(msg) {
                Ok(()) | Err(GenlError::Kernel(libc::ESRCH)) => {}
                Err(e) => return Err(refused(Cmd::DelService, format!("service {key}"), "", e)),
            }
        }
        Ok(())
    }
}

impl Engine for KernelEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Kernel
    }

    fn snapshot(&self) -> Result<ipvs::IpvsSnapshot> {
        read_snapshot(&self.socket, &self.conn_table)
    }

    fn set_weight(&mut self, service: ServiceKey, dest: SocketAddrV4, weight: u32) -> Result<()> {
        let (_, dests) = self
            .services
            .iter_mut()
            .find(|(s, _)| objects::key_of(s) == service)
            .ok_or_else(|| DirectorError::NoService(service.to_string()))?;
        let d = dests
            .iter_mut()
            .find(|d| d.addr == *dest.ip() && d.port == dest.port())
            .ok_or_else(|| DirectorError::NoDest {
                service: service.to_string(),
                dest,
            })?;
        let edited = ipvs::DestConfig { weight, ..d.clone() };
        let msg = IpvsMessage::new(
            Cmd::SetDest,
            vec![
                CmdAttr::Service(objects::ident_attrs(&service)),
                CmdAttr::Dest(objects::dest_attrs(&edited)?),
            ],
        );
        self.socket
            .command(msg)
            .map_err(|e| refused(Cmd::SetDest, format!("real server {dest} of {service}"), "", e))?;
        *d = edited;
        Ok(())
    }

    fn add_dest(&mut self, service: ServiceKey, dest: ipvs::DestConfig) -> Result<()> {
        let (svc, dests) = self
            .services
            .iter_mut()
            .find(|(s, _)| objects::key_of(s) == service)
            .ok_or_else(|| DirectorError::NoService(service.to_string()))?;
        let msg = objects::new_dest_message(&service, &dest)?;
        self.socket.command(msg).map_err(|e| {
            refused(
                Cmd::NewDest,
                format!("real server {}:{} of {service}", dest.addr, dest.port),
                svc.scheduler.as_str(),
                e,
            )
        })?;
        dests.retain(|d| (d.addr, d.port) != (dest.addr, dest.port));
        dests.push(dest);
        Ok(())
    }

    fn remove_dest(&mut self, service: ServiceKey, dest: SocketAddrV4) -> Result<()> {
        let (_, dests) = self
            .services
            .iter_mut()
            .find(|(s, _)| objects::key_of(s) == service)
            .ok_or_else(|| DirectorError::NoService(service.to_string()))?;
        let msg = objects::del_dest_message(&service, *dest.ip(), dest.port());
        self.socket
            .command(msg)
            .map_err(|e| refused(Cmd::DelDest, format!("real server {dest} of {service}"), "", e))?;
        dests.retain(|d| (d.addr, d.port) != (*dest.ip(), dest.port()));
        Ok(())
    }

    fn edit_dest(&mut self, service: ServiceKey, dest: ipvs::DestConfig) -> Result<()> {
        let msg = IpvsMessage::new(
            Cmd::SetDest,
            vec![
                CmdAttr::Service(objects::ident_attrs(&service)),
                CmdAttr::Dest(objects::dest_attrs(&dest)?),
            ],
        );
        self.socket.command(msg).map_err(|e| {
            refused(
                Cmd::SetDest,
                format!("real server {}:{} of {service}", dest.addr, dest.port),
                "",
                e,
            )
        })?;
        if let Some((_, dests)) = self.services.iter_mut().find(|(s, _)| objects::key_of(s) == service) {
            match dests.iter_mut().find(|d| (d.addr, d.port) == (dest.addr, dest.port)) {
                Some(d) => *d = dest,
                None => dests.push(dest),
            }
        }
        Ok(())
    }

    /// The kernel keeps no per-frame counters for lvslab: the services'
    /// packet counters stand in (client→server packets forwarded, replies
    /// rewritten). They lag by up to the estimator's 2 s period.
    fn stats(&self) -> EngineStats {
        let mut stats = EngineStats::default();
        if let Ok(services) = self.dump() {
            let ours = services
                .iter()
                .filter(|(s, _)| self.services.iter().any(|(c, _)| objects::key_of(c) == s.key));
            for (s, _) in ours {
                stats.forwarded_in += s.stats.inpkts;
                stats.forwarded_out += s.stats.outpkts;
            }
            stats.frames_seen = stats.forwarded_in + stats.forwarded_out;
        }
        stats
    }

    /// Waits for an estimator run (`estimation_timer`, every 2 s in 6.1; a kthread with the
    /// same period since 6.2): the first change in any counter or rate after the traffic
    /// shows one happened, and 2.5 s without change means one happened with nothing to fold.
    fn settle_stats(&self) {
        let deadline = Instant::now() + ESTIMATOR_PERIOD + Duration::from_millis(500);
        let Ok(before) = self.dump_stats() else { return };
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            match self.dump_stats() {
                Ok(now) if now != before => return,
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    /// Deletes this engine's services (and so their real servers). The VIP
    /// stays on the director until the lab goes down.
    fn shutdown(self: Box<Self>) -> Result<()> {
        self.delete_services()
    }
}

/// Every service of the socket's namespace with its real servers (kernel order), as dumped.
fn dump(socket: &IpvsSocket) -> Result<Vec<(KernelService, Vec<KernelDest>)>> {
    let listed = socket
        .dump(IpvsMessage::new(Cmd::GetService, vec![]))
        .map_err(|e| refused(Cmd::GetService, "services".into(), "", e))?;
    let mut out = Vec::new();
    for m in &listed {
        let Some(attrs) = m.service() else { continue };
        // fwmark, IPv6 and SCTP services are not lvslab's: left out of the views.
        let Ok(svc) = decode_service(attrs)? else { continue };
        let dests = socket
            .dump(IpvsMessage::new(
                Cmd::GetDest,
                vec![CmdAttr::Service(objects::ident_attrs(&svc.key))],
            ))
            .map_err(|e| refused(Cmd::GetDest, format!("real servers of {}", svc.key), "", e))?
            .iter()
            .filter_map(|m| m.dest().map(decode_dest))
            .collect::<Result<Vec<_>>>()?;
        out.push((svc, dests));
    }
    Ok(out)
}

fn conn_tab_size(socket: &IpvsSocket) -> u32 {
    socket
        .get(IpvsMessage::new(Cmd::GetInfo, vec![]))
        .ok()
        .and_then(|m| {
            m.attrs.iter().find_map(|a| match a {
                CmdAttr::InfoConnTabSize(n) => Some(*n),
                _ => None,
            })
        })
        .unwrap_or(DEFAULT_CONN_TAB_SIZE)
}

fn read_conns(mut conn_table: &File) -> Result<Vec<proc_conn::ProcConn>> {
    let mut text = String::new();
    conn_table
        .seek(SeekFrom::Start(0))
        .map_err(|e| DirectorError::io(format!("rewind {CONN_TABLE}"), e))?;
    conn_table
        .read_to_string(&mut text)
        .map_err(|e| DirectorError::io(format!("read {CONN_TABLE}"), e))?;
    proc_conn::parse(&text).map_err(|e| DirectorError::Ipvs {
        what: CONN_TABLE.into(),
        why: e.to_string(),
    })
}

fn read_snapshot(socket: &IpvsSocket, conn_table: &File) -> Result<ipvs::IpvsSnapshot> {
    let services = dump(socket)?;
    let conns = read_conns(conn_table)?;
    Ok(snapshot::build(conn_tab_size(socket), &services, &conns))
}

/// Kernel IPVS of one namespace as `ipvsadm` sees it: every service, whoever made it, read
/// and edited with the kernel's own errno (for ipvsadm's wording of a refusal).
pub struct Admin {
    socket: IpvsSocket,
    conn_table: File,
}

impl Admin {
    /// Opens the netlink socket and the connection table of the calling thread's namespace.
    pub fn open() -> Result<Admin> {
        let socket = IpvsSocket::open().map_err(|e| DirectorError::Ipvs {
            what: "the generic netlink family IPVS".into(),
            why: e.to_string(),
        })?;
        let conn_table = File::open(CONN_TABLE).map_err(|e| DirectorError::io(format!("open {CONN_TABLE}"), e))?;
        Ok(Admin { socket, conn_table })
    }

    pub fn snapshot(&self) -> Result<ipvs::IpvsSnapshot> {
        read_snapshot(&self.socket, &self.conn_table)
    }

    /// NEW_DEST (`-a`), SET_DEST (`-e`) or DEL_DEST (`-d`, weight and method ignored).
    pub fn dest_command(
        &self,
        cmd: DestCmd,
        service: &ServiceKey,
        dest: &ipvs::DestConfig,
    ) -> std::result::Result<(), GenlError> {
        let msg = match cmd {
            DestCmd::Add => objects::new_dest_message(service, dest).map_err(|e| GenlError::Decode(e.to_string()))?,
            DestCmd::Edit => IpvsMessage::new(
                Cmd::SetDest,
                vec![
                    CmdAttr::Service(objects::ident_attrs(service)),
                    CmdAttr::Dest(objects::dest_attrs(dest).map_err(|e| GenlError::Decode(e.to_string()))?),
                ],
            ),
            DestCmd::Delete => objects::del_dest_message(service, dest.addr, dest.port),
        };
        self.socket.command(msg)
    }
}

/// The real-server commands of ipvsadm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestCmd {
    Add,
    Edit,
    Delete,
}

/// A kernel refusal as a sentence an operator can act on.
fn refused(cmd: Cmd, what: String, scheduler: &str, e: GenlError) -> DirectorError {
    let why = match (e.errno(), cmd) {
        (Some(libc::EEXIST), Cmd::NewService) => "it already exists in the director's namespace".to_string(),
        (Some(libc::EEXIST), Cmd::NewDest) => "it is already a real server of this service".to_string(),
        (Some(libc::ENOENT), Cmd::NewService | Cmd::SetService) => {
            format!("unknown scheduler {scheduler:?}: this kernel has no ip_vs_{scheduler} module loaded or loadable")
        }
        (Some(libc::ENOENT), _) => "no such real server in the kernel's service".to_string(),
        (Some(libc::ESRCH), _) => "no such service in the kernel".to_string(),
        (Some(libc::EPERM), _) => "permission denied: IPVS needs CAP_NET_ADMIN in the director's namespace".to_string(),
        (Some(libc::ERANGE), _) => "a value is out of range (weight, or lower threshold above upper)".to_string(),
        (Some(libc::EINVAL), Cmd::NewDest | Cmd::SetDest) => {
            "invalid real server: its address must be unicast and routable from the director".to_string()
        }
        (Some(libc::EINVAL), _) => "invalid attributes (EINVAL)".to_string(),
        (Some(libc::EAFNOSUPPORT), _) => "address family not supported".to_string(),
        _ => e.to_string(),
    };
    DirectorError::Ipvs { what, why }
}

/// Why `complete_checksums = false` cannot run on kernel IPVS outside TUN mode.
pub const PARTIAL_CHECKSUMS_UNSUPPORTED: &str = "complete_checksums = false runs on kernel IPVS in TUN mode only: in DR and \
     NAT IPVS hands the partial checksum over the veth with its offload state and the real server's kernel trusts it, so \
     nothing arrives bad; in TUN the real servers' userspace decapsulator reads the raw bytes (use mode = \"tun\", or the \
     embedded engine)";

/// Refuses what kernel IPVS cannot do, before any lab work: FULLNAT, forwarding partial
/// checksums other than through a tunnel.
pub fn check_supported(cfg: &DirectorConfig) -> Result<()> {
    let mut dests = cfg.services.iter().flat_map(|(_, d)| d);
    if dests.clone().any(|d| d.forward == Forward::FullNat) {
        return Err(DirectorError::Config(objects::FULLNAT_UNSUPPORTED.into()));
    }
    if !cfg.complete_checksums && !dests.all(|d| d.forward == Forward::Tun) {
        return Err(DirectorError::Config(PARTIAL_CHECKSUMS_UNSUPPORTED.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_refusals_read_as_causes() {
        let e = refused(
            Cmd::NewService,
            "service TCP 192.0.2.100:80".into(),
            "twos",
            GenlError::Kernel(libc::ENOENT),
        );
        assert_eq!(
            e.to_string(),
            "ipvs refused service TCP 192.0.2.100:80: unknown scheduler \"twos\": this kernel has no ip_vs_twos module loaded or loadable"
        );
        let e = refused(
            Cmd::NewDest,
            "real server 192.0.2.11:80".into(),
            "rr",
            GenlError::Kernel(libc::EEXIST),
        );
        assert!(
            e.to_string().ends_with("it is already a real server of this service"),
            "{e}"
        );
        let e = refused(Cmd::SetDest, "x".into(), "", GenlError::Kernel(libc::ESRCH));
        assert!(e.to_string().contains("no such service"), "{e}");
        let e = refused(Cmd::GetService, "services".into(), "", GenlError::NoFamily);
        assert!(e.to_string().contains("no generic netlink family IPVS"), "{e}");
    }

    fn cfg(forward: Forward, complete_checksums: bool) -> DirectorConfig {
        let vip = std::net::Ipv4Addr::new(192, 0, 2, 100);
        DirectorConfig {
            services: vec![(
                ipvs::ServiceConfig::new(ipvs::Proto::Tcp, vip, 80, ipvs::Scheduler::Rr),
                vec![ipvs::DestConfig::new(
                    std::net::Ipv4Addr::new(198, 51, 100, 11),
                    80,
                    1,
                    forward,
                )],
            )],
            sysctls: ipvs::Sysctls::default(),
            client_iface: "eth0".into(),
            server_iface: "eth1".into(),
            fullnat_local_addrs: vec![],
            vip_gate: None,
            marks: Vec::new(),
            complete_checksums,
        }
    }

    #[test]
    fn fullnat_is_refused_with_the_reason() {
        let cfg = cfg(Forward::FullNat, true);
        let e = check_supported(&cfg).unwrap_err().to_string();
        assert!(e.contains("not supported by kernel IPVS (out of mainline"), "{e}");
        assert!(objects::dest_attrs(&cfg.services[0].1[0]).is_err());
    }

    #[test]
    fn partial_checksums_run_through_a_tunnel_only() {
        assert!(check_supported(&cfg(Forward::Tun, false)).is_ok());
        for forward in [Forward::Dr, Forward::Nat] {
            let e = check_supported(&cfg(forward, false)).unwrap_err().to_string();
            assert!(e.contains("in TUN mode only"), "{forward:?}: {e}");
            assert!(e.contains("use mode = \"tun\""), "{e}");
            assert!(check_supported(&cfg(forward, true)).is_ok());
        }
    }
}
