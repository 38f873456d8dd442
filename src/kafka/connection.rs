//! One client connection: reads frames, decodes headers, runs up to
//! `max_inflight_requests` requests at once and writes their responses in
//! request order. A protocol error (oversized or malformed frame, unknown API
//! key or version) is logged once and closes this connection only.

use std::sync::Arc;

use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

use crate::kafka::ctx::Ctx;
use crate::kafka::dispatch::dispatch;
use crate::protocol::frame::read_frame;
use crate::protocol::header::decode_request;
use crate::protocol::ProtocolError;

pub async fn serve(ctx: Arc<Ctx>, stream: TcpStream) -> Result<(), ProtocolError> {
    let _ = stream.set_nodelay(true);
    // Kafka shows a group member's host as "/ip".
    let client_host: Arc<str> =
        stream.peer_addr().map_or_else(|_| "/".into(), |a| format!("/{}", a.ip()).into());
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut writer = BufWriter::with_capacity(64 * 1024, write);
    let max_frame = ctx.config.socket_request_max_bytes;
    let max_inflight = ctx.config.max_inflight_requests;
    let mut inflight = FuturesOrdered::new();
    let mut reading = true;
    let mut failure: Option<ProtocolError> = None;
    loop {
        tokio::select! {
            frame = read_frame(&mut reader, max_frame), if reading && inflight.len() < max_inflight => {
                match frame {
                    Ok(Some(bytes)) => match decode_request(bytes) {
                        Ok(req) => {
                            let (ctx, host) = (ctx.clone(), client_host.clone());
                            inflight.push_back(async move { dispatch(&ctx, req, &host).await });
                        }
                        Err(e) => { failure = Some(e); reading = false; }
                    },
                    Ok(None) => reading = false,
                    Err(e) => { failure = Some(e); reading = false; }
                }
            }
            Some(reply) = inflight.next(), if !inflight.is_empty() => {
                match reply {
                    Ok(Some(bytes)) => {
                        writer.write_all(&bytes).await?;
                        if inflight.is_empty() {
                            writer.flush().await?;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Answer nothing more on a connection whose request we
                        // could not serve, as Kafka does.
                        writer.flush().await?;
                        return Err(e);
                    }
                }
            }
            else => break,
        }
        if !reading && inflight.is_empty() {
            break;
        }
    }
    writer.flush().await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
