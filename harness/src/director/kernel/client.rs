//! A blocking generic netlink socket speaking the IPVS family: resolves the
//! family id through nlctrl, sends one request at a time and collects its
//! replies (an ack, one answer, or a dump).
//!
//! The socket belongs to the network namespace of the thread that opened it:
//! open it on the director namespace's thread; after that any thread may use it.

use std::cell::Cell;
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{Socket, SocketAddr};

use super::genl::{IpvsMessage, FAMILY_NAME};

/// The kernel answers at once; never wait longer than this for a reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on the datagrams one request may take (a dump of thousands of dests fits).
const MAX_DATAGRAMS: usize = 10_000;

/// What went wrong talking to the kernel.
#[derive(Debug, thiserror::Error)]
pub enum GenlError {
    /// The kernel refused the request with this errno.
    #[error("{}", std::io::Error::from_raw_os_error(*.0))]
    Kernel(i32),
    #[error("this kernel has no generic netlink family IPVS (no ip_vs module)")]
    NoFamily,
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    #[error("undecodable netlink reply: {0}")]
    Decode(String),
}

impl GenlError {
    pub fn errno(&self) -> Option<i32> {
        match self {
            GenlError::Kernel(e) => Some(*e),
            _ => None,
        }
    }
}

pub struct IpvsSocket {
    socket: Socket,
    family_id: u16,
    seq: Cell<u32>,
}

impl IpvsSocket {
    /// Opens the socket in the calling thread's network namespace and resolves
    /// the IPVS family there (the kernel auto-loads ip_vs on that request when it can).
    pub fn open() -> Result<IpvsSocket, GenlError> {
        let mut socket = Socket::new(NETLINK_GENERIC)?;
        socket.bind_auto()?;
        set_recv_timeout(&socket, REPLY_TIMEOUT)?;
        let mut me = IpvsSocket {
            socket,
            family_id: 0,
            seq: Cell::new(0),
        };
        me.family_id = me.resolve_family()?;
        Ok(me)
    }

    pub fn family_id(&self) -> u16 {
        self.family_id
    }

    fn next_seq(&self) -> u32 {
        let s = self.seq.get().wrapping_add(1);
        self.seq.set(s);
        s
    }

    fn resolve_family(&self) -> Result<u16, GenlError> {
        let payload = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(FAMILY_NAME.into())],
        };
        let mut genl = GenlMessage::from_payload(payload);
        genl.finalize();
        let replies = match self.exchange(genl, NLM_F_REQUEST | NLM_F_ACK, false) {
            Err(GenlError::Kernel(libc::ENOENT)) => return Err(GenlError::NoFamily),
            other => other?,
        };
        replies
            .iter()
            .flat_map(|m| m.payload.nlas.iter())
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or_else(|| GenlError::Decode("nlctrl answered without a family id".into()))
    }

    /// A command the kernel acknowledges (NEW/SET/DEL_*, FLUSH): Ok once acked.
    pub fn command(&self, msg: IpvsMessage) -> Result<(), GenlError> {
        self.ipvs_exchange(msg, NLM_F_REQUEST | NLM_F_ACK, false).map(|_| ())
    }

    /// A request answered by one message (GET_INFO, GET_CONFIG).
    pub fn get(&self, msg: IpvsMessage) -> Result<IpvsMessage, GenlError> {
        let cmd = msg.cmd;
        self.ipvs_exchange(msg, NLM_F_REQUEST | NLM_F_ACK, false)?
            .into_iter()
            .next()
            .ok_or_else(|| GenlError::Decode(format!("no answer to {cmd:?}")))
    }

    /// A dump (GET_SERVICE, GET_DEST): every message until NLMSG_DONE.
    pub fn dump(&self, msg: IpvsMessage) -> Result<Vec<IpvsMessage>, GenlError> {
        self.ipvs_exchange(msg, NLM_F_REQUEST | NLM_F_DUMP, true)
    }

    fn ipvs_exchange(&self, msg: IpvsMessage, flags: u16, dump: bool) -> Result<Vec<IpvsMessage>, GenlError> {
        let mut genl = GenlMessage::from_payload(msg);
        genl.set_resolved_family_id(self.family_id);
        genl.finalize();
        Ok(self
            .exchange(genl, flags, dump)?
            .into_iter()
            .map(|m| m.payload)
            .collect())
    }

    /// Sends one request and reads until its ack (non-dump) or NLMSG_DONE (dump).
    fn exchange<F>(&self, genl: GenlMessage<F>, flags: u16, dump: bool) -> Result<Vec<GenlMessage<F>>, GenlError>
    where
        F: netlink_packet_generic::GenlFamily
            + netlink_packet_core::Emitable
            + netlink_packet_core::ParseableParametrized<[u8], netlink_packet_generic::GenlHeader>
            + std::fmt::Debug,
    {
        let seq = self.next_seq();
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.socket.send_to(&buf, &SocketAddr::new(0, 0), 0)?;

        let mut replies = Vec::new();
        for _ in 0..MAX_DATAGRAMS {
            let (data, _) = self.socket.recv_from_full()?;
            let mut offset = 0;
            while offset < data.len() {
                let parsed = NetlinkMessage::<GenlMessage<F>>::deserialize(&data[offset..])
                    .map_err(|e| GenlError::Decode(e.to_string()))?;
                let len = parsed.header.length as usize;
                if len == 0 {
                    return Err(GenlError::Decode("zero-length netlink message".into()));
                }
                offset += (len + 3) & !3;
                if parsed.header.sequence_number != seq {
                    continue; // a late answer to an earlier, timed-out request
                }
                match parsed.payload {
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    NetlinkPayload::Error(e) => match e.code {
                        Some(code) => return Err(GenlError::Kernel(-code.get())),
                        None if !dump => return Ok(replies),
                        None => {}
                    },
                    NetlinkPayload::Done(_) => return Ok(replies),
                    _ => {}
                }
            }
        }
        Err(GenlError::Decode(format!(
            "no end of reply after {MAX_DATAGRAMS} datagrams"
        )))
    }
}

fn set_recv_timeout(socket: &Socket, timeout: Duration) -> io::Result<()> {
    crate::sys::socket::set_recv_timeout(socket.as_fd(), timeout)
}
