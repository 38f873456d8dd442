"""The admin HTTP API against a live 3-node cluster: every endpoint, its error
cases, forwarding from nodes that do not own the request, Kafka clients and
HTTP on the same topics, the events stream, and the cluster page in headless
Chromium."""
import base64
import json
import os
import re
import threading
import time
import urllib.request

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from conftest import ROOT, wait_for

ARTIFACTS = os.environ.get("RAFTKA_ARTIFACTS", os.path.join(ROOT, "artifacts"))


def controller(c):
    status, body = c.api(1, "GET", "/v1/cluster")
    assert status == 200, body
    return body["controller"]["node_id"]


def follower_of_controller(c):
    """A node that is not the metadata leader: its topic writes must be forwarded."""
    lead = wait_for(lambda: controller(c), 10, "a controller")
    return next(n for n in (1, 2, 3) if n != lead)


def create(c, node, name, **fields):
    status, body = c.api(node, "POST", "/v1/topics", {"name": name, **fields})
    assert status == 201, body
    return body


def partition_leader(c, topic, partition, node=1):
    def known():
        status, body = c.api(node, "GET", f"/v1/topics/{topic}")
        return status == 200 and body["partitions"][partition]["leader"]
    return wait_for(known, 15, f"a leader of {topic}/{partition}")


# ---------------------------------------------------------------- cluster


def test_cluster_view_on_every_node(shared_cluster):
    c = shared_cluster
    create(c, 1, "cluster-view", partitions=4, replication_factor=3)
    views = [c.api(n, "GET", "/v1/cluster")[1] for n in (1, 2, 3)]
    assert len({v["cluster_id"] for v in views}) == 1 and views[0]["cluster_id"]
    for v in views:
        assert v["controller"]["node_id"] in (1, 2, 3) and v["controller"]["term"] >= 1
        assert [n["id"] for n in v["nodes"]] == [1, 2, 3]
        for n in v["nodes"]:
            assert n["alive"] and n["is_controller_voter"]
            assert n["kafka_addr"] == c.bootstrap(n["id"])
            assert n["http_addr"] == c.http_addr(n["id"])
            assert re.fullmatch(r"127\.0\.0\.1:\d+", n["raft_addr"])
    total = sum(t["partitions"] for t in c.api(1, "GET", "/v1/topics")[1])
    wait_for(lambda: sum(n["leader_count"] for n in c.api(2, "GET", "/v1/cluster")[1]["nodes"]) == total, 15,
             "leader counts adding up to the partition count")
    for n in (1, 2, 3):
        assert c.api(n, "GET", "/v1/health") == (200, {"status": "ok", "node_id": n})
        wait_for(lambda: c.api(n, "GET", "/v1/ready")[0] == 200, 15, f"node {n} ready")


# ---------------------------------------------------------------- topics


