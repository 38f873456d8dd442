"""The partition log (issue 14): produce and consume throughput with
librdkafka's own rdkafka_performance (so the client is not what is measured),
broker CPU per million records, idle memory per partition replica, and how
fast a restarted replica catches up.

    make bench-log       # or: RAFTKA_BIN=... python bench/log.py [node|cluster|memory|catch-up|...]

node: one broker, 6 partitions (RF=1), LOG_RECORDS (default 5,000,000)
  100-byte records, acks=all, linger.ms=10, batch.size=1000000; then the same
  records consumed with librdkafka's default consumer settings. LOG_RUNS runs
  (default 3), each on a fresh broker; medians reported, and the broker's
  CPU time (utime+stime from /proc) per million records produced.
cluster: three brokers on this machine (scripts/cluster), 6 partitions RF=3,
  the same produce, LOG_RUNS runs on fresh clusters; median and every run.
memory: a broker's resident memory with 0, 500 and 1,000 idle one-record
  partitions; the slope is the cost of an idle replica.
catch-up: three brokers, node 3 killed, LOG_DOWN_SECONDS (default 60) of
  produce at full rate, node 3 started again: records/s it catches up at and
  the time until every replica it holds has the leader's high watermark and
  it is back in every ISR.
latency: one broker, 6 partitions, records sent at LOG_LATENCY_RATE records/s
  (default: a tenth of the node section's produce median in the same run,
  else of LOG_PEAK, default 2,000,000) for 10 s, librdkafka's default producer
  and consumer settings (acks=all): end-to-end p50/p99/max, send to receive;
  then the same with linger.ms=1 (the defaults' 5 ms linger is most of their p99).
load: three brokers with LOG_LOAD_TOPICS (default 120) topics of 10
  partitions, RF=3 (1,200 partitions, a replica of each on every node), a
  default-settings producer writing to all of them, a consumer group reading
  them all and a topic created and deleted every second, for LOG_LOAD_SECONDS
  (default 60): each node's resident memory sampled twice a second (peak,
  and its swing over the last half of the run).
consume-cpu: one broker holding LOG_RECORDS records in 6 partitions, read
  from offset 0 by consume-perf's raw fetcher (the broker's Fetch path, not a
  client's per-record work) LOG_RUNS times: records/s and the broker's CPU per
  million records served.
fsync: one broker with fsync = true, LOG_FSYNC_RECORDS (default 200,000)
  records produced in batches of 100 (linger.ms=0, batch.num.messages=100),
  LOG_RUNS runs: records/s, broker CPU per million, and how many appends each
  group-commit round synced (/metrics).

Every figure comes with the load average of the machine when it was taken.
"""
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "clients"))
from conftest import Broker, Cluster  # noqa: E402
from edge import PERF, loadavg, proc_kib  # noqa: E402

RECORDS = int(os.environ.get("LOG_RECORDS", "5000000"))
RUNS = int(os.environ.get("LOG_RUNS", "3"))
DOWN_SECONDS = int(os.environ.get("LOG_DOWN_SECONDS", "60"))
PARTITIONS = 6
TICKS = os.sysconf("SC_CLK_TCK")
CONSUME_PERF = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/raftka-target")),
                            "release", "consume-perf")
# The node section's produce median, for the latency section's rate.
peak = {}


