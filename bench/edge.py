"""The Kafka listener under load and under attack (issue 12).

healthy: librdkafka's own rdkafka_performance (built by
  bench/tools/build-rdkafka-performance against Debian's librdkafka 2.0.2)
  produces EDGE_RECORDS (default 10,000,000) 100-byte records with acks=all
  to a one-node broker, EDGE_RUNS times (default 3), then as many fixed-rate
  runs (EDGE_RATE records/s for EDGE_RATE_SECONDS) with per-message latency.
  Reported: throughput and ack latency (medians of the runs), and how many
  connections the broker closed — `closing kafka
  connection` lines in its log and `raftka_connections_refused_total` — which
  must be zero.
attack: EDGE_CONNECTIONS (default 5,000) connections from ten loopback
  addresses each announce a 100 MiB frame (and send EDGE_SENT bytes of it,
  default 64 KiB), then stall. Reported: the broker's resident memory (VmRSS,
  VmHWM from /proc) before, while all are connected, and after the frame
  deadline has closed them, and how long a small Metadata request from a
  healthy client takes meanwhile. A second round sends whole 100 MiB bodies
  from EDGE_FULL (default 20) connections at once: what the budget
  (queued_max_request_bytes) lets through.

    make bench-edge     # or: RAFTKA_BIN=... python bench/edge.py [healthy|attack]
"""
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "clients"))
from conftest import Broker  # noqa: E402

TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/raftka-target"))
PERF = os.path.join(TARGET, "bench", "rdkafka_performance")
RECORDS = int(os.environ.get("EDGE_RECORDS", "10000000"))
RATE = int(os.environ.get("EDGE_RATE", "50000"))
RATE_SECONDS = int(os.environ.get("EDGE_RATE_SECONDS", "20"))
CONNECTIONS = int(os.environ.get("EDGE_CONNECTIONS", "5000"))
SENT = int(os.environ.get("EDGE_SENT", str(64 * 1024)))
FULL = int(os.environ.get("EDGE_FULL", "20"))
RUNS = int(os.environ.get("EDGE_RUNS", "3"))
FRAME = 100 * 1024 * 1024


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def refusals(broker):
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    rows = re.findall(r'raftka_connections_refused_total\{listener="(\w+)",reason="(\w+)"\} (\d+)', text)
    return {f"{l}/{r}": int(n) for l, r, n in rows if int(n) > 0}


def closing_lines(broker):
    with open(broker.log_path, "rb") as f:
        return sum(1 for line in f if b"closing kafka connection" in line)


