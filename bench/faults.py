"""Fault campaign (issue 15): failover as a client with default settings sees it.

A 3-node cluster (scripts/cluster), one topic of 6 partitions with RF=3, and
PRODUCERS idempotent producers with librdkafka's default settings (acks=all is
its default), each writing a numbered record to every partition every 5 ms.
FAULTS faults are made one after the other, cycling through five kinds, each on
a node that leads partitions at the time:

- kill:        SIGKILL, restarted after HOLD seconds;
- controller:  SIGKILL of the metadata leader, restarted after HOLD seconds;
- restart:     SIGTERM (a graceful stop) and an immediate start;
- pause:       SIGSTOP for PAUSE seconds (default HOLD), then SIGCONT;
- partition:   the node's Raft traffic cut (nftables) for HOLD seconds.

After each fault is undone the next waits until every node is ready again
and SETTLE seconds more. Per kind it reports, over every partition the victim
led when the fault began:

- outage: from the fault to the first ack of a record sent after it (for
  pauses also past the pause as held: a stopped leader answers nothing, and
  an idempotent producer waits for its in-flight requests before it moves);

and over every partition, from the fault to the next one:

- stall: the longest time without any ack (restarts, resumes and the return
  of leaderships to a returning node included).

Then everything is read back with an independent consumer: acknowledged
records lost, records duplicated, and records out of their producer's order
(all must be 0).

    make bench-faults    # or: RAFTKA_BIN=... python bench/faults.py

KINDS=kill,restart cycles through some kinds only; LOGS=dir keeps the
brokers' logs (at info, or RUST_LOG) for reading an outlier's story;
DETAIL=1 prints each fault's figures, with its wall-clock time, on stderr.
"""
import bisect
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "clients"))
import conftest  # noqa: E402
from conftest import Cluster, wait_for  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

FAULTS = int(os.environ.get("FAULTS", "100"))
PRODUCERS = int(os.environ.get("PRODUCERS", "4"))
HOLD = float(os.environ.get("HOLD", "2"))
# A request in flight to a stopped process waits until it wakes, so a pause's
# outage is at least its length: PAUSE sets it apart from HOLD.
PAUSE = float(os.environ.get("PAUSE", str(HOLD)))
SETTLE = float(os.environ.get("SETTLE", "1"))
SEED = int(os.environ.get("SEED", "15"))
DETAIL = os.environ.get("DETAIL") == "1"  # per-fault figures on stderr
PARTITIONS = 6
TOPIC = "faults"
KINDS = os.environ.get("KINDS", "kill,controller,restart,pause,partition").split(",")
LOGS = os.environ.get("LOGS")  # a directory: brokers log at info there, kept after the run


class Writer:
    """One default-settings idempotent producer in its own thread; keeps,
    per partition, when each record was sent and when it was acked."""

    def __init__(self, index, bootstrap):
        self.index = index
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        self.sent = [[] for _ in range(PARTITIONS)]  # per partition: send time of acked record i
        self.acked_at = [[] for _ in range(PARTITIONS)]
        self.acked = [[] for _ in range(PARTITIONS)]  # sequence numbers, in ack order
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        seq = 0
        while not self.stop.is_set():
            for p in range(PARTITIONS):
                def done(err, _msg, p=p, seq=seq, sent=time.monotonic()):
                    if err is not None:
                        self.errors.append(str(err))
                        return
                    self.sent[p].append(sent)
                    self.acked_at[p].append(time.monotonic())
                    self.acked[p].append(seq)
                try:
                    self.producer.produce(TOPIC, f"{self.index}:{seq}".encode(), partition=p, on_delivery=done)
                except BufferError:
                    pass
            seq += 1
            self.producer.poll(0.005)
        self.left = self.producer.flush(120)

    def first_ack_after(self, p, t):
        i = bisect.bisect_right(self.sent[p], t)
        return self.acked_at[p][i] if i < len(self.acked_at[p]) else None


def admin(c, nodes):
    return AdminClient({"bootstrap.servers": c.bootstrap(*nodes)})


