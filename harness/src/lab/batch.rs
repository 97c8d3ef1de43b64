//! Pipelined netlink requests: each is written to the namespace's socket as soon as it is
//! pushed (the kernel handles one socket's requests in order), acks are collected at the end.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use rtnetlink::packet_route::RouteNetlinkMessage;

use super::error::LabError;

type Replies = Pin<Box<dyn Stream<Item = NetlinkMessage<RouteNetlinkMessage>> + Send>>;

pub(crate) const CREATE: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
pub(crate) const CHANGE: u16 = NLM_F_REQUEST | NLM_F_ACK;

pub(crate) struct Batch {
    host: String,
    handle: rtnetlink::Handle,
    pending: Vec<(String, Replies)>,
}

impl Batch {
    pub(crate) fn new(host: &str, handle: &rtnetlink::Handle) -> Self {
        Batch {
            host: host.to_string(),
            handle: handle.clone(),
            pending: Vec::new(),
        }
    }

    /// Sends now; `step` names the request in an error.
    pub(crate) fn push(
        &mut self,
        step: impl Into<String>,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), LabError> {
        let step = step.into();
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = flags;
        match self.handle.request(req) {
            Ok(replies) => {
                self.pending.push((step, Box::pin(replies)));
                Ok(())
            }
            Err(e) => Err(LabError::netlink(&self.host, step, e)),
        }
    }

    /// Waits for every ack; the first refused request (in send order) is the error.
    pub(crate) async fn finish(self) -> Result<(), LabError> {
        let mut first_err = None;
        for (step, mut replies) in self.pending {
            while let Some(reply) = replies.next().await {
                if let NetlinkPayload::Error(err) = reply.payload {
                    if err.code.is_some() && first_err.is_none() {
                        first_err = Some(LabError::netlink(
                            &self.host,
                            step.clone(),
                            rtnetlink::Error::NetlinkError(err),
                        ));
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// The errno of a refused netlink request, if that is what the error is.
pub(crate) fn errno(e: &LabError) -> Option<i32> {
    match e {
        LabError::Netlink {
            source: rtnetlink::Error::NetlinkError(m),
            ..
        } => m.code.map(|c| -c.get()),
        _ => None,
    }
}