def test_topic_lifecycle_through_a_follower(shared_cluster):
    c = shared_cluster
    node = follower_of_controller(c)
    other = next(n for n in (1, 2, 3) if n != node)
    topic = create(c, node, "lifecycle", partitions=2, replication_factor=3, configs={"retention.ms": 3600000})
    assert topic["name"] == "lifecycle" and len(topic["id"]) == 36
    assert [p["id"] for p in topic["partitions"]] == [0, 1]
    for p in topic["partitions"]:
        assert sorted(p["replicas"]) == [1, 2, 3]
        assert p["leader"] in p["replicas"] and p["leader_term"] >= 1
        assert p["high_watermark"] == 0 and p["log_start_offset"] == 0
        assert sorted(p["isr"]) == [1, 2, 3]
    assert topic["configs"]["retention.ms"] == "3600000"
    assert topic["overrides"] == {"retention.ms": "3600000"}

    status, listed = c.api(other, "GET", "/v1/topics")
    assert status == 200
    assert {"name": "lifecycle", "partitions": 2, "replication_factor": 3, "internal": False} in listed

    status, grown = c.api(node, "POST", "/v1/topics/lifecycle/partitions", {"count": 5})
    assert status == 200, grown
    assert len(grown["partitions"]) == 5 and all(p["leader"] for p in grown["partitions"])
    status, body = c.api(node, "POST", "/v1/topics/lifecycle/partitions", {"count": 5})
    assert status == 400 and "larger" in body["error"]

    status, altered = c.api(node, "PATCH", "/v1/topics/lifecycle/configs",
                            {"retention.bytes": 1048576, "cleanup.policy": "delete", "retention.ms": None})
    assert status == 200, altered
    assert altered["overrides"] == {"retention.bytes": "1048576", "cleanup.policy": "delete"}
    assert altered["configs"]["retention.ms"] == "604800000"
    status, seen = c.api(other, "GET", "/v1/topics/lifecycle")
    assert status == 200 and len(seen["partitions"]) == 5

    # Data goes with the topic: a topic re-created under the name starts empty.
    assert c.api(node, "POST", "/v1/topics/lifecycle/records", {"records": [{"value": "x", "partition": 0}]})[0] == 200
    assert c.api(node, "DELETE", "/v1/topics/lifecycle") == (204, None)
    wait_for(lambda: all(c.api(n, "GET", "/v1/topics/lifecycle")[0] == 404 for n in (1, 2, 3)), 10,
             "the topic gone on every node")

    def replica_gone(n):
        with urllib.request.urlopen(f"http://{c.http_addr(n)}/metrics", timeout=10) as r:
            return 'topic="lifecycle"' not in r.read().decode()
    # Every node stopped its replicas (the Rust test `deleting_a_topic_over_http_removes_its_data`
    # checks that stopping a deleted topic's replica removes its data).
    wait_for(lambda: all(replica_gone(n) for n in (1, 2, 3)), 10, "every node's replicas of the topic stopped")
    again = create(c, other, "lifecycle", partitions=1, replication_factor=3)
    assert again["id"] != topic["id"] and again["partitions"][0]["high_watermark"] == 0


@pytest.mark.parametrize("body, status, message", [
    ({"name": ""}, 400, "empty"),
    ({"name": "."}, 400, "reserved"),
    ({"name": ".."}, 400, "reserved"),
    ({"name": "has/slash"}, 400, "only ASCII"),
    ({"name": "x" * 250}, 400, "249"),
    ({"name": "ok", "partitions": 0}, 400, "partition count"),
    ({"name": "ok", "partitions": -3}, 400, "partition count"),
    ({"name": "ok", "replication_factor": 0}, 400, "replication factor"),
    ({"name": "ok", "replication_factor": 4}, 400, "replication factor"),
    ({"name": "ok", "configs": {"no.such.config": "1"}}, 400, "unknown topic config"),
    ({"name": "ok", "configs": {"retention.ms": "soon"}}, 400, "invalid value"),
    ({"name": "ok", "configs": {"cleanup.policy": "shred"}}, 400, "invalid value"),
    ({"name": "ok", "partitons": 3}, 400, "unknown field"),
    ({"partitions": 3}, 400, "name"),
])
def test_create_topic_refusals(shared_cluster, body, status, message):
    got, answer = shared_cluster.api(2, "POST", "/v1/topics", body)
    assert got == status, answer
    assert message in answer["error"], answer
    assert shared_cluster.api(1, "GET", "/v1/topics/ok")[0] == 404


