//! The test harness: in-process brokers on `127.0.0.1:0` with a fresh temp
//! dir each, and a minimal Kafka client built on `kafka-protocol`, so tests
//! speak the real wire protocol over real sockets.

#![allow(dead_code)]

pub mod cluster;
pub mod ops;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use raftka::broker::Broker;
use raftka::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One in-process broker and the directory it keeps its data in.
pub struct TestBroker {
    pub broker: Option<Broker>,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

/// Raft ports are bound by number (peers know each other by address), so
/// they come from below the ephemeral range (32,768 up), a stretch per test
/// process: at most 20,000 + 399 × 25 + 2,499 = 32,474.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 400) as u16 * 25;
    loop {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 2_500;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn test_config(data_dir: PathBuf) -> Config {
    Config {
        kafka_addr: "127.0.0.1:0".into(),
        http_addr: "127.0.0.1:0".into(),
        // By number: a restarted broker must find its port again.
        raft_addr: format!("127.0.0.1:{}", free_port()),
        data_dir,
        raft_heartbeat_interval: Duration::from_millis(50),
        raft_election_timeout: Duration::from_millis(150),
        // Tests write records with small, fixed timestamps; the default seven
        // days would expire them. Retention tests set it per topic.
        log_retention: None,
        // The in-process client reconnects at once: a returning replica
        // need not wait for clients' reconnect back-off.
        leader_return_delay: Duration::ZERO,
        ..Config::default()
    }
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path().join("node"));
        tweak(&mut config);
        let broker = Broker::start(config.clone()).await.expect("broker starts");
        Self { broker: Some(broker), dir, config }
    }

    pub fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("broker running")
    }

    pub fn kafka_addr(&self) -> SocketAddr {
        self.broker().kafka_addr
    }

    /// Graceful stop, then a new broker on the same data dir. The Raft
    /// listener must come back on the same port, as peers know it by address.
    pub async fn restart(&mut self) {
        let old = self.broker.take().expect("broker running");
        let raft_addr = old.raft_addr;
        old.shutdown().await;
        self.config.raft_addr = raft_addr.to_string();
        self.broker = Some(Broker::start(self.config.clone()).await.expect("broker restarts"));
    }

    pub async fn stop(mut self) {
        if let Some(b) = self.broker.take() {
            b.shutdown().await;
        }
    }
}

/// Polls `cond` until it holds or `timeout` passes; panics with `what`.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A bare Kafka client: one connection, typed requests and responses.
pub struct Client {
    pub stream: TcpStream,
    correlation: i32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::from_stream(TcpStream::connect(addr).await.expect("connect"))
    }

    pub fn from_stream(stream: TcpStream) -> Self {
        Self { stream, correlation: 0 }
    }

    pub fn encode<Req: Encodable + HeaderVersion>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> BytesMut {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(sb("raftka-test")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, Req::header_version(version)).expect("encode header");
        req.encode(&mut buf, version).expect("encode request");
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        buf
    }

    pub async fn send<Req, Resp>(&mut self, key: ApiKey, version: i16, req: &Req) -> Resp
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let frame = self.encode(key, version, req);
        self.stream.write_all(&frame).await.expect("write request");
        self.read_response::<Resp>(version).await.expect("a response")
    }

    /// Reads one response frame; `None` if the broker closed the connection.
    pub async fn read_response<Resp: Decodable + HeaderVersion>(&mut self, version: i16) -> Option<Resp> {
        let mut body = self.read_frame().await?;
        ResponseHeader::decode(&mut body, Resp::header_version(version)).expect("response header");
        Some(Resp::decode(&mut body, version).expect("response body"))
    }

    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await.ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(Bytes::from(body))
    }

    /// True once the broker has closed this connection.
    pub async fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut byte)).await;
        matches!(read, Ok(Ok(0)) | Ok(Err(_)))
    }
}

/// Reads the i16 at `at` of a frame (e.g. an error code).
pub fn i16_at(b: &Bytes, at: usize) -> i16 {
    (&b[at..at + 2]).get_i16()
}