def leaders(c, nodes):
    md = admin(c, nodes).list_topics(TOPIC, timeout=5)
    return {p: info.leader for p, info in md.topics[TOPIC].partitions.items()}, md.controller_id


def ready(c):
    return all(c.http(n, "/v1/ready")[0] == 200 for n in (1, 2, 3))


def exited(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def start_when_gone(c, victim, pid):
    """Starts `victim` again once its process `pid` is gone — to the
    cluster script too, which may still see it for a moment (one run in
    several broke on "node 3 already running" right after a kill)."""
    wait_for(lambda: exited(pid), 30, f"node {victim} dying")

    def started():
        try:
            c.run("start", victim)
            return True
        except AssertionError as e:
            if "already running" not in str(e):
                raise
            time.sleep(0.05)
            return False
    wait_for(started, 30, f"node {victim} started again")


def inject(c, kind, victim):
    """Makes the fault; returns when it took effect (records sent before may
    still be acknowledged by the victim) and a function that undoes it."""
    if kind in ("kill", "controller"):
        pid = c.pid(victim)
        c.run("kill", victim)
        at = time.monotonic()
        # Gone before it is started again (under load, a process in a
        # blocking write takes a moment to die).
        return at, lambda: start_when_gone(c, victim, pid)
    if kind == "restart":
        pid = c.pid(victim)
        os.kill(pid, signal.SIGTERM)
        at = time.monotonic()
        start_when_gone(c, victim, pid)
        return at, lambda: None
    if kind == "pause":
        c.run("pause", victim)
        return time.monotonic(), lambda: c.run("resume", victim)
    c.run("partition", victim)
    return time.monotonic(), lambda: c.run("heal")


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else None


def read_back(c):
    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "faults-readback",
                     "enable.auto.commit": False})
    ends = {p: cons.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=30)[1] for p in range(PARTITIONS)}
    cons.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    got = {p: [] for p in range(PARTITIONS)}
    left = {p for p in range(PARTITIONS) if ends[p] > 0}
    deadline = time.monotonic() + 600
    while left and time.monotonic() < deadline:
        for m in cons.consume(10000, 1.0):
            if m.error():
                continue
            got[m.partition()].append(m.value())
            if m.offset() + 1 >= ends[m.partition()]:
                left.discard(m.partition())
    cons.close()
    assert not left, f"partitions {sorted(left)} not read to their ends"
    return got


def check(writers, got):
    lost = duplicated = reordered = 0
    for p in range(PARTITIONS):
        seen = {}
        for v in got[p]:
            w, seq = map(int, v.split(b":"))
            seen.setdefault(w, []).append(seq)
        for w in writers:
            in_log = seen.get(w.index, [])
            duplicated += len(in_log) - len(set(in_log))
            lost += len(set(w.acked[p]) - set(in_log))
            reordered += sum(1 for a, b in zip(in_log, in_log[1:]) if b < a)
    return lost, duplicated, reordered