def test_topic_errors(shared_cluster):
    c = shared_cluster
    create(c, 1, "exists", partitions=1, replication_factor=1)
    status, body = c.api(3, "POST", "/v1/topics", {"name": "exists"})
    assert status == 409 and "already exists" in body["error"]
    # Not JSON: without a JSON content type, and malformed.
    status, body = c.api(1, "POST", "/v1/topics", raw=b"name=x", content_type="application/x-www-form-urlencoded")
    assert status == 415 and "JSON" in body["error"]
    status, body = c.api(1, "POST", "/v1/topics", raw=b"{not json")
    assert status == 400 and body["error"]
    for method, path, body in [("GET", "/v1/topics/absent", None), ("DELETE", "/v1/topics/absent", None),
                               ("POST", "/v1/topics/absent/partitions", {"count": 3}),
                               ("PATCH", "/v1/topics/absent/configs", {"retention.ms": "1000"})]:
        status, answer = c.api(2, method, path, body)
        assert status == 404 and "does not exist" in answer["error"], (method, path, answer)
    status, body = c.api(1, "PATCH", "/v1/topics/exists/configs", {"nope": "1"})
    assert status == 400 and "unknown" in body["error"]
    status, body = c.api(1, "POST", "/v1/topics/exists/partitions", {"count": "three"})
    assert status == 400
    status, body = c.api(1, "GET", "/v1/no/such/route")
    assert status == 404 and body["error"]
    status, body = c.api(1, "PUT", "/v1/topics")
    assert status == 405 and body["error"]


# ---------------------------------------------------------------- Kafka clients and HTTP together


def test_http_topic_usable_by_kafka_python_and_vice_versa(shared_cluster):
    c = shared_cluster
    create(c, 2, "from-http", partitions=3, replication_factor=3)
    producer = KafkaProducer(bootstrap_servers=c.bootstrap(), acks="all")
    keyed = {}
    for i in range(30):
        md = producer.send("from-http", key=f"k{i}".encode(), value=f"v{i}".encode()).get(timeout=30)
        keyed[f"k{i}"] = md.partition
    producer.close()
    seen = {}
    for p in range(3):
        status, page = c.api(3, "GET", f"/v1/topics/from-http/partitions/{p}/records?max=1000")
        assert status == 200, page
        for r in page["records"]:
            seen[r["key"]] = (p, r["value"])
    assert seen == {k: (p, "v" + k[1:]) for k, p in keyed.items()}

    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap())
    admin.create_topics([NewTopic("from-kafka", num_partitions=3, replication_factor=3)])
    admin.close()
    wait_for(lambda: c.api(1, "GET", "/v1/topics/from-kafka")[0] == 200, 10, "the topic visible over HTTP")
    records = [{"key": f"k{i}", "value": f"v{i}"} for i in range(30)]
    status, produced = c.api(1, "POST", "/v1/topics/from-kafka/records", {"records": records})
    assert status == 200, produced
    # The REST proxy partitions keys as Kafka clients do (murmur2).
    assert [o["partition"] for o in produced["offsets"]] == [keyed[f"k{i}"] for i in range(30)]
    consumer = KafkaConsumer(bootstrap_servers=c.bootstrap(), group_id=None, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("from-kafka", p) for p in range(3)])
    got = {}
    deadline = time.monotonic() + 30
    while len(got) < 30 and time.monotonic() < deadline:
        for tp, msgs in consumer.poll(timeout_ms=500).items():
            for m in msgs:
                got[m.key.decode()] = (tp.partition, m.offset, m.value.decode())
    consumer.close()
    assert got == {f"k{i}": (o["partition"], o["offset"], f"v{i}") for i, o in enumerate(produced["offsets"])}


# ---------------------------------------------------------------- REST records


