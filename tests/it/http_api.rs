//! The admin HTTP port of a live broker, over a real socket.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{wait_until, TestBroker};

/// `GET path` → (status, JSON body), with a one-shot HTTP/1.1 connection.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1;
    (status, serde_json::from_str(body).unwrap())
}

#[tokio::test]
async fn health_ready_and_json_404() {
    let b = TestBroker::start().await;
    let addr = b.broker().http_addr;
    let (status, body) = get(addr, "/v1/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    wait_until(Duration::from_secs(10), "ready", || async { get(addr, "/v1/ready").await.0 == 200 }).await;
    let (_, body) = get(addr, "/v1/ready").await;
    assert_eq!(body["leaderless_partitions"], 0);
    let (status, body) = get(addr, "/nope").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    b.stop().await;
}
