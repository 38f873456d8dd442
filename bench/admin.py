"""Admin HTTP API benchmark (issue 5), on a local 3-node cluster (RF=3):

- topic create: POST /v1/topics (1 partition, RF=3; answered once the leader
  is elected) p50/p99, through the controller and through another node;
  baseline in the same run: confluent-kafka AdminClient.create_topics.
- topic describe: GET /v1/topics/{name} (6 partitions; gathers offsets and ISR
  from the leaders) p50/p99, alternating nodes; baseline: a Kafka Metadata
  request for the topic (confluent-kafka list_topics).
- REST produce: records/s of 100-byte records through POST /v1/topics/{name}/records
  with HTTP_CLIENTS keep-alive clients spread over the nodes, 100 records a
  request and 1 record a request; baseline: confluent-kafka (acks=all).

    make bench-http        # or: RAFTKA_BIN=... python bench/admin.py
"""
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "clients"))
sys.path.insert(0, os.path.dirname(__file__))
from cluster import cluster, create, pct  # noqa: E402
from bench import produce  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
TOPICS = int(os.environ.get("HTTP_TOPICS", "100"))
DESCRIBES = int(os.environ.get("HTTP_DESCRIBES", "1000"))
RECORDS = int(os.environ.get("HTTP_RECORDS", "200000"))
CLIENTS = int(os.environ.get("HTTP_CLIENTS", "4"))
SINGLE_SECONDS = float(os.environ.get("HTTP_SINGLE_SECONDS", "5"))
SIZE = 100


class Conn:
    """One keep-alive connection to a node's admin API."""

    def __init__(self, addr):
        host, port = addr.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data else {}
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        payload = resp.read()
        assert 200 <= resp.status < 300, (method, path, resp.status, payload[:200])
        return payload


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(samples):
    return {"p50_ms": round(pct(samples, 0.5) * 1000, 2), "p99_ms": round(pct(samples, 0.99) * 1000, 2)}


def controller(c):
    return json.loads(Conn(c.http_addr(1)).call("GET", "/v1/cluster"))["controller"]["node_id"]


def creates(c, run):
    lead = controller(c)
    other = next(n for n in (1, 2, 3) if n != lead)
    out = {}
    for label, node in (("via_controller", lead), ("via_other_node", other)):
        conn = Conn(c.http_addr(node))
        out[label] = summary([timed(lambda i=i: conn.call("POST", "/v1/topics", {
            "name": f"h{run}-{label}-{i}", "partitions": 1, "replication_factor": 3})) for i in range(TOPICS)])
    admin = AdminClient({"bootstrap.servers": c.bootstrap()})
    out["kafka_admin_baseline"] = summary([timed(lambda i=i: admin.create_topics(
        [NewTopic(f"k{run}-{i}", 1, 3)])[f"k{run}-{i}"].result(30)) for i in range(TOPICS)])
    return out


def describes(c):
    Conn(c.http_addr(1)).call("POST", "/v1/topics", {"name": "described", "partitions": 6, "replication_factor": 3})
    conns = [Conn(c.http_addr(n)) for n in (1, 2, 3)]
    samples = [timed(lambda i=i: conns[i % 3].call("GET", "/v1/topics/described")) for i in range(DESCRIBES)]
    admin = AdminClient({"bootstrap.servers": c.bootstrap()})
    base = [timed(lambda: admin.list_topics("described", timeout=10)) for _ in range(DESCRIBES)]
    return {"http": summary(samples), "kafka_metadata_baseline": summary(base)}


def rest_produce(c, topic, per_request, total=None, seconds=None):
    """Records/s of CLIENTS threads posting `per_request` records each time."""
    value = "x" * SIZE
    body = {"records": [{"value": value} for _ in range(per_request)]}
    sent = [0] * CLIENTS
    stop = time.perf_counter() + seconds if seconds else None
    quota = (total // CLIENTS) if total else None

    def client(i):
        conn = Conn(c.http_addr(i % 3 + 1))
        while (quota is None or sent[i] < quota) and (stop is None or time.perf_counter() < stop):
            conn.call("POST", f"/v1/topics/{topic}/records", body)
            sent[i] += per_request
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(sent) / (time.perf_counter() - start)


def produces(c):
    create(c, "rest", 6)
    create(c, "kafka", 6)
    batched = rest_produce(c, "rest", 100, total=RECORDS)
    single = rest_produce(c, "rest", 1, seconds=SINGLE_SECONDS)
    base = produce(c.bootstrap(), "kafka", RECORDS)
    return {"rest_100_per_request": round(batched), "rest_1_per_request": round(single),
            "kafka_client_baseline": round(base), "ratio_100_per_request_to_kafka": round(batched / base, 3)}


def main():
    runs = []
    for run in range(RUNS):
        with tempfile.TemporaryDirectory() as d:
            c = cluster(d)
            try:
                result = {"create": creates(c, run), "describe": describes(c), "produce_records_per_s": produces(c)}
            finally:
                c.run("down")
        print(f"run {run + 1}: {json.dumps(result)}", flush=True)
        runs.append(result)

    def median(path):
        values = []
        for r in runs:
            v = r
            for key in path:
                v = v[key]
            values.append(v)
        return statistics.median(values)
    out = {}
    for section, keys in runs[0].items():
        out[section] = {}
        for key, value in keys.items():
            if isinstance(value, dict):
                out[section][key] = {k: median([section, key, k]) for k in value}
            else:
                out[section][key] = median([section, key])
    print(json.dumps({"runs": RUNS, "median": out}, indent=2))


if __name__ == "__main__":
    main()
