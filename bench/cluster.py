"""Three-node benchmark (issue 3): a local cluster run by scripts/cluster, RF=3.

- throughput: 100-byte records, acks=all, 6 partitions; produce and consume
  (Python confluent-kafka, batching; the consumer reads from every leader)
  records/s and MB/s; end-to-end p50/p99 at 10,000 records/s (native
  librdkafka clients, bench/consume-perf).
- failover: FAILOVER_KILLS times, SIGKILL the leader of partition 0 while a
  producer sends to it every 5 ms; time from the kill to (a) a new leader in
  the survivors' Metadata and (b) the first acknowledged record sent after the
  kill; the node is restarted between kills. p50/p99 reported.
- idle CPU: CPU time of the three broker processes over IDLE_SECONDS, first
  with no topic (the baseline, same run), then with 1,000 RF=3 partitions.

    make bench-cluster     # or: RAFTKA_BIN=... python bench/cluster.py [throughput|failover|idle]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "clients"))
sys.path.insert(0, os.path.dirname(__file__))
from conftest import Cluster, wait_for  # noqa: E402
from bench import PERF, SIZE, consume, produce  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

RECORDS = int(os.environ.get("BENCH_RECORDS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
KILLS = int(os.environ.get("FAILOVER_KILLS", "20"))
IDLE_SECONDS = int(os.environ.get("IDLE_SECONDS", "30"))
IDLE_PARTITIONS = int(os.environ.get("IDLE_PARTITIONS", "1000"))
TICK = os.sysconf("SC_CLK_TCK")


def cluster(d):
    c = Cluster(d, 3)
    c.env["RUST_LOG"] = "warn"
    c.run("up", 3, timeout=180)
    return c


def create(c, topic, partitions, timeout=120):
    admin = AdminClient({"bootstrap.servers": c.bootstrap()})
    admin.create_topics([NewTopic(topic, partitions, 3)])[topic].result(timeout)
    wait_for(lambda: all(c.http(n, "/v1/ready")[0] == 200 for n in (1, 2, 3)), timeout, "leaders everywhere")


def leader(c, nodes, topic, partition):
    try:
        md = AdminClient({"bootstrap.servers": c.bootstrap(*nodes)}).list_topics(topic, timeout=2)
        lead = md.topics[topic].partitions[partition].leader
        return lead if lead > 0 else None
    except Exception:
        return None


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def throughput():
    prod, cons, p50, p99 = [], [], [], []
    for run in range(RUNS):
        with tempfile.TemporaryDirectory() as d:
            c = cluster(d)
            try:
                create(c, "bench", 6)
                prod.append(produce(c.bootstrap(), "bench", RECORDS))
                cons.append(consume(c.bootstrap(), "bench", 6, RECORDS))
                create(c, "lat", 1)
                out = subprocess.run([PERF, "latency", c.bootstrap(), "lat"], capture_output=True, text=True,
                                     check=True, timeout=300)
                lat = json.loads(out.stdout.strip().splitlines()[-1])
                p50.append(lat["p50_ms"])
                p99.append(lat["p99_ms"])
            finally:
                c.run("down")
        print(f"  run {run}: produce {prod[-1]:,.0f} rec/s, consume {cons[-1]:,.0f} rec/s, "
              f"e2e p50 {p50[-1]:.2f} ms p99 {p99[-1]:.2f} ms", flush=True)
    return {"produce_rps": statistics.median(prod), "produce_mbps": statistics.median(prod) * SIZE / 1e6,
            "consume_rps": statistics.median(cons), "consume_mbps": statistics.median(cons) * SIZE / 1e6,
            "e2e_p50_ms": statistics.median(p50), "e2e_p99_ms": statistics.median(p99),
            "runs": {"produce": prod, "consume": cons, "p99": p99}}


class Pinger:
    """Sends one acks=all record to partition 0 every 5 ms; remembers when
    each record was sent and when it was acknowledged."""

    def __init__(self, bootstrap, topic):
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                           "message.timeout.ms": 30000, "retry.backoff.ms": 20, "retry.backoff.max.ms": 100,
                           "topic.metadata.refresh.interval.ms": 1000,
                           # librdkafka talks only to the brokers it needs; when that is
                           # just the killed leader, it has no broker left to ask for
                           # metadata until its reconnect back-off lets it try another
                           # (seen: 4-8 s). Connections to every broker avoid that.
                           "enable.sparse.connections": os.environ.get("PINGER_SPARSE", "false") == "true",
                           # The bench restarts each killed node seconds before the next
                           # kill; librdkafka's reconnect back-off (up to 10 s by default)
                           # can still be running then, leaving it no connection to the
                           # node that becomes the next leader.
                           "reconnect.backoff.max.ms": 500,
                           **({"debug": os.environ["PINGER_DEBUG"]} if os.environ.get("PINGER_DEBUG") else {})})
        self.topic = topic
        self.acks = []  # (sent, acked)
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            sent = time.monotonic()
            self.p.produce(self.topic, b"x" * SIZE, partition=0,
                           on_delivery=lambda e, m, s=sent: e is None and self.acks.append((s, time.monotonic())))
            self.p.poll(0.005)
        self.p.flush(30)

    def first_ack_sent_after(self, t):
        return next((a for s, a in list(self.acks) if s > t), None)


def failover():
    elected, acked = [], []
    with tempfile.TemporaryDirectory() as d:
        c = cluster(d)
        c.env["RUST_LOG"] = "info"
        try:
            create(c, "fo", 6)
            pinger = Pinger(c.bootstrap(), "fo")
            for k in range(KILLS):
                wait_for(lambda: pinger.first_ack_sent_after(time.monotonic() - 0.5), 60, "steady acks")
                victim = wait_for(lambda: leader(c, (1, 2, 3), "fo", 0), 30, "a leader to kill")
                survivors = [n for n in (1, 2, 3) if n != victim]
                c.run("kill", victim)
                killed = time.monotonic()  # after the signal is sent: acks before it are not failover
                wait_for(lambda: leader(c, survivors, "fo", 0) not in (None, victim), 30, "new leader")
                elected.append(time.monotonic() - killed)
                acked.append(wait_for(lambda: pinger.first_ack_sent_after(killed), 60, "ack") - killed)
                print(f"  kill {k}: node {victim}; new leader seen after {elected[-1]:.3f} s, "
                      f"next ack after {acked[-1]:.3f} s", flush=True)
                if elected[-1] > 1.0:  # show the survivors' view of a slow election
                    for n in survivors:
                        lines = [x for x in c.log(n).splitlines()[-400:] if "campaign" in x or "elect" in x]
                        print(f"    node {n}:\n      " + "\n      ".join(lines[-8:]), flush=True)
                c.run("start", victim)
                wait_for(lambda: all(c.http(n, "/v1/ready")[0] == 200 for n in (1, 2, 3)), 60, "ready")
            pinger.stop.set()
            pinger.t.join(60)
        except Exception:
            print(c.logs()[-20000:])
            raise
        finally:
            c.run("down")
    return {"kills": KILLS, "new_leader_p50_s": pct(elected, 0.5), "new_leader_p99_s": pct(elected, 0.99),
            "next_ack_p50_s": pct(acked, 0.5), "next_ack_p99_s": pct(acked, 0.99),
            "new_leader_s": [round(x, 3) for x in elected], "next_ack_s": [round(x, 3) for x in acked]}


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICK


def idle_cpu(c):
    pids = [c.pid(n) for n in (1, 2, 3)]
    time.sleep(5)  # let start-up work (elections, reports) settle
    before, t0 = cpu_seconds(pids), time.monotonic()
    time.sleep(IDLE_SECONDS)
    return (cpu_seconds(pids) - before) / (time.monotonic() - t0) * 100


def idle():
    with tempfile.TemporaryDirectory() as d:
        c = cluster(d)
        try:
            base = idle_cpu(c)
            started = time.monotonic()
            create(c, "idle", IDLE_PARTITIONS, timeout=600)
            ready_s = time.monotonic() - started
            loaded = idle_cpu(c)
        finally:
            c.run("down")
    print(f"  idle CPU, 3 nodes: {base:.2f}% of one core with no topic, {loaded:.2f}% with "
          f"{IDLE_PARTITIONS} RF=3 partitions (created and led in {ready_s:.1f} s)", flush=True)
    return {"no_topic_pct_core": round(base, 2), "partitions": IDLE_PARTITIONS,
            "with_partitions_pct_core": round(loaded, 2), "create_to_ready_s": round(ready_s, 1)}


def main():
    which = sys.argv[1:] or ["throughput", "failover", "idle"]
    results = {name: globals()[name]() for name in which}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