def test_rest_produce_and_read_through_any_node(shared_cluster):
    c = shared_cluster
    create(c, 1, "rest", partitions=2, replication_factor=3)
    lead = partition_leader(c, "rest", 0)
    node = next(n for n in (1, 2, 3) if n != lead)
    # Sent to a node that does not lead partition 0: forwarded to the leader.
    body = {"records": [
        {"value": "plain text", "partition": 0},
        {"key": "user-1", "value": {"clicks": 3}, "partition": 0, "headers": {"source": "test"}},
        {"value": None, "key": "tombstone", "partition": 0},
    ]}
    status, produced = c.api(node, "POST", "/v1/topics/rest/records", body)
    assert status == 200, produced
    assert produced["offsets"] == [{"partition": 0, "offset": i} for i in range(3)]
    raw = bytes(range(256))
    status, produced = c.api(node, "POST", "/v1/topics/rest/records", {
        "format": "base64", "records": [{"key": base64.b64encode(b"\x00k").decode(),
                                         "value": base64.b64encode(raw).decode(), "partition": 0}]})
    assert status == 200 and produced["offsets"] == [{"partition": 0, "offset": 3}], produced

    for reader in (1, 2, 3):
        status, page = c.api(reader, "GET", "/v1/topics/rest/partitions/0/records?offset=0&max=3")
        assert status == 200, page
        assert [r["offset"] for r in page["records"]] == [0, 1, 2]
        assert page["records"][0]["value"] == "plain text" and page["records"][0]["key"] is None
        assert json.loads(page["records"][1]["value"]) == {"clicks": 3}
        assert page["records"][1]["headers"] == {"source": "test"}
        assert page["records"][2]["value"] is None
        assert page["next_offset"] == 3 and page["high_watermark"] == 4 and page["log_start_offset"] == 0
    status, page = c.api(node, "GET", "/v1/topics/rest/partitions/0/records?offset=3&format=base64")
    assert status == 200 and len(page["records"]) == 1, page
    assert base64.b64decode(page["records"][0]["value"]) == raw
    assert base64.b64decode(page["records"][0]["key"]) == b"\x00k"
    status, page = c.api(node, "GET", "/v1/topics/rest/partitions/0/records?offset=4")
    assert status == 200 and page["records"] == [] and page["next_offset"] == 4

    # Unkeyed records without a partition go to one partition per request, in turn.
    spread = set()
    for _ in range(4):
        status, produced = c.api(node, "POST", "/v1/topics/rest/records", {"records": [{"value": "a"}, {"value": "b"}]})
        assert status == 200
        assert len({o["partition"] for o in produced["offsets"]}) == 1
        spread.add(produced["offsets"][0]["partition"])
    assert spread == {0, 1}


def test_rest_records_errors(shared_cluster):
    c = shared_cluster
    create(c, 1, "rest-errors", partitions=1, replication_factor=3)
    cases = [
        ("POST", "/v1/topics/absent/records", {"records": [{"value": "x"}]}, 404, "does not exist"),
        ("POST", "/v1/topics/rest-errors/records", {"records": []}, 400, "no records"),
        ("POST", "/v1/topics/rest-errors/records", {"records": [{"value": "x", "partition": 1}]}, 400, "out of range"),
        ("POST", "/v1/topics/rest-errors/records", {"format": "base64", "records": [{"value": "%%%"}]}, 400, "base64"),
        ("POST", "/v1/topics/rest-errors/records", {"format": "yaml", "records": []}, 400, "format"),
        ("POST", "/v1/topics/rest-errors/records", {"records": [{"value": "x" * 1_100_000}]}, 413, "max.message.bytes"),
        ("GET", "/v1/topics/absent/partitions/0/records", None, 404, "does not exist"),
        ("GET", "/v1/topics/rest-errors/partitions/7/records", None, 404, "does not exist"),
        ("GET", "/v1/topics/rest-errors/partitions/x/records", None, 400, "partition number"),
        ("GET", "/v1/topics/rest-errors/partitions/0/records?offset=5", None, 416, "outside"),
        ("GET", "/v1/topics/rest-errors/partitions/0/records?max=0", None, 400, "max"),
        ("GET", "/v1/topics/rest-errors/partitions/0/records?offset=abc", None, 400, "offset"),
    ]
    for method, path, body, status, message in cases:
        got, answer = c.api(3, method, path, body)
        assert got == status and message in answer["error"], (method, path, got, answer)
    # Nothing half-written by the refusals.
    assert c.api(2, "GET", "/v1/topics/rest-errors")[1]["partitions"][0]["high_watermark"] == 0


