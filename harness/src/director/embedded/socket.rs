//! The engine's AF_PACKET socket (`crate::sys::packet`) and the virtio-net header on its
//! frames (`crate::wire::vnet`).

pub use crate::sys::packet::{PacketSocket, Received, RECV_BUF_LEN};
pub use crate::wire::vnet::{VnetHdr, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE, VNET_HDR_LEN};