def cpu_ms(pid):
    """User + system CPU time of process `pid`, in ms."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / TICKS


def http(addr, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{addr}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def create_topic(addr, name, partitions, rf):
    http(addr, "POST", "/v1/topics", {"name": name, "partitions": partitions, "replication_factor": rf})


def run_perf(args, timeout=1800):
    """Runs rdkafka_performance; (records/s of its last summary line, the line)."""
    out = subprocess.run([PERF, *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [l for l in (out.stdout + out.stderr).splitlines() if re.search(r"in \d+ms: \d+ msgs/s", l)]
    assert lines, (out.stdout + out.stderr)[-2000:]
    return float(re.search(r"in \d+ms: (\d+) msgs/s", lines[-1]).group(1)), lines[-1].lstrip("% ")


def produce_args(bootstrap, records):
    return ["-P", "-t", "perf", "-b", bootstrap, "-s", "100", "-a", "-1", "-q", "-c", str(records),
            "-X", "linger.ms=10", "-X", "batch.size=1000000"]


def node():
    produced, consumed, cpu = [], [], []
    for run in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            b = Broker(os.path.join(tmp, "b"), env={"RUST_LOG": "info,openraft=warn"}).start()
            try:
                create_topic(f"127.0.0.1:{b.http_port}", "perf", PARTITIONS, 1)
                load = loadavg()
                before = cpu_ms(b.proc.pid)
                rate, line = run_perf(produce_args(b.bootstrap, RECORDS))
                used = cpu_ms(b.proc.pid) - before
                produced.append(rate)
                cpu.append(used / (RECORDS / 1e6))
                print(f"  produce run {run + 1} (load {load}): {line}; broker CPU {used / 1000:.2f} s "
                      f"= {cpu[-1]:.0f} ms per million records")
                load = loadavg()
                rate, line = run_perf(["-C", "-G", f"bench-{run}", "-t", "perf", "-b", b.bootstrap, "-q",
                                       "-c", str(RECORDS), "-o", "beginning"])
                consumed.append(rate)
                print(f"  consume run {run + 1} (load {load}): {line}")
            finally:
                b.stop()
    peak["node"] = statistics.median(produced)
    print(f"node: {RECORDS:,} records of 100 bytes, {PARTITIONS} partitions, acks=all; medians of {RUNS}: "
          f"produce {statistics.median(produced):,.0f} records/s at {statistics.median(cpu):.0f} ms broker "
          f"CPU per million, consume {statistics.median(consumed):,.0f} records/s")


def cluster():
    produced, cpu = [], []
    for run in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            c = Cluster(tmp, 3)
            c.run("up", 3)
            try:
                create_topic(c.http_addr(1), "perf", PARTITIONS, 3)
                time.sleep(2)  # leaders settle on their preferred replicas
                load = loadavg()
                before = sum(cpu_ms(c.pid(n)) for n in (1, 2, 3))
                rate, line = run_perf(produce_args(c.bootstrap(), RECORDS))
                used = sum(cpu_ms(c.pid(n)) for n in (1, 2, 3)) - before
                produced.append(rate)
                cpu.append(used / (RECORDS / 1e6))
                print(f"  run {run + 1} (load {load}): {line}; CPU of all brokers {cpu[-1]:.0f} ms per million")
            finally:
                c.run("down")
    print(f"cluster: 3 nodes, RF=3, {PARTITIONS} partitions, acks=all: median {statistics.median(produced):,.0f} "
          f"records/s (runs {', '.join(f'{r:,.0f}' for r in produced)}), {statistics.median(cpu):.0f} ms "
          f"CPU of all brokers per million records")


def memory():
    with tempfile.TemporaryDirectory() as tmp:
        b = Broker(os.path.join(tmp, "b"), env={"RUST_LOG": "warn"}).start()
        try:
            addr = f"127.0.0.1:{b.http_port}"
            points = []
            made = 0
            for target in (0, 500, 1000):
                while made < target:
                    create_topic(addr, f"idle-{made}", 10, 1)
                    made += 10
                time.sleep(5)
                points.append((target, proc_kib(b.proc.pid, "VmRSS")))
                print(f"  {target} idle partitions (load {loadavg()}): RSS {points[-1][1] / 1024:.1f} MiB")
            per = (points[-1][1] - points[0][1]) / max(1, points[-1][0] - points[0][0])
            print(f"memory: {per:.1f} KiB of RSS per idle partition replica")
        finally:
            b.stop()


def replica(c, node, topic, p):
    try:
        return http(c.http_addr(node), "GET", f"/v1/internal/replicas/{topic}/{p}")
    except OSError:
        return None


def catch_up():
    # LOG_KEEP=1 keeps the nodes' data and logs.
    kept = os.environ.get("LOG_KEEP")
    with contextlib.nullcontext(tempfile.mkdtemp(prefix="raftka-catch-up-")) if kept \
            else tempfile.TemporaryDirectory() as tmp:
        c = Cluster(tmp, 3)
        c.run("up", 3)
        try:
            create_topic(c.http_addr(1), "perf", PARTITIONS, 3)
            time.sleep(2)
            c.run("kill", 3)
            load = loadavg()
            perf = subprocess.Popen([PERF, *produce_args(c.bootstrap(1, 2), 10**10)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(DOWN_SECONDS)
            perf.kill()
            perf.wait()
            ends = {p: http(c.http_addr(1), "GET", "/v1/topics/perf")["partitions"][p]["high_watermark"]
                    for p in range(PARTITIONS)}
            missed = sum(ends.values())
            started = time.monotonic()
            c.run("start", 3)
            caught = None
            limit = int(os.environ.get("LOG_CATCH_UP_LIMIT", "600"))
            while time.monotonic() - started < limit:
                got = [replica(c, 3, "perf", p) for p in range(PARTITIONS)]
                if caught is None and all(r and r["high_watermark"] >= ends[p] for p, r in enumerate(got)):
                    caught = time.monotonic() - started
                topic = http(c.http_addr(1), "GET", "/v1/topics/perf")
                if caught is not None and all(3 in (p.get("isr") or []) for p in topic["partitions"]):
                    break
                time.sleep(0.1)
            in_isr = time.monotonic() - started
            if caught is None:
                held = {p: (r or {}).get("high_watermark") for p, r in enumerate(got)}
                raise SystemExit(f"catch-up: node 3 did not reach the high watermarks in {limit} s: "
                                 f"leader {ends}, node 3 {held} (logs: {tmp})")
            print(f"catch-up (load {load} before): node 3 down for {DOWN_SECONDS} s of full-rate produce "
                  f"({missed:,} records on {PARTITIONS} partitions); back at every high watermark after "
                  f"{caught:.1f} s ({missed / caught:,.0f} records/s, start-up included), in every ISR after "
                  f"{in_isr:.1f} s")
        finally:
            c.run("down")


def histogram_p99(metrics, name, labels=""):
    """The upper bound (ms) of the bucket holding the 99th percentile of a
    Prometheus histogram in `metrics` (the text of /metrics)."""
    buckets = []
    for line in metrics.splitlines():
        m = re.match(rf'{name}_bucket{{le="([^"]+)"{"," + labels if labels else ""}}} (\d+)', line)
        if m:
            buckets.append((float(m.group(1)), int(m.group(2))))
    total = buckets[-1][1] if buckets else 0
    return next((le * 1000 for le, n in buckets if n >= 0.99 * total), float("nan"))


def latency():
    rate = int(os.environ.get("LOG_LATENCY_RATE", "0")) or \
        int(peak.get("node", float(os.environ.get("LOG_PEAK", "2000000"))) / 10)
    seconds = 10
    with tempfile.TemporaryDirectory() as tmp:
        b = Broker(os.path.join(tmp, "b"), env={"RUST_LOG": "warn"}).start()
        try:
            create_topic(f"127.0.0.1:{b.http_port}", "lat", PARTITIONS, 1)
            # Defaults first (what the issue asks), then without the
            # producer's 5 ms linger, which alone sets the defaults' p99.
            for mode, clients in (("e2e", "librdkafka defaults (linger.ms 5)"),
                                  ("e2e-linger1", "librdkafka defaults but linger.ms 1")):
                load = loadavg()
                out = subprocess.run([CONSUME_PERF, mode, b.bootstrap, "lat", str(PARTITIONS), str(rate),
                                      str(seconds)], capture_output=True, text=True, timeout=seconds * 6 + 60)
                assert out.returncode == 0, out.stderr[-2000:]
                got = json.loads(out.stdout.strip().splitlines()[-1])
                with urllib.request.urlopen(f"http://127.0.0.1:{b.http_port}/metrics", timeout=10) as r:
                    metrics = r.read().decode()
                produce_p99 = histogram_p99(metrics, "raftka_kafka_request_duration_seconds", 'api="Produce"')
                print(f"latency (load {load}): {rate:,} records/s of 100 bytes for {seconds} s over {PARTITIONS} "
                      f"partitions, {clients}, acks=all: end-to-end p50 {got['p50_ms']:.2f} ms, "
                      f"p99 {got['p99_ms']:.2f} ms, max {got['max_ms']:.2f} ms; the broker's own Produce p99 "
                      f"<= {produce_p99:.2f} ms (both runs so far)")
        finally:
            b.stop()


def load_test():
    from confluent_kafka import Consumer, Producer
    topics = int(os.environ.get("LOG_LOAD_TOPICS", "120"))
    seconds = int(os.environ.get("LOG_LOAD_SECONDS", "60"))
    with tempfile.TemporaryDirectory() as tmp:
        c = Cluster(tmp, 3)
        c.run("up", 3)
        try:
            names = [f"load-{i}" for i in range(topics)]
            for name in names:
                create_topic(c.http_addr(1 + names.index(name) % 3), name, 10, 3)
            rss_idle = [proc_kib(c.pid(n), "VmRSS") for n in (1, 2, 3)]
            stop = threading.Event()
            sent = [0]

            def produce():
                p = Producer({"bootstrap.servers": c.bootstrap()})
                i = 0
                while not stop.is_set():
                    try:
                        p.produce(names[i % topics], b"x" * 100)
                        sent[0] += 1
                    except BufferError:
                        p.poll(0.01)
                    i += 1
                    if i % 100 == 0:
                        p.poll(0)
                p.flush(30)

            def consume():
                k = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "load",
                              "auto.offset.reset": "earliest"})
                k.subscribe(["^load-.*"])
                while not stop.is_set():
                    k.consume(1000, timeout=0.5)
                k.close()

            def churn():
                i = 0
                while not stop.wait(1.0):
                    name = f"churn-{i}"
                    try:
                        create_topic(c.http_addr(1), name, 4, 3)
                        http(c.http_addr(2), "DELETE", f"/v1/topics/{name}")
                    except OSError:
                        pass
                    i += 1

            threads = [threading.Thread(target=f) for f in (produce, consume, churn)]
            for t in threads:
                t.start()
            load = loadavg()
            samples = []
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                samples.append([proc_kib(c.pid(n), "VmRSS") for n in (1, 2, 3)])
                time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(60)
            late = samples[len(samples) // 2:]
            for n in range(3):
                peak_mib = max(s[n] for s in samples) / 1024
                swing = (max(s[n] for s in late) - min(s[n] for s in late)) / 1024
                print(f"  node {n + 1}: RSS {rss_idle[n] / 1024:.0f} MiB with the topics idle, peak {peak_mib:.0f} MiB "
                      f"under load, swing {swing:.0f} MiB over the last {seconds // 2} s")
            print(f"load (load {load} at start): {topics * 10} partitions RF=3 on 3 nodes, {sent[0]:,} records "
                  f"produced in {seconds} s, a consumer group on all topics, a topic created and deleted every "
                  f"second")
        finally:
            c.run("down")


def consume_cpu():
    rates, cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        b = Broker(os.path.join(tmp, "b"), env={"RUST_LOG": "warn"}).start()
        try:
            create_topic(f"127.0.0.1:{b.http_port}", "perf", PARTITIONS, 1)
            run_perf(produce_args(b.bootstrap, RECORDS))
            for run in range(RUNS):
                load = loadavg()
                before = cpu_ms(b.proc.pid)
                out = subprocess.run([CONSUME_PERF, b.bootstrap, "perf", str(PARTITIONS), str(RECORDS)],
                                     capture_output=True, text=True, timeout=600)
                assert out.returncode == 0, out.stderr[-2000:]
                # consume-perf reads everything twice: librdkafka, then raw.
                used = (cpu_ms(b.proc.pid) - before) / 2
                rates.append(json.loads(out.stdout.strip().splitlines()[-1])["raw_rps"])
                cpu.append(used / (RECORDS / 1e6))
                print(f"  consume-cpu run {run + 1} (load {load}): raw fetcher {rates[-1]:,.0f} records/s, "
                      f"broker {cpu[-1]:.0f} ms per million served (both readers averaged)")
        finally:
            b.stop()
    print(f"consume-cpu: {RECORDS:,} records from offset 0, medians of {RUNS}: raw fetcher "
          f"{statistics.median(rates):,.0f} records/s, broker {statistics.median(cpu):.0f} ms per million")


def fsync():
    records = int(os.environ.get("LOG_FSYNC_RECORDS", "200000"))
    rates, cpu, per_round = [], [], []
    for run in range(RUNS):
        with tempfile.TemporaryDirectory(dir=os.path.expanduser("~")) as tmp:
            b = Broker(os.path.join(tmp, "b"), env={"RUST_LOG": "warn", "RAFTKA_FSYNC": "true"}).start()
            try:
                create_topic(f"127.0.0.1:{b.http_port}", "perf", PARTITIONS, 1)
                load = loadavg()
                before = cpu_ms(b.proc.pid)
                rate, line = run_perf(produce_args(b.bootstrap, records)
                                      + ["-X", "linger.ms=0", "-X", "batch.num.messages=100"])
                used = cpu_ms(b.proc.pid) - before
                with urllib.request.urlopen(f"http://127.0.0.1:{b.http_port}/metrics", timeout=10) as r:
                    metrics = r.read().decode()
                counter = {l.split()[0]: float(l.split()[1]) for l in metrics.splitlines()
                           if l.startswith(("raftka_log_synced_appends_total ", "raftka_log_sync_rounds_total "))}
                appends = counter.get("raftka_log_synced_appends_total", 0)
                rounds = counter.get("raftka_log_sync_rounds_total", 0)
                rates.append(rate)
                cpu.append(used / (records / 1e6))
                per_round.append(appends / rounds if rounds else 0)
                print(f"  fsync run {run + 1} (load {load}): {line}; broker {cpu[-1]:.0f} ms per million; "
                      f"{appends:.0f} appends synced in {rounds:.0f} rounds")
            finally:
                b.stop()
    print(f"fsync: {records:,} records in batches of 100, fsync = true, medians of {RUNS}: "
          f"{statistics.median(rates):,.0f} records/s, broker {statistics.median(cpu):.0f} ms per million, "
          f"{statistics.median(per_round):.2f} appends per sync round")


if __name__ == "__main__":
    sections = {"node": node, "cluster": cluster, "memory": memory, "catch-up": catch_up, "latency": latency,
                "load": load_test, "consume-cpu": consume_cpu, "fsync": fsync}
    for name in sys.argv[1:] or sections:
        sections[name]()