# ---------------------------------------------------------------- groups


def test_groups_list_and_describe_with_lag(shared_cluster):
    c = shared_cluster
    create(c, 1, "grouped", partitions=2, replication_factor=3)
    records = [{"value": f"r{i}", "partition": i % 2} for i in range(10)]
    assert c.api(1, "POST", "/v1/topics/grouped/records", {"records": records})[0] == 200
    consumer = KafkaConsumer("grouped", bootstrap_servers=c.bootstrap(), group_id="http-group",
                             auto_offset_reset="earliest", enable_auto_commit=False, client_id="lag-checker")
    got = 0
    deadline = time.monotonic() + 30
    while got < 6 and time.monotonic() < deadline:
        for msgs in consumer.poll(timeout_ms=500, max_records=6 - got).values():
            got += len(msgs)
    assert got == 6
    consumer.commit()
    committed = {p: consumer.committed(TopicPartition("grouped", p)) for p in (0, 1)}
    try:
        listed = [c.api(n, "GET", "/v1/groups")[1] for n in (1, 2, 3)]
        for groups in listed:
            entry = next(g for g in groups if g["group_id"] == "http-group")
            assert entry["state"] == "Stable" and entry["protocol_type"] == "consumer"
        coordinator = entry["coordinator"]
        for node in (1, 2, 3):  # two of them forward to the coordinator
            status, g = c.api(node, "GET", "/v1/groups/http-group")
            assert status == 200, g
            assert g["coordinator"] == coordinator and g["state"] == "Stable" and g["protocol"] == "range"
            [member] = g["members"]
            assert member["client_id"] == "lag-checker" and member["client_host"]
            assert member["assignment"] == [{"topic": "grouped", "partitions": [0, 1]}]
            offsets = {o["partition"]: o for o in g["offsets"]}
            assert {p: o["committed"] for p, o in offsets.items()} == committed
            for p, o in offsets.items():
                assert o["high_watermark"] == 5 and o["lag"] == 5 - committed[p]
            assert sum(o["lag"] for o in offsets.values()) == 4
    finally:
        consumer.close()
    wait_for(lambda: c.api(2, "GET", "/v1/groups/http-group")[1]["state"] == "Empty", 15, "the group empty")
    status, body = c.api(2, "GET", "/v1/groups/no-such-group")
    assert status == 404 and "does not exist" in body["error"]


# ---------------------------------------------------------------- metrics and OpenAPI


def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if m and all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            return float(m.group(2))
    raise AssertionError(f"no {name}{{{want}}} in /metrics")


def test_metrics(shared_cluster):
    c = shared_cluster
    create(c, 1, "metered", partitions=1, replication_factor=3)
    lead = partition_leader(c, "metered", 0)
    producer = KafkaProducer(bootstrap_servers=c.bootstrap(), acks="all")
    for i in range(20):
        producer.send("metered", value=b"m%d" % i).get(timeout=30)
    producer.close()
    with urllib.request.urlopen(f"http://{c.http_addr(lead)}/metrics", timeout=10) as r:
        assert r.status == 200 and "text" in r.headers["Content-Type"]
        text = r.read().decode()
    assert metric(text, "raftka_kafka_requests_total", api="Produce") >= 20
    assert metric(text, "raftka_kafka_request_duration_seconds_count", api="Produce") >= 20
    assert metric(text, "raftka_kafka_request_duration_seconds_bucket", api="Produce", le="+Inf") >= 20
    assert metric(text, "raftka_raft_commit_duration_seconds_count") >= 20
    assert metric(text, "raftka_partition_high_watermark", topic="metered", partition="0") == 20
    assert metric(text, "raftka_partition_log_start_offset", topic="metered", partition="0") == 0
    assert metric(text, "raftka_partition_is_leader", topic="metered", partition="0") == 1
    assert metric(text, "raftka_partition_raft_term", topic="metered", partition="0") >= 1
    for replica in (1, 2, 3):
        assert metric(text, "raftka_partition_replica_lag_records", topic="metered", partition="0",
                      replica=replica) >= 0
    assert metric(text, "raftka_metadata_raft_term") >= 1
    assert metric(text, "raftka_metadata_leader") in (1, 2, 3)
    assert metric(text, "raftka_node_alive", node="1") == 1
    assert metric(text, "raftka_raft_elections_total") >= 0
    assert metric(text, "raftka_rocksdb_sst_bytes", cf="records") >= 0
    assert metric(text, "raftka_rocksdb_memtable_bytes", cf="records") > 0


