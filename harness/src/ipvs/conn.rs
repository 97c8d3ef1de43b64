//! Connection table (`ip_vs_conn.c`) and the TCP state machine
//! (`ip_vs_proto_tcp.c`). Entries hold no heap data; lookups are one hash
//! probe with no allocation.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::service::DestIdx;
use super::{Forward, Proto, TcpFlags};

/// Handle to a connection table entry (slot + generation, so stale handles
/// never alias a newer entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConnId {
    pub slot: u32,
    pub gen: u32,
}

/// TCP states in kernel numbering (`IP_VS_TCP_S_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TcpState {
    None = 0,
    Established,
    SynSent,
    SynRecv,
    FinWait,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    SynAck,
}

impl TcpState {
    pub fn name(self) -> &'static str {
        use TcpState::*;
        match self {
            None => "NONE",
            Established => "ESTABLISHED",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            FinWait => "FIN_WAIT",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            Listen => "LISTEN",
            SynAck => "SYNACK",
        }
    }

    /// Counted in ActiveConn (`tcp_state_active`).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }

    /// Default timeout (`tcp_timeouts`).
    pub fn timeout(self) -> Duration {
        use TcpState::*;
        Duration::from_secs(match self {
            None => 2,
            Established => 900,
            SynSent => 120,
            SynRecv => 60,
            FinWait => 120,
            TimeWait => 120,
            Close => 10,
            CloseWait => 60,
            LastAck => 30,
            Listen => 120,
            SynAck => 120,
        })
    }
}

/// UDP entries' only state and its timeout.
pub const UDP_TIMEOUT: Duration = Duration::from_secs(300);
/// Timer of a fresh entry before its first state transition.
pub const NEW_CONN_TIMEOUT: Duration = Duration::from_secs(3);
/// Re-arm period of an entry that still controls others.
pub const CONTROL_REARM: Duration = Duration::from_secs(60);

/// Which half of the flow a packet belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client → server of a NAT/FullNat entry.
    Input,
    /// Server → client.
    Output,
    /// Client → server while the director never saw a reply (DR/TUN).
    InputOnly,
}

/// Next-state tables (normal mode, `tcp_states`): [dir][event][state].
const TCP_TABLE: [[[TcpState; 11]; 4]; 3] = {
    use TcpState::*;
    const S: TcpState = SynSent;
    const R: TcpState = SynRecv;
    const E: TcpState = Established;
    const F: TcpState = FinWait;
    const T: TcpState = TimeWait;
    const C: TcpState = Close;
    const W: TcpState = CloseWait;
    const A: TcpState = LastAck;
    const L: TcpState = Listen;
    [
        // INPUT  columns: NONE ES SS SR FW TW CL CW LA LI SA
        [
            [R, E, E, R, R, R, R, R, R, R, R], // syn
            [C, W, S, T, T, T, C, W, A, L, T], // fin
            [E, E, S, E, F, T, C, W, C, L, E], // ack
            [C, C, C, R, C, C, C, C, A, L, R], // rst
        ],
        // OUTPUT
        [
            [S, E, S, R, S, S, S, S, S, L, R],
            [T, F, S, T, F, T, C, T, A, L, T],
            [E, E, S, E, F, T, C, W, A, E, E],
            [C, C, S, C, C, T, C, C, C, C, C],
        ],
        // INPUT_ONLY
        [
            [R, E, E, R, R, R, R, R, R, R, R],
            [C, F, S, T, F, T, C, W, A, L, T],
            [E, E, S, E, F, T, C, W, C, L, E],
            [C, C, C, R, C, C, C, C, A, L, C],
        ],
    ]
};

/// `set_tcp_state`'s table lookup. Priority RST > SYN > FIN > ACK; no flag → CLOSE.
pub fn tcp_next_state(cur: TcpState, dir: Dir, f: TcpFlags) -> TcpState {
    let event = if f.rst {
        3
    } else if f.syn {
        0
    } else if f.fin {
        1
    } else if f.ack {
        2
    } else {
        return TcpState::Close;
    };
    let d = match dir {
        Dir::Input => 0,
        Dir::Output => 1,
        Dir::InputOnly => 2,
    };
    TCP_TABLE[d][event][cur as usize]
}

/// Entry state as shown by `-Lnc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnState {
    Tcp(TcpState),
    Udp,
    /// Persistence template: NONE until a controlled connection is assured.
    Template {
        assured: bool,
    },
}

impl ConnState {
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => "UDP",
            ConnState::Template { assured: false } => "NONE",
            ConnState::Template { assured: true } => "ASSURED",
        }
    }
}

