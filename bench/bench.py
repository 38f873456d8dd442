"""Producer/consumer benchmark in the style of Kafka's classic one
(kafka-producer-perf-test / consumer-perf-test), with librdkafka via
confluent-kafka so figures compare with other brokers.

100-byte records, acks=all, 1 and 6 partitions: produce and consume
records/s and MB/s; end-to-end latency p50/p99 at a fixed 10,000 records/s.
Each scenario runs RUNS times on a fresh one-node broker; medians reported.
Consume is measured three ways in the same run: librdkafka message by message
(bench/consume-perf, Rust), the Python confluent consumer, and a raw batching
fetcher that counts records from batch headers (what the broker serves).

    make bench            # or: RAFTKA_BIN=... python bench/bench.py
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "clients"))
from conftest import Broker  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

RECORDS = int(os.environ.get("BENCH_RECORDS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SIZE = 100
PRODUCER = {"acks": "all", "linger.ms": 10, "batch.size": 1_000_000, "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 1_048_576, "compression.type": "none"}


def create(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)


def produce(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, **PRODUCER})
    payload = b"x" * SIZE
    errors = []
    start = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, payload, on_delivery=lambda e, m: e and errors.append(e))
                break
            except BufferError:
                p.poll(0.01)
    p.flush(120)
    elapsed = time.perf_counter() - start
    assert not errors, errors[:3]
    return n / elapsed


def consume(bootstrap, topic, partitions, n):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
                  "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = 0
    start = time.perf_counter()
    while got < n:
        for m in c.consume(10_000, timeout=1.0):
            if m.error() is None:
                got += 1
    elapsed = time.perf_counter() - start
    c.close()
    return n / elapsed


PERF = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/raftka-target")),
                    "release", "consume-perf")


def consume_native(bootstrap, topic, partitions, n):
    """librdkafka consumer in Rust (bench/consume-perf): the broker, not Python, is measured."""
    out = subprocess.run([PERF, bootstrap, topic, str(partitions), str(n)], capture_output=True, text=True,
                         check=True, timeout=300)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["rps"], result["after_first_rps"], result["raw_rps"]


def latency(bootstrap, topic, rate=10_000, seconds=5):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "lat", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 100, "fetch.min.bytes": 1})
    c.assign([TopicPartition(topic, 0, 0)])
    c.consume(1, timeout=1.0)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    total = rate * seconds
    lat = []
    start = time.perf_counter()
    sent = 0
    while sent < total or len(lat) < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate))
        while sent < due:
            p.produce(topic, str(time.perf_counter()).ljust(SIZE).encode())
            sent += 1
        p.poll(0)
        for m in c.consume(1000, timeout=0.001):
            if m.error() is None:
                lat.append(time.perf_counter() - float(m.value().decode().strip()))
        if now - start > seconds * 4:
            break
    p.flush(30)
    c.close()
    lat.sort()
    return lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000


def main():
    results = {}
    for partitions in (1, 6):
        prod, cons, native, steady, raw = [], [], [], [], []
        for run in range(RUNS):
            with tempfile.TemporaryDirectory() as d:
                b = Broker(os.path.join(d, "b"), env={"RUST_LOG": "warn"}).start()
                try:
                    topic = f"bench-{partitions}"
                    create(b.bootstrap, topic, partitions)
                    prod.append(produce(b.bootstrap, topic, RECORDS))
                    rps, after_first, raw_rps = consume_native(b.bootstrap, topic, partitions, RECORDS)
                    native.append(rps)
                    steady.append(after_first)
                    raw.append(raw_rps)
                    cons.append(consume(b.bootstrap, topic, partitions, RECORDS))
                finally:
                    b.stop()
            print(f"  partitions={partitions} run={run}: produce {prod[-1]:,.0f} rec/s, "
                  f"consume {native[-1]:,.0f} rec/s (librdkafka; {steady[-1]:,.0f} from its first record), "
                  f"{cons[-1]:,.0f} (Python), {raw[-1]:,.0f} (raw fetch)",
                  flush=True)
        results[f"{partitions}p"] = {
            "produce_rps": statistics.median(prod), "produce_mbps": statistics.median(prod) * SIZE / 1e6,
            "consume_rps": statistics.median(native), "consume_mbps": statistics.median(native) * SIZE / 1e6,
            "consume_from_first_record_rps": statistics.median(steady),
            "consume_python_rps": statistics.median(cons),
            "consume_raw_fetch_rps": statistics.median(raw),
        }
    p50s, p99s, n50s, n99s = [], [], [], []
    for run in range(RUNS):
        with tempfile.TemporaryDirectory() as d:
            b = Broker(os.path.join(d, "b"), env={"RUST_LOG": "warn"}).start()
            try:
                create(b.bootstrap, "lat", 1)
                out = subprocess.run([PERF, "latency", b.bootstrap, "lat"], capture_output=True, text=True,
                                     check=True, timeout=300)
                native = json.loads(out.stdout.strip().splitlines()[-1])
                n50s.append(native["p50_ms"])
                n99s.append(native["p99_ms"])
                p50, p99 = latency(b.bootstrap, "lat")
            finally:
                b.stop()
        p50s.append(p50)
        p99s.append(p99)
        print(f"  latency run={run}: native p50 {n50s[-1]:.2f} ms, p99 {n99s[-1]:.2f} ms; "
              f"python p50 {p50:.2f} ms, p99 {p99:.2f} ms", flush=True)
    results["latency_10k_rps"] = {"p50_ms": statistics.median(n50s), "p99_ms": statistics.median(n99s),
                                  "python_p50_ms": statistics.median(p50s), "python_p99_ms": statistics.median(p99s)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