def main():
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory() as d:
        c = Cluster(d, 3)
        c.env["RUST_LOG"] = os.environ.get("RUST_LOG", "info,openraft=warn") if LOGS else "warn"
        c.run("up", 3, timeout=180)
        try:
            creator = admin(c, (1, 2, 3))  # kept alive until the create is answered
            creator.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])[TOPIC].result(60)
            wait_for(lambda: ready(c), 60, "leaders everywhere")
            writers = [Writer(i, c.bootstrap()) for i in range(PRODUCERS)]
            for w in writers:
                w.thread.start()
            wait_for(lambda: all(len(w.acked[p]) > 50 for w in writers for p in range(PARTITIONS)), 60,
                     "records acked before the first fault")
            faults = []
            for n in range(FAULTS):
                kind = KINDS[n % len(KINDS)]
                led, controller = leaders(c, (1, 2, 3))
                if kind == "controller":
                    victim = controller
                else:
                    candidates = sorted({lead for lead in led.values() if lead > 0} - {controller}) or \
                        sorted({lead for lead in led.values() if lead > 0})
                    victim = rng.choice(candidates)
                affected = [p for p, lead in led.items() if lead == victim]
                at, undo = inject(c, kind, victim)
                time.sleep(max(0.0, at + (PAUSE if kind == "pause" else HOLD) - time.monotonic()))
                undo()
                held = time.monotonic() - at
                wait_for(lambda: ready(c), 120, f"the cluster ready after {kind} of node {victim}")
                time.sleep(SETTLE)
                faults.append({"kind": kind, "victim": victim, "at": at, "wall": time.time() - (time.monotonic() - at),
                               "affected": affected, "held": held,
                               "load": os.getloadavg()[0]})
                print(f"fault {n + 1}/{FAULTS}: {kind} of node {victim}, led {affected} of {led}", file=sys.stderr)
            end = time.monotonic()
            for w in writers:
                w.stop.set()
            for w in writers:
                w.thread.join(180)
            errors = sum(len(w.errors) for w in writers)
            unflushed = sum(getattr(w, "left", 0) for w in writers)
            acks = {p: sorted(t for w in writers for t in w.acked_at[p]) for p in range(PARTITIONS)}
            report = {}
            for i, f in enumerate(faults):
                until = faults[i + 1]["at"] if i + 1 < len(faults) else end
                r = report.setdefault(f["kind"], {"faults": 0, "outage": [], "stall": [], "held": [], "beyond": []})
                r["faults"] += 1
                r["held"].append(f["held"])
                outages, stalls = {}, {}
                for p in f["affected"]:
                    firsts = [a for a in (w.first_ack_after(p, f["at"]) for w in writers) if a is not None]
                    outages[p] = (min(firsts) if firsts else until) - f["at"]
                for p in range(PARTITIONS):
                    ts = acks[p]
                    lo, hi = bisect.bisect_right(ts, f["at"]), bisect.bisect_right(ts, until)
                    window = [f["at"]] + ts[lo:hi] + [until]
                    gap = max(zip(window, window[1:]), key=lambda ab: ab[1] - ab[0])
                    stalls[p] = (round(gap[1] - gap[0], 3), round(gap[0] - f["at"], 3))
                r["outage"].extend(outages.values())
                r["beyond"].extend(o - f["held"] for o in outages.values())
                r["stall"].extend(s for s, _ in stalls.values())
                if DETAIL:
                    print(json.dumps({"fault": i + 1, "kind": f["kind"], "victim": f["victim"],
                                      "wall": round(f["wall"], 3), "held_s": round(f["held"], 3),
                                      "outage_s": {p: round(o, 3) for p, o in outages.items()},
                                      "stall_s_and_start": stalls}), file=sys.stderr)
            got = read_back(c)
            lost, duplicated, reordered = check(writers, got)
            summary = {"producers": PRODUCERS, "hold_s": HOLD, "pause_s": PAUSE,
                       "records_acked": sum(len(a) for a in acks.values()),
                       "delivery_errors": errors, "unflushed": unflushed, "lost": lost,
                       "duplicated": duplicated, "reordered": reordered,
                       "load_avg_median": round(statistics.median(f["load"] for f in faults), 2), "kinds": {}}
            for kind in KINDS:
                r = report.get(kind)
                if not r:
                    continue
                summary["kinds"][kind] = {
                    "faults": r["faults"], "partitions": len(r["outage"]),
                    **{f"outage_{name}_s": round(pct(r["outage"], q), 3) if r["outage"] else None
                       for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))},
                    **{f"stall_{name}_s": round(pct(r["stall"], q), 3)
                       for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))},
                    "held_max_s": round(max(r["held"]), 3),
                }
                if kind == "pause" and r["beyond"]:
                    # A paused leader holds requests until it wakes: what the
                    # broker adds is the outage past the pause as it was held.
                    summary["kinds"][kind].update({f"outage_past_pause_{name}_s": round(pct(r["beyond"], q), 3)
                                                   for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))})
            kinds = summary.pop("kinds")
            print(json.dumps(summary))
            for kind, figures in kinds.items():
                print(json.dumps({"kind": kind, **figures}))
        finally:
            c.run("down")
            if LOGS:
                shutil.copytree(d, LOGS, dirs_exist_ok=True)


if __name__ == "__main__":
    conftest.BIN = os.environ.get("RAFTKA_BIN", conftest.BIN)
    main()
