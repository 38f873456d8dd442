//! One client connection: reads frames, decodes headers, runs up to
//! `max_inflight_requests` requests at once and writes their responses in
//! request order. Frames come from `net::FrameReader`, which keeps a partly
//! read frame in its own buffer, so racing it against finished responses in
//! `select!` never loses the client's place in its byte stream. Each frame
//! holds its bytes of the listener's budget until its response is written.
//!
//! A connection ends when the client closes it, on a protocol error (an
//! oversized or malformed frame, an unknown API key or version: logged once by
//! the listener, this connection only), when a begun frame is not finished or
//! a response not taken within `frame_timeout_ms`, or after
//! `connections_max_idle_ms` with nothing received, in flight or sent.

use std::io::IoSlice;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::kafka::dispatch::dispatch;
use crate::net::{Budget, FrameError, FrameReader, Refusal};
use crate::node::Node;
use crate::protocol::header::decode_request;
use crate::protocol::ProtocolError;

const WRITE_BUFFER: usize = 16 * 1024;

/// Why the broker ended a connection.
#[derive(Debug, thiserror::Error)]
pub enum Closed {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("a response was not taken within {0:?}")]
    WriteTimeout(Duration),
    #[error("idle for {0:?}")]
    Idle(Duration),
}

impl Closed {
    /// What `/metrics` counts this as; `None` for the network failing under
    /// us and for our own failures, which are not the client's doing.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Closed::Protocol(e) => match e {
                ProtocolError::Frame(FrameError::TooLarge { .. }) => Some(Refusal::FrameTooLarge),
                ProtocolError::Frame(FrameError::NegativeLength(_)) => Some(Refusal::NegativeLength),
                ProtocolError::Frame(FrameError::Truncated { .. }) => Some(Refusal::Truncated),
                ProtocolError::Frame(FrameError::Timeout(_)) => Some(Refusal::FrameTimeout),
                ProtocolError::Frame(FrameError::Io(_)) | ProtocolError::Io(_) => None,
                ProtocolError::Malformed(_) | ProtocolError::Truncated => Some(Refusal::Malformed),
                ProtocolError::UnknownApiKey(_) => Some(Refusal::UnknownApiKey),
                ProtocolError::UnsupportedVersion { .. } => Some(Refusal::UnsupportedVersion),
                ProtocolError::Encode { .. } => None,
            },
            Closed::WriteTimeout(_) => Some(Refusal::WriteTimeout),
            Closed::Idle(_) => Some(Refusal::Idle),
        }
    }
}

pub async fn serve(ctx: Arc<Node>, stream: TcpStream, budget: &Budget) -> Result<(), Closed> {
    let _ = stream.set_nodelay(true);
    // Kafka shows a group member's host as "/ip".
    let client_host: Arc<str> =
        stream.peer_addr().map_or_else(|_| "/".into(), |a| format!("/{}", a.ip()).into());
    let (read, write) = stream.into_split();
    let frame_timeout = ctx.config.frame_timeout;
    let mut frames = FrameReader::new(read, ctx.config.socket_request_max_bytes, frame_timeout);
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, write);
    let max_inflight = ctx.config.max_inflight_requests;
    let idle_timeout = ctx.config.connections_max_idle;
    let mut inflight = FuturesOrdered::new();
    let mut reading = true;
    let mut was_full = false;
    let mut failure: Option<ProtocolError> = None;
    let mut last_active = Instant::now();
    let timer = tokio::time::sleep(idle_timeout);
    tokio::pin!(timer);
    loop {
        let can_read = reading && inflight.len() < max_inflight;
        if can_read && was_full {
            // We stopped reading, not the client: its frame clock restarts.
            frames.restart_clock();
        }
        was_full = reading && !can_read;
        // Idle means nothing in flight and no frame arriving (a begun frame
        // has its own, shorter deadline inside the reader).
        let idle = inflight.is_empty() && !frames.in_frame();
        timer.as_mut().reset(if idle { last_active + idle_timeout } else { Instant::now() + idle_timeout });
        tokio::select! {
            frame = frames.next(budget), if can_read => {
                match frame {
                    Ok(Some(frame)) => {
                        last_active = Instant::now();
                        match decode_request(frame.body) {
                            Ok(req) => {
                                let (ctx, host, reservation) = (ctx.clone(), client_host.clone(), frame.reservation);
                                inflight.push_back(async move {
                                    let reply = dispatch(&ctx, req, &host).await;
                                    drop(reservation);
                                    reply
                                });
                            }
                            Err(e) => { failure = Some(e); reading = false; }
                        }
                    }
                    Ok(None) => reading = false,
                    Err(e) => { failure = Some(e.into()); reading = false; }
                }
            }
            Some(reply) = inflight.next(), if !inflight.is_empty() => {
                last_active = Instant::now();
                match reply {
                    Ok(Some(frame)) => {
                        if frame.len() < WRITE_BUFFER {
                            for part in frame.parts() {
                                within(frame_timeout, writer.write_all(part)).await?;
                            }
                        } else {
                            // A large frame (a fetch's record batches among
                            // its pieces) goes to the socket from where its
                            // pieces lie, in vectored writes.
                            within(frame_timeout, writer.flush()).await?;
                            within(frame_timeout, write_all_vectored(writer.get_mut(), frame.parts().collect())).await?;
                        }
                        if inflight.is_empty() {
                            within(frame_timeout, writer.flush()).await?;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Answer nothing more on a connection whose request we
                        // could not serve, as Kafka does.
                        within(frame_timeout, writer.flush()).await?;
                        return Err(e.into());
                    }
                }
            }
            () = &mut timer => {
                if inflight.is_empty() && !frames.in_frame() {
                    return Err(Closed::Idle(idle_timeout));
                }
            }
        }
        if !reading && inflight.is_empty() {
            break;
        }
    }
    within(frame_timeout, writer.flush()).await?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Writes every byte of `parts`, in order, as few system calls as the
/// socket takes them in.
async fn write_all_vectored<W: AsyncWrite + Unpin>(w: &mut W, parts: Vec<&[u8]>) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.into_iter().map(IoSlice::new).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = w.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// A write the client must take within `limit`.
async fn within(
    limit: Duration,
    write: impl std::future::Future<Output = std::io::Result<()>>,
) -> Result<(), Closed> {
    match tokio::time::timeout(limit, write).await {
        Ok(result) => result.map_err(|e| Closed::Protocol(e.into())),
        Err(_) => Err(Closed::WriteTimeout(limit)),
    }
}