pub mod flags {
    pub const NOOUTPUT: u16 = 0x1;
    pub const INACTIVE: u16 = 0x2;
    pub const TEMPLATE: u16 = 0x4;
    pub const ONE_PACKET: u16 = 0x8;
}

/// One entry (`struct ip_vs_conn`), connection or persistence template.
#[derive(Clone, Debug)]
pub struct Conn {
    pub proto: Proto,
    pub caddr: Ipv4Addr,
    pub cport: u16,
    pub vaddr: Ipv4Addr,
    pub vport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    /// FullNat source on the server side (0.0.0.0:0 otherwise).
    pub laddr: Ipv4Addr,
    pub lport: u16,
    pub forward: Forward,
    pub flags: u16,
    pub state: ConnState,
    pub svc: u32,
    pub dest: DestIdx,
    /// Idle timeout of the current state.
    pub timeout: Duration,
    pub expires: Instant,
    /// Slot of the controlling template.
    pub control: Option<u32>,
    pub n_control: u32,
    /// Templates: when the last controlled entry went away.
    pub children_gone_at: Option<Instant>,
    pub in_pkts: u32,
}

impl Conn {
    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }
    pub fn is_inactive(&self) -> bool {
        self.flags & flags::INACTIVE != 0
    }
    pub fn in_key(&self) -> InKey {
        InKey::new(
            self.proto,
            self.is_template(),
            self.caddr,
            self.cport,
            self.vaddr,
            self.vport,
        )
    }
    /// Reply key: NAT replies go to the client, FullNat replies to the local addr.
    pub fn out_key(&self) -> Option<OutKey> {
        if self.is_template() {
            return None;
        }
        match self.forward {
            Forward::Nat => Some(OutKey::new(self.proto, self.daddr, self.dport, self.caddr, self.cport)),
            Forward::FullNat => Some(OutKey::new(self.proto, self.daddr, self.dport, self.laddr, self.lport)),
            Forward::Dr | Forward::Tun => None,
        }
    }
}

/// Inbound lookup key `(proto, caddr, cport, vaddr, vport)` (+ template bit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InKey {
    caddr: u32,
    vaddr: u32,
    cport: u16,
    vport: u16,
    proto: Proto,
    template: bool,
}

impl InKey {
    pub fn new(proto: Proto, template: bool, caddr: Ipv4Addr, cport: u16, vaddr: Ipv4Addr, vport: u16) -> Self {
        InKey {
            caddr: caddr.into(),
            vaddr: vaddr.into(),
            cport,
            vport,
            proto,
            template,
        }
    }
}

/// Outbound lookup key: reply source (server) and reply destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OutKey {
    raddr: u32,
    daddr: u32,
    rport: u16,
    dport: u16,
    proto: Proto,
}

impl OutKey {
    pub fn new(proto: Proto, raddr: Ipv4Addr, rport: u16, daddr: Ipv4Addr, dport: u16) -> Self {
        OutKey {
            raddr: raddr.into(),
            daddr: daddr.into(),
            rport,
            dport,
            proto,
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    gen: u32,
    conn: Option<Conn>,
}

/// Slab of entries plus the inbound and outbound hash indexes.
#[derive(Debug, Default)]
pub struct ConnTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_in: HashMap<InKey, u32>,
    by_out: HashMap<OutKey, u32>,
    len: usize,
}

impl ConnTable {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Store an entry; ONE_PACKET entries are not hashed (never looked up).
    pub fn insert(&mut self, conn: Conn) -> ConnId {
        let hashed = conn.flags & flags::ONE_PACKET == 0;
        let (in_key, out_key) = (conn.in_key(), conn.out_key());
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.gen = s.gen.wrapping_add(1);
        s.conn = Some(conn);
        if hashed {
            self.by_in.insert(in_key, slot);
            if let Some(k) = out_key {
                self.by_out.insert(k, slot);
            }
        }
        self.len += 1;
        ConnId { slot, gen: s.gen }
    }

    /// Unlink and return an entry.
    pub fn remove(&mut self, slot: u32) -> Option<Conn> {
        let conn = self.slots.get_mut(slot as usize)?.conn.take()?;
        self.unhash(slot, &conn);
        self.free.push(slot);
        self.len -= 1;
        Some(conn)
    }

    fn unhash(&mut self, slot: u32, conn: &Conn) {
        let k = conn.in_key();
        if self.by_in.get(&k) == Some(&slot) {
            self.by_in.remove(&k);
        }
        if let Some(k) = conn.out_key() {
            if self.by_out.get(&k) == Some(&slot) {
                self.by_out.remove(&k);
            }
        }
    }

