//! How frames reach the hosts of a large segment. A veth hands each frame it carries to the
//! backlog of the CPU it runs on (`net.core.netdev_max_backlog`, 1000 by default, one value for
//! the whole machine), unless its receiving end runs NAPI on a ring of its own, which veth does
//! when GRO is on at the receiving end and TSO off at the sending end
//! (`veth_skb_is_eligible_for_gro` in drivers/net/veth.c). A bridge floods a broadcast to every
//! port in one go, so with 1000 ports a single ARP request fills that backlog and floods that
//! overlap drop copies by the dozen: in a 1000-server DR lab, 1000 requests lost 35 000 copies,
//! among them ARP requests and replies. On large segments (`plan::LARGE_SEGMENT_PORTS`) the lab
//! therefore turns TSO off on the switch's ports and GRO on at the hosts' ends: every host then
//! receives on its own ring (the backlog drops went to 0). Smaller segments keep the kernel's
//! defaults.

use std::io;

/// include/uapi/linux/ethtool.h: the link state, and the legacy one-feature commands (STSO
/// covers every TSO kind).
const ETHTOOL_GLINK: u32 = 0x0a;
#[cfg(test)]
const ETHTOOL_GTSO: u32 = 0x1e;
const ETHTOOL_STSO: u32 = 0x1f;
#[cfg(test)]
const ETHTOOL_GGRO: u32 = 0x2b;
const ETHTOOL_SGRO: u32 = 0x2c;

/// Turns GRO on at a host's end of a veth (its receive side), in the calling thread's namespace.
pub(crate) fn receive_on_own_ring(ifname: &str) -> io::Result<()> {
    ethtool(ifname, ETHTOOL_SGRO, 1).map(|_| ())
}

/// Turns TSO off at a switch port (its send side towards the host), in the calling thread's namespace.
pub(crate) fn send_unsegmented(ifname: &str) -> io::Result<()> {
    ethtool(ifname, ETHTOOL_STSO, 0).map(|_| ())
}

/// Asks for an interface's link state, which makes the kernel apply its pending carrier change
/// first (`ethtool_op_get_link` → `linkwatch_sync_dev`). A switch port is created up before its
/// peer, so its carrier comes on later and the link-watch work attaches its queueing discipline
/// only when it gets to it: it handles 100 to 200 devices per run and, with more pending, waits up
/// to a second between runs, so in a 1000-server lab the last ports dropped every frame sent to
/// them for 1–2 s after the lab was built. Returns whether the carrier is on.
pub(crate) fn sync_link_state(ifname: &str) -> io::Result<bool> {
    ethtool(ifname, ETHTOOL_GLINK, 0).map(|up| up != 0)
}

/// (GRO, TSO) of an interface.
#[cfg(test)]
pub(crate) fn gro_tso(ifname: &str) -> io::Result<(bool, bool)> {
    Ok((
        ethtool(ifname, ETHTOOL_GGRO, 0)? != 0,
        ethtool(ifname, ETHTOOL_GTSO, 0)? != 0,
    ))
}

fn ethtool(ifname: &str, cmd: u32, data: u32) -> io::Result<u32> {
    crate::sys::netdev::ethtool(ifname, cmd, data)
}
