"""Consumer-group benchmark (issue 4), on one broker with confluent-kafka
(librdkafka) consumers, each member in its own thread.

- rebalance: a 4-member group on a 12-partition topic; time from the members'
  subscribe() to every member holding partitions and having consumed a
  record. REBALANCE_RUNS runs (a new group each), p50 and max.
- commits: 10 groups, one committing thread each (synchronous OffsetCommit of
  one partition, over and over) for COMMIT_SECONDS; commits/s in all.

    make bench-groups      # or: RAFTKA_BIN=... python bench/groups.py [rebalance|commits]
"""
import json
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "clients"))
from conftest import Broker  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

RUNS = int(os.environ.get("REBALANCE_RUNS", "10"))
SECONDS = float(os.environ.get("COMMIT_SECONDS", "10"))
GROUPS = 10


def create(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result arrives
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def rebalance_once(bootstrap, group):
    members, ready, errors = 4, [], []
    start = threading.Barrier(members + 1)

    def member():
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 10000, "heartbeat.interval.ms": 500, "enable.auto.commit": False})
        try:
            start.wait()
            c.subscribe(["rb"])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                m = c.poll(0.05)
                if m is not None and m.error() is None and c.assignment():
                    ready.append(time.monotonic())
                    break
            else:
                errors.append("no record within 60 s")
            # Stay a member until everyone is in, so no one leaves mid-rebalance.
            while len(ready) + len(errors) < members:
                c.poll(0.05)
            # The last to join may have been assigned before the others settled:
            # keep polling until the group is stable for everyone.
            stable_until = time.monotonic() + 1
            while time.monotonic() < stable_until:
                c.poll(0.05)
        finally:
            c.close()

    threads = [threading.Thread(target=member) for _ in range(members)]
    for t in threads:
        t.start()
    start.wait()
    began = time.monotonic()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return max(ready) - began


def rebalance():
    with tempfile.TemporaryDirectory() as d:
        b = Broker(d).start()
        try:
            create(b.bootstrap, "rb", 12)
            p = Producer({"bootstrap.servers": b.bootstrap})
            for i in range(12 * 100):
                p.produce("rb", b"x" * 100, partition=i % 12)
            p.flush(30)
            # The first group creates __consumer_offsets; do not time that.
            rebalance_once(b.bootstrap, "warm-up")
            times = [rebalance_once(b.bootstrap, f"g{i}") for i in range(RUNS)]
        finally:
            b.stop()
    print(f"  rebalance, 4 members / 12 partitions: p50 {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s over {RUNS} runs", flush=True)
    return {"runs": RUNS, "p50_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
            "times_s": [round(t, 3) for t in times]}


def commits():
    with tempfile.TemporaryDirectory() as d:
        b = Broker(d).start()
        try:
            create(b.bootstrap, "cm", GROUPS)
            counts = [0] * GROUPS
            stop = threading.Event()
            begin = threading.Barrier(GROUPS + 1)

            def committer(i):
                c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": f"cg{i}", "enable.auto.commit": False})
                try:
                    c.commit(offsets=[TopicPartition("cm", i, 0)], asynchronous=False)  # coordinator found
                    begin.wait()
                    n = 0
                    while not stop.is_set():
                        n += 1
                        c.commit(offsets=[TopicPartition("cm", i, n)], asynchronous=False)
                    counts[i] = n
                finally:
                    c.close()

            threads = [threading.Thread(target=committer, args=(i,)) for i in range(GROUPS)]
            for t in threads:
                t.start()
            begin.wait()
            t0 = time.monotonic()
            time.sleep(SECONDS)
            stop.set()
            for t in threads:
                t.join(60)
            elapsed = time.monotonic() - t0
        finally:
            b.stop()
    rate = sum(counts) / elapsed
    print(f"  commits, {GROUPS} groups: {rate:,.0f} commits/s", flush=True)
    return {"groups": GROUPS, "commits_per_s": round(rate), "per_group": counts}


def main():
    which = sys.argv[1:] or ["rebalance", "commits"]
    print(json.dumps({name: globals()[name]() for name in which}, indent=2))


if __name__ == "__main__":
    main()