    /// Change an entry's inbound key (template invalidation).
    pub fn rekey(&mut self, slot: u32, edit: impl FnOnce(&mut Conn)) {
        let Some(mut conn) = self.slots[slot as usize].conn.take() else {
            return;
        };
        self.unhash(slot, &conn);
        edit(&mut conn);
        self.by_in.insert(conn.in_key(), slot);
        if let Some(k) = conn.out_key() {
            self.by_out.insert(k, slot);
        }
        self.slots[slot as usize].conn = Some(conn);
    }

    pub fn id_of(&self, slot: u32) -> ConnId {
        ConnId {
            slot,
            gen: self.slots[slot as usize].gen,
        }
    }

    pub fn get(&self, slot: u32) -> Option<&Conn> {
        self.slots.get(slot as usize)?.conn.as_ref()
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Conn> {
        self.slots.get_mut(slot as usize)?.conn.as_mut()
    }

    /// Entry by handle, None if it has gone.
    pub fn by_id(&self, id: ConnId) -> Option<&Conn> {
        let s = self.slots.get(id.slot as usize)?;
        if s.gen == id.gen {
            s.conn.as_ref()
        } else {
            None
        }
    }

    pub fn lookup_in(&self, key: &InKey) -> Option<u32> {
        self.by_in.get(key).copied()
    }

    pub fn lookup_out(&self, key: &OutKey) -> Option<u32> {
        self.by_out.get(key).copied()
    }

    pub fn out_key_taken(&self, key: &OutKey) -> bool {
        self.by_out.contains_key(key)
    }

    /// Live entries in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Conn)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.conn.as_ref().map(|c| (i as u32, c)))
    }

    /// Approximate heap bytes per live entry (slot + both index entries).
    pub fn bytes_per_entry() -> usize {
        std::mem::size_of::<Slot>() + std::mem::size_of::<(InKey, u32)>() + std::mem::size_of::<(OutKey, u32)>() + 2
        // hashbrown control bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: TcpFlags = TcpFlags {
        syn: true,
        ack: false,
        fin: false,
        rst: false,
    };
    const ACK: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
    };
    const FIN: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: true,
        rst: false,
    };
    const RST: TcpFlags = TcpFlags {
        syn: false,
        ack: false,
        fin: false,
        rst: true,
    };

    fn walk(dir_of: impl Fn(usize) -> Dir, steps: &[TcpFlags]) -> Vec<TcpState> {
        let mut s = TcpState::None;
        steps
            .iter()
            .enumerate()
            .map(|(i, f)| {
                s = tcp_next_state(s, dir_of(i), *f);
                s
            })
            .collect()
    }

    #[test]
    fn dr_lifecycle_input_only() {
        use TcpState::*;
        let got = walk(|_| Dir::InputOnly, &[SYN, ACK, ACK, FIN, ACK]);
        assert_eq!(got, vec![SynRecv, Established, Established, FinWait, FinWait]);
        assert_eq!(tcp_next_state(Established, Dir::InputOnly, RST), Close);
    }

    #[test]
    fn nat_lifecycles() {
        use TcpState::*;
        // Server closes first: out FIN → FIN_WAIT, client ACK, client FIN → TIME_WAIT.
        let dirs = [Dir::Input, Dir::Output, Dir::Input, Dir::Output, Dir::Input, Dir::Input];
        let got = walk(|i| dirs[i], &[SYN, SYN, ACK, FIN, ACK, FIN]);
        assert_eq!(got, vec![SynRecv, SynRecv, Established, FinWait, FinWait, TimeWait]);
        // Client closes first: FIN → CLOSE_WAIT, server FIN → TIME_WAIT.
        assert_eq!(tcp_next_state(Established, Dir::Input, FIN), CloseWait);
        assert_eq!(tcp_next_state(CloseWait, Dir::Output, FIN), TimeWait);
    }

    #[test]
    fn flag_priority_and_timeouts() {
        use TcpState::*;
        let synack = TcpFlags {
            syn: true,
            ack: true,
            fin: false,
            rst: false,
        };
        assert_eq!(tcp_next_state(None, Dir::Input, synack), SynRecv);
        let none = TcpFlags::default();
        assert_eq!(tcp_next_state(Established, Dir::Input, none), Close);
        assert_eq!(Established.timeout(), Duration::from_secs(900));
        assert_eq!(SynRecv.timeout(), Duration::from_secs(60));
        assert_eq!(Close.timeout(), Duration::from_secs(10));
        assert!(SynRecv.is_active() && !FinWait.is_active());
    }
}