def test_openapi_document(shared_cluster):
    status, doc = shared_cluster.api(3, "GET", "/v1/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path, methods in {
        "/v1/health": ["get"], "/v1/ready": ["get"], "/v1/cluster": ["get"], "/v1/cluster/events": ["get"],
        "/metrics": ["get"], "/v1/topics": ["get", "post"], "/v1/topics/{name}": ["get", "delete"],
        "/v1/topics/{name}/partitions": ["post"], "/v1/topics/{name}/configs": ["patch"],
        "/v1/topics/{name}/records": ["post"], "/v1/topics/{name}/partitions/{partition}/records": ["get"],
        "/v1/groups": ["get"], "/v1/groups/{id}": ["get"],
    }.items():
        assert sorted(paths[path]) == sorted(methods), path
    ids = [op["operationId"] for p in paths.values() for op in p.values()]
    assert len(ids) == len(set(ids))
    schemas = doc["components"]["schemas"]
    for name in ["TopicView", "PartitionView", "CreateTopic", "ClusterView", "GroupView", "ProduceBody", "ErrorBody"]:
        assert name in schemas, name
    assert set(schemas["PartitionView"]["properties"]) == {
        "id", "leader", "leader_term", "replicas", "isr", "high_watermark", "log_start_offset"}
    assert "name" in schemas["CreateTopic"]["required"]


# ---------------------------------------------------------------- live events and the cluster page


class EventStream:
    """`GET /v1/cluster/events` read on a thread, each event with its arrival time."""

    def __init__(self, addr):
        self.events = []
        self.resp = urllib.request.urlopen(f"http://{addr}/v1/cluster/events", timeout=60)
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(lambda: any(kind == "hello" for _, kind, _ in self.events), 10, "the hello event")

    def _read(self):
        kind = None
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    self.events.append((time.monotonic(), kind, json.loads(line[5:])))
        except (OSError, ValueError, AttributeError):
            pass  # closed by the test (http.client drops its socket mid-read)

    def close(self):
        self.resp.close()


