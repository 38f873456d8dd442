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

/// `method path` with a JSON body → (status, JSON body or null).
async fn call(
    addr: std::net::SocketAddr,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().request(method, format!("http://{addr}{path}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (status, if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
}

fn stored_keys(b: &TestBroker, group: u64) -> usize {
    let storage = b.broker().storage();
    let (from, to) = (raftka::storage::keys::group_start(group), raftka::storage::keys::group_end(group));
    raftka::storage::Cf::ALL
        .iter()
        .map(|cf| {
            let mut n = 0;
            storage
                .for_each(*cf, &from, &to, |_, _| {
                    n += 1;
                    true
                })
                .unwrap();
            n
        })
        .sum()
}

#[tokio::test]
async fn deleting_a_topic_over_http_removes_its_data() {
    use reqwest::Method;
    use serde_json::json;
    let b = TestBroker::start().await;
    let addr = b.broker().http_addr;
    let (status, topic) =
        call(addr, Method::POST, "/v1/topics", Some(json!({"name": "doomed", "partitions": 1}))).await;
    assert_eq!(status, 201, "{topic}");
    let records: Vec<_> = (0..50).map(|i| json!({"value": format!("v{i}")})).collect();
    let (status, produced) =
        call(addr, Method::POST, "/v1/topics/doomed/records", Some(json!({ "records": records }))).await;
    assert_eq!(status, 200, "{produced}");
    assert_eq!(produced["offsets"][49]["offset"], 49);
    let group = b.broker().metadata.state().topic("doomed").unwrap().partitions[0].group;
    assert!(stored_keys(&b, group) > 0);
    // Another node's late report about the topic (`partition::hints`), of a
    // term the topic created again will not reach for a long while.
    b.broker().partitions.hints().record(group, 99, 1_000);

    assert_eq!(call(addr, Method::DELETE, "/v1/topics/doomed", None).await, (204, serde_json::Value::Null));
    wait_until(Duration::from_secs(10), "the partition's data removed", || async {
        stored_keys(&b, group) == 0
    })
    .await;
    let (status, body) = call(addr, Method::GET, "/v1/topics/doomed", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(call(addr, Method::DELETE, "/v1/topics/doomed", None).await.0, 404);

    // Created again under its name, the topic is a new one: empty, and led by
    // its own replicas, not by what was reported of the old one.
    let (status, again) =
        call(addr, Method::POST, "/v1/topics", Some(json!({"name": "doomed", "partitions": 1}))).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["partitions"][0]["leader"], b.broker().node_id, "{again}");
    assert_eq!(again["partitions"][0]["high_watermark"], 0, "{again}");
    b.stop().await;
}

/// The router's handlers over the node's services, called as a `tower`
/// service: no socket, no HTTP server.
#[tokio::test]
async fn handlers_answer_without_a_socket() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    let b = TestBroker::start().await;
    let api = std::sync::Arc::new(raftka::http::Api {
        node: b.broker().node().clone(),
        peers: Default::default(),
        events: std::sync::Arc::new(raftka::events::Events::default()),
        storage: b.broker().storage().clone(),
        shutdown: tokio_util::sync::CancellationToken::new(),
        next_partition: Default::default(),
    });
    let app = raftka::http::router(api);
    let send = |req: Request<Body>| {
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default())
        }
    };
    let json = |method: &str, path: &str, body: &'static str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };

    let (status, created) = send(json("POST", "/v1/topics", r#"{"name": "direct", "partitions": 2}"#)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["partitions"].as_array().map(Vec::len), Some(2));
    let (status, described) = send(Request::get("/v1/topics/direct").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(described["name"], "direct");
    let (status, refused) = send(json("POST", "/v1/topics", "{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(refused["error"].is_string());
    let (status, _) = send(Request::delete("/v1/topics/none-such").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    b.stop().await;
}
