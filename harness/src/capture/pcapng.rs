//! One pcapng file per capture point, written and read with the `pcap-file` crate: a section
//! header, one interface description block (name, description, link type, nanosecond
//! timestamps), then one enhanced packet block per frame with its direction in `epb_flags`.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::{Block, PcapNgParser, PcapNgWriter};
use pcap_file::{DataLink, PcapError};

use super::LinkType;
use crate::sys::capture::{Captured, SNAPLEN};

/// epb_flags bits 0-1: the frame's direction (RFC pcapng, "epb_flags").
const INBOUND: u32 = 0b01;
const OUTBOUND: u32 = 0b10;
/// if_tsresol: timestamps in nanoseconds (10^-9 s).
const NANOSECONDS: u8 = 9;
/// Written through a buffer of this size: memory stays bounded however long the capture runs.
const WRITE_BUFFER: usize = 64 << 10;

pub(crate) struct Writer {
    inner: PcapNgWriter<BufWriter<File>>,
    pub(crate) frames: u64,
    /// The last frame's timestamp: a file's timestamps never go back.
    last: Duration,
}

impl Writer {
    /// Creates `path` with its section header and its one interface description.
    pub(crate) fn create(path: &Path, if_name: &str, description: &str, link: LinkType) -> std::io::Result<Writer> {
        let file = File::create(path)?;
        let mut inner = PcapNgWriter::new(BufWriter::with_capacity(WRITE_BUFFER, file)).map_err(pcap_io)?;
        let interface = InterfaceDescriptionBlock {
            linktype: match link {
                LinkType::Ethernet => DataLink::ETHERNET,
                LinkType::RawIp => DataLink::RAW,
            },
            snaplen: SNAPLEN as u32,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(if_name.to_owned())),
                InterfaceDescriptionOption::IfDescription(Cow::Owned(description.to_owned())),
                InterfaceDescriptionOption::IfTsResol(NANOSECONDS),
            ],
        };
        inner.write_pcapng_block(interface).map_err(pcap_io)?;
        // A valid (empty) capture from the start: a kept lab's files open before any traffic.
        inner.get_mut().flush()?;
        Ok(Writer {
            inner,
            frames: 0,
            last: Duration::ZERO,
        })
    }

    pub(crate) fn write(&mut self, frame: &Captured<'_>) -> std::io::Result<()> {
        // Frames of one socket stamped on two CPUs (a segment's ports) may be queued a few
        // microseconds out of order: such a frame keeps its place and the time before it.
        self.last = self.last.max(frame.timestamp);
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: self.last,
            original_len: frame.original_len,
            data: Cow::Borrowed(frame.data),
            options: vec![EnhancedPacketOption::Flags(if frame.outgoing {
                OUTBOUND
            } else {
                INBOUND
            })],
        };
        self.inner.write_pcapng_block(block).map_err(pcap_io)?;
        self.frames += 1;
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        self.inner.get_mut().flush()
    }
}

fn pcap_io(e: pcap_file::PcapError) -> std::io::Error {
    match e {
        pcap_file::PcapError::IoError(e) => e,
        other => std::io::Error::other(other.to_string()),
    }
}

/// One frame read back from a capture file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub timestamp: Duration,
    /// Sent by the interface's host (epb_flags outbound); false for a segment's frames.
    pub outbound: bool,
    pub data: Vec<u8>,
}

/// Every frame of a file lvslab wrote, with the link type of its interface. The file is read
/// whole and parsed in place: `PcapNgReader` zeroes an 8 MB buffer for each file it opens,
/// which cost the report more than parsing its frames.
pub fn read_frames(path: &Path) -> Result<(LinkType, Vec<Frame>), String> {
    let what = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| what(&e))?;
    let (mut rest, mut parser) = PcapNgParser::new(&bytes).map_err(|e| what(&e))?;
    let mut link = None;
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (after, block) = parser.next_block(rest).map_err(|e| match e {
            PcapError::IncompleteBuffer => what(&"the file ends inside a block (cut short, or still being written)"),
            e => what(&e),
        })?;
        rest = after;
        match block {
            Block::InterfaceDescription(idb) => {
                link = Some(match idb.linktype {
                    DataLink::ETHERNET => LinkType::Ethernet,
                    DataLink::RAW | DataLink::IPV4 => LinkType::RawIp,
                    other => return Err(what(&format!("link type {other:?} is not one lvslab writes"))),
                });
            }
            Block::EnhancedPacket(epb) => frames.push(Frame {
                timestamp: epb.timestamp,
                outbound: epb
                    .options
                    .iter()
                    .any(|o| matches!(o, EnhancedPacketOption::Flags(f) if f & 0b11 == OUTBOUND)),
                data: epb.data.into_owned(),
            }),
            _ => {}
        }
    }
    let link = link.ok_or_else(|| what(&"no interface description block"))?;
    Ok((link, frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_reads_back_with_directions_and_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rs1-eth0.pcapng");
        let mut w = Writer::create(&path, "rs1:eth0", "eth0 of rs1", LinkType::Ethernet).unwrap();
        let frames = [
            (vec![1u8; 60], true, 5),
            (vec![2u8; 61], false, 7),
            (vec![3u8; 62], false, 6),
        ];
        for (data, outgoing, ns) in &frames {
            w.write(&Captured {
                data,
                original_len: data.len() as u32,
                timestamp: Duration::new(1_700_000_000, *ns),
                outgoing: *outgoing,
                ifindex: 2,
            })
            .unwrap();
        }
        w.flush().unwrap();
        assert_eq!(w.frames, 3);
        let (link, read) = read_frames(&path).unwrap();
        assert_eq!(link, LinkType::Ethernet);
        let got: Vec<_> = read.iter().map(|f| (f.data.clone(), f.outbound, f.timestamp)).collect();
        assert_eq!(
            got,
            vec![
                (vec![1u8; 60], true, Duration::new(1_700_000_000, 5)),
                (vec![2u8; 61], false, Duration::new(1_700_000_000, 7)),
                (vec![3u8; 62], false, Duration::new(1_700_000_000, 7)),
            ],
            "a frame stamped before the one ahead of it keeps its place and that time"
        );
        let broken = dir.path().join("broken.pcapng");
        std::fs::write(&broken, b"not a capture").unwrap();
        let e = read_frames(&broken).unwrap_err();
        assert!(e.starts_with(&broken.display().to_string()), "{e}");
        // A file cut inside its last frame's block.
        let cut = dir.path().join("cut.pcapng");
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&cut, &whole[..whole.len() - 10]).unwrap();
        let e = read_frames(&cut).unwrap_err();
        assert!(
            e.ends_with("the file ends inside a block (cut short, or still being written)"),
            "{e}"
        );
    }
}
