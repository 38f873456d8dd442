//! Bad input against a live listener: random bytes, truncated frames, huge
//! length prefixes, unknown API keys and versions. Each may close its own
//! connection; none may crash the broker or disturb other connections.

use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::ResponseError;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use tokio::io::AsyncWriteExt;

use crate::common::{i16_at, Client, TestBroker};

async fn still_serves(b: &TestBroker) {
    let mut c = Client::connect(b.kafka_addr()).await;
    let resp: MetadataResponse = c.send(ApiKey::Metadata, 12, &MetadataRequest::default()).await;
    assert_eq!(resp.brokers.len(), 1, "broker still answers Metadata");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_their_connection() {
    let b = TestBroker::start_with(|c| c.socket_request_max_bytes = 1024 * 1024).await;
    let addr = b.kafka_addr();
    // A healthy connection opened before the abuse keeps working after it.
    let mut healthy = Client::connect(addr).await;

    let cases: Vec<Vec<u8>> = vec![
        vec![0x7f, 0xff, 0xff, 0xff],                             // 2 GiB length prefix
        vec![0xff, 0xff, 0xff, 0xfe],                             // negative length
        vec![0, 0, 0, 2, 0, 3],                                   // frame shorter than a header
        vec![0, 0, 0, 8, 0x7f, 0x00, 0, 0, 0, 0, 0, 1],           // unknown api key 32512
        vec![0, 0, 0, 10, 0, 3, 0x7f, 0, 0, 0, 0, 1, 0xff, 0xff], // Metadata v32512
    ];
    for bytes in cases {
        let mut c = Client::connect(addr).await;
        c.stream.write_all(&bytes).await.expect("write");
        assert!(c.is_closed().await, "connection closed after {bytes:?}");
    }
    // A frame announced but never finished: closing our side must not hurt.
    let mut c = Client::connect(addr).await;
    c.stream.write_all(&[0, 0, 1, 0, 0, 18]).await.expect("write");
    drop(c);

    let resp: MetadataResponse = healthy.send(ApiKey::Metadata, 1, &MetadataRequest::default()).await;
    assert_eq!(resp.brokers.len(), 1);
    still_serves(&b).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_never_crash_the_broker() {
    let b = TestBroker::start().await;
    let addr = b.kafka_addr();
    let mut runner = TestRunner::new(PropConfig { cases: 64, ..PropConfig::default() });
    let strategy = proptest::collection::vec(any::<u8>(), 0..512);
    let mut inputs = Vec::new();
    for _ in 0..64 {
        inputs.push(strategy.new_tree(&mut runner).expect("value").current());
    }
    for data in inputs {
        // Half the inputs get a valid length prefix so the body is parsed.
        for framed in [false, true] {
            let mut c = Client::connect(addr).await;
            let mut bytes = Vec::new();
            if framed {
                bytes.extend_from_slice(&(data.len() as i32).to_be_bytes());
            }
            bytes.extend_from_slice(&data);
            let _ = c.stream.write_all(&bytes).await;
            let _ = c.stream.shutdown().await;
        }
    }
    still_serves(&b).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_api_versions_version_gets_v0_error_with_ranges() {
    let b = TestBroker::start().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    // ApiVersions v9 (from the future): a v4 request relabelled as v9.
    let mut frame = c.encode(ApiKey::ApiVersions, 4, &ApiVersionsRequest::default());
    frame[6..8].copy_from_slice(&9i16.to_be_bytes());
    c.stream.write_all(&frame).await.expect("write");
    let body = c.read_frame().await.expect("a response");
    // v0 response header: correlation id only; then the v0 body.
    assert_eq!(i16_at(&body, 4), ResponseError::UnsupportedVersion.code());
    let mut rest = body.slice(4..);
    let resp =
        <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut rest, 0).expect("v0 body");
    assert!(resp.api_keys.iter().any(|k| k.api_key == ApiKey::Produce as i16 && k.min_version == 0));

    // The current versions answer normally, with flexible v3+.
    for v in [0, 3, 4] {
        let resp: ApiVersionsResponse = c.send(ApiKey::ApiVersions, v, &ApiVersionsRequest::default()).await;
        assert_eq!(resp.error_code, 0);
        let fetch =
            resp.api_keys.iter().find(|k| k.api_key == ApiKey::Fetch as i16).expect("fetch advertised");
        assert!(fetch.max_version >= 10);
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let b = TestBroker::start().await;
    let mut c = Client::connect(b.kafka_addr()).await;
    let mut frames = Vec::new();
    for i in 0..20 {
        let f = if i % 2 == 0 {
            c.encode(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        } else {
            c.encode(ApiKey::Metadata, 12, &MetadataRequest::default())
        };
        frames.extend_from_slice(&f);
    }
    c.stream.write_all(&frames).await.expect("write");
    for expected in 1..=20 {
        let body = c.read_frame().await.expect("response");
        let correlation = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        assert_eq!(correlation, expected);
    }
    b.stop().await;
}

/// Every API and version ApiVersions advertises is routed: a request of it
/// is answered (Produce v0-2, advertised for old librdkafka but refused as
/// Kafka 4.0 does, close the connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_api_and_version_is_routed() {
    let b = TestBroker::start().await;
    let seeds = crate::fuzz::corpus::default_seeds();
    let advertised: usize =
        raftka::kafka::dispatch::ROUTES.iter().map(|r| (r.max - r.min + 1) as usize).sum();
    assert_eq!(seeds.len(), advertised);
    for seed in seeds {
        let mut c = Client::connect(b.kafka_addr()).await;
        c.stream.write_all(&seed.frame).await.expect("write");
        let answered = tokio::time::timeout(std::time::Duration::from_secs(10), c.read_frame()).await;
        let refused = seed.api == ApiKey::Produce && seed.version < 3;
        match answered {
            Ok(Some(_)) => assert!(!refused, "{:?} v{} was answered", seed.api, seed.version),
            Ok(None) => assert!(refused, "{:?} v{} closed the connection", seed.api, seed.version),
            Err(_) => panic!("{:?} v{} neither answered nor closed", seed.api, seed.version),
        }
    }
    b.stop().await;
}