def create_topic(broker, name, partitions):
    import json
    body = json.dumps({"name": name, "partitions": partitions, "replication_factor": 1}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{broker.http_port}/v1/topics", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()


def perf(args, timeout):
    """Runs rdkafka_performance; (records/s of its final summary line, its output)."""
    out = subprocess.run([PERF, *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = [l for l in (out.stdout + out.stderr).splitlines() if re.search(r"delivered .* msgs/s", l)][-1]
    rate = float(re.search(r"in \d+ms: (\d+) msgs/s", summary).group(1))
    return rate, summary


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def healthy():
    with tempfile.TemporaryDirectory() as tmp:
        b = Broker(os.path.join(tmp, "b"), env={"RUST_LOG": "info,openraft=warn"}).start()
        try:
            create_topic(b, "perf", 1)
            common = ["-P", "-t", "perf", "-p", "0", "-b", b.bootstrap, "-s", "100", "-a", "-1", "-q"]
            rates = []
            for run in range(RUNS):
                load = loadavg()
                rate, summary = perf(common + ["-c", str(RECORDS), "-X", "linger.ms=10",
                                               "-X", "batch.size=1000000"], 1800)
                rates.append(rate)
                print(f"  run {run + 1} (load {load}): {summary.lstrip('% ')}")
            print(f"healthy: {RECORDS:,} records of 100 bytes, acks=all, one partition: median "
                  f"{statistics.median(rates):,.0f} records/s over {RUNS} runs")
            n = RATE * RATE_SECONDS
            p50s, p99s, maxes, achieved = [], [], [], []
            for run in range(RUNS):
                lat_file = os.path.join(tmp, f"latency-{run}.txt")
                load = loadavg()
                rate, _ = perf(common + ["-c", str(n), "-r", str(RATE), "-l", "-A", lat_file,
                                         "-X", "linger.ms=0"], 900)
                with open(lat_file) as f:
                    lat = [int(x) / 1000 for x in f.read().split()]
                achieved.append(rate)
                p50s.append(percentile(lat, 0.5))
                p99s.append(percentile(lat, 0.99))
                maxes.append(max(lat))
                print(f"  fixed-rate run {run + 1} (load {load}): {rate:,.0f} records/s, ack p50 "
                      f"{p50s[-1]:.2f} ms, p99 {p99s[-1]:.2f} ms, max {maxes[-1]:.1f} ms")
            print(f"fixed rate: asked {RATE:,}/s for {n:,} records, got {statistics.median(achieved):,.0f}/s; "
                  f"ack latency medians of {RUNS}: p50 {statistics.median(p50s):.2f} ms, "
                  f"p99 {statistics.median(p99s):.2f} ms, max {statistics.median(maxes):.1f} ms")
            print(f"connections closed by the broker over all runs: {closing_lines(b)} "
                  f"'closing kafka connection' lines, refusals {refusals(b) or 'none'}")
        finally:
            b.stop()


def announce(addr, source, sent, sockets, errors):
    try:
        s = socket.socket()
        s.bind((source, 0))
        s.connect(addr)
        s.sendall(struct.pack(">i", FRAME) + b"\0" * sent)
        sockets.append(s)
    except OSError as e:
        errors.append(e)


def metadata_latency(addr):
    """Seconds for one Metadata v1 round trip on a fresh connection."""
    started = time.monotonic()
    with socket.create_connection(addr, timeout=120) as s:
        body = struct.pack(">hhih", 3, 1, 7, -1) + struct.pack(">i", -1)
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        s.recv(size, socket.MSG_WAITALL)
    return time.monotonic() - started


def attack():
    env = {"RUST_LOG": "warn", "RAFTKA_FRAME_TIMEOUT_MS": "15000"}
    with tempfile.TemporaryDirectory() as tmp:
        b = Broker(os.path.join(tmp, "b"), env=env).start()
        pid = b.proc.pid
        addr = ("127.0.0.1", b.kafka_port)
        try:
            idle = proc_kib(pid, "VmRSS")
            sockets, errors = [], []
            started = time.monotonic()
            threads = [threading.Thread(target=lambda i=i: [
                announce(addr, f"127.0.0.{1 + i % 10}", SENT, sockets, errors)
                for _ in range(CONNECTIONS // 50)]) for i in range(50)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            connected = time.monotonic() - started
            time.sleep(2)  # the broker reads what was sent; this measures it settled
            during, peak = proc_kib(pid, "VmRSS"), proc_kib(pid, "VmHWM")
            small = metadata_latency(addr)
            print(f"attack: {len(sockets):,} connections ({len(errors)} failed to connect) each announcing a "
                  f"100 MiB frame and sending {SENT:,} bytes of it, opened in {connected:.1f} s (load {loadavg()})")
            print(f"  broker RSS idle {idle / 1024:.1f} MiB, with all connected {during / 1024:.1f} MiB, "
                  f"peak {peak / 1024:.1f} MiB; a healthy Metadata request took {small * 1000:.1f} ms")
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and refusals(b).get("kafka/FrameTimeout", 0) < len(sockets) * 0.99:
                time.sleep(1)
            print(f"  after the frame deadline: RSS {proc_kib(pid, 'VmRSS') / 1024:.1f} MiB, "
                  f"refusals {refusals(b)}")
            for s in sockets:
                s.close()
            # Whole bodies: the budget decides how many are buffered at once.
            before = proc_kib(pid, "VmHWM")
            full, full_errors = [], []
            threads = [threading.Thread(target=announce, args=(addr, "127.0.0.11", FRAME, full, full_errors))
                       for _ in range(FULL)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            print(f"full bodies: {FULL} connections sending a whole 100 MiB frame each; broker peak RSS "
                  f"{proc_kib(pid, 'VmHWM') / 1024:.1f} MiB (was {before / 1024:.1f}); "
                  f"{len(full)} sent completely")
            for s in full:
                s.close()
            print(f"  healthy Metadata request afterwards: {metadata_latency(addr) * 1000:.1f} ms")
        finally:
            b.stop()


def main():
    # One descriptor per connection, in this process and in the broker it starts.
    import resource
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    which = sys.argv[1:] or ["healthy", "attack"]
    for section in which:
        {"healthy": healthy, "attack": attack}[section]()


if __name__ == "__main__":
    main()