def test_events_report_new_leader_within_2s_of_a_kill(cluster_factory):
    c = cluster_factory(3)
    create(c, 1, "watched", partitions=1, replication_factor=3)
    victim = partition_leader(c, "watched", 0)
    watcher = next(n for n in (1, 2, 3) if n != victim)
    stream = EventStream(c.http_addr(watcher))
    try:
        killed_at = time.monotonic()
        c.run("kill", victim)

        def new_leader():
            return next((e for at, kind, e in stream.events if kind == "leader" and e["group"] == "watched/0"
                         and e["leader"] not in (None, victim)), None)
        event = wait_for(new_leader, 10, "a new leader of watched/0 on the events stream")
        arrived = next(at for at, kind, e in stream.events if e is event)
        assert arrived - killed_at < 2.0, f"new leader reported {arrived - killed_at:.2f}s after the kill"
        assert event["term"] >= 2 and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["at"])
        wait_for(lambda: any(kind == "node" and e == {**e, "node_id": victim, "alive": False}
                             for _, kind, e in stream.events), 5, "the node-down event")
        # The new leader's Kafka Metadata leaves the dead replica out of the ISR.
        from confluent_kafka.admin import AdminClient

        def kafka_isr():
            md = AdminClient({"bootstrap.servers": c.bootstrap(event["leader"])}).list_topics("watched", timeout=5)
            return sorted(md.topics["watched"].partitions[0].isrs)
        wait_for(lambda: kafka_isr() == sorted({1, 2, 3} - {victim}), 10, "the ISR without the dead node")
        # With a node down, a replication factor of 3 is more than the live nodes.
        status, body = c.api(watcher, "POST", "/v1/topics", {"name": "too-wide", "replication_factor": 3})
        assert status == 400 and "2 broker(s) available" in body["error"], body
        # Records written while it was down: the restarted node is ready only
        # once it has caught up with them (it is back in the ISR).
        status, _ = c.api(watcher, "POST", "/v1/topics/watched/records", {"records": [{"value": "x"}] * 50})
        assert status == 200
        c.run("start", victim)
        wait_for(lambda: any(kind == "node" and e["node_id"] == victim and e["alive"]
                             for _, kind, e in stream.events), 30, "the node-up event")
        def ready():
            status, body = c.api(victim, "GET", "/v1/ready")
            return status == 200 and body
        body = wait_for(ready, 30, "the restarted node ready")
        assert body["lagging_replicas"] == 0 and body["leaderless_partitions"] == 0
        isr = c.api(victim, "GET", "/v1/topics/watched")[1]["partitions"][0]["isr"]
        assert sorted(isr) == [1, 2, 3]
        wait_for(lambda: kafka_isr() == [1, 2, 3], 10, "the ISR whole again")
    finally:
        stream.close()


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    os.environ["SE_OFFLINE"] = "true"  # never let selenium fetch a browser
    for path in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        assert os.path.exists(path), f"{path} missing: scripts/setup-deps installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def test_cluster_page_shows_nodes_and_a_leader_change(cluster_factory):
    c = cluster_factory(3)
    create(c, 1, "paged", partitions=2, replication_factor=3)
    victim = partition_leader(c, "paged", 0)
    watcher = next(n for n in (1, 2, 3) if n != victim)
    os.makedirs(ARTIFACTS, exist_ok=True)
    browser = chromium()
    try:
        browser.get(f"http://{c.http_addr(watcher)}/")
        assert browser.title == "raftka cluster"

        def text(selector):
            found = browser.find_elements("css selector", selector)
            return found[0].text if found else None
        wait_for(lambda: len(browser.find_elements("css selector", "#nodes tbody tr")) == 3, 15, "three node rows")
        wait_for(lambda: text("#stream") == "live", 10, "the page's event stream")
        for n in (1, 2, 3):
            assert text(f'#nodes tr[data-node="{n}"] td.state') == "up"
            assert text(f'#nodes tr[data-node="{n}"] td.kafka') == c.bootstrap(n)
        leader_cell = '#partitions tr[data-group="paged/0"] td.leader'
        wait_for(lambda: text(leader_cell) == str(victim), 15, "the page showing the leader")
        browser.save_screenshot(os.path.join(ARTIFACTS, "cluster-page-before-kill.png"))
        c.run("kill", victim)
        wait_for(lambda: text(leader_cell) not in (None, "none", str(victim)), 10,
                 lambda: f"the page showing a new leader (shows {text(leader_cell)})")
        wait_for(lambda: text(f'#nodes tr[data-node="{victim}"] td.state') == "down", 10, "the node shown down")
        assert any(f"paged/0: leader {text(leader_cell)}" in li.text
                   for li in browser.find_elements("css selector", "#log li"))
        shot = os.path.join(ARTIFACTS, "cluster-page-after-kill.png")
        browser.save_screenshot(shot)
        with open(shot, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    finally:
        browser.quit()
