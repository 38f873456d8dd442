"""Storage crash tests: `kill -9` of brokers while they take writes, while a
replica catches up through snapshots (it was behind by more than the Raft log
keeps), while partitions are compacted and trimmed by retention. Afterwards,
every acknowledged record is read back, and every replica's own copy
(`/v1/internal/replicas`, never forwarded) holds exactly the same batches —
what any of them would serve as leader."""
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import wait_for
from test_cluster import PARTITIONS, Load, check_invariants, create_topic, leader

# Entries between snapshots and Raft log purges: the scenarios cross it many
# times per partition.
SNAPSHOT_LOGS = 100
# Segment files this small roll over every few hundred records, so the kills
# land before, during and after roll-overs and segment deletions.
SEGMENT_BYTES = 32 * 1024
NODES = (1, 2, 3)


def replica(c, node, topic, partition):
    status, body = c.http(node, f"/v1/internal/replicas/{topic}/{partition}")
    return body if status == 200 else None


def replicas_agree(c, topic, partitions, timeout=90):
    """Waits until every node's replica of every partition holds the same
    batches (offset, length and CRC of each stored value)."""
    def same():
        for p in range(partitions):
            copies = [replica(c, n, topic, p) for n in NODES]
            if any(r is None for r in copies):
                return False
            stored = [(r["log_start_offset"], r["high_watermark"], r["batches"]) for r in copies]
            if any(s != stored[0] for s in stored):
                return False
        return True
    wait_for(same, timeout, f"every replica of {topic} to hold the same batches")
    return [replica(c, 1, topic, p) for p in range(partitions)]


def test_kill_9_during_produce_and_during_catch_up_loses_nothing(cluster_factory):
    c = cluster_factory(3, raft_snapshot_logs=SNAPSHOT_LOGS, log_segment_bytes=SEGMENT_BYTES)
    topic = "crash"
    create_topic(c.bootstrap(), topic)
    load = Load(c.bootstrap(), topic).start()
    wait_for(lambda: load.count() > 2000, 60, "records acked before the first kill")

    # A follower dies; the others write on, tens of snapshot intervals.
    c.run("kill", 3)
    before = load.count()
    wait_for(lambda: load.count() > before + 30_000, 120, "writes while node 3 is down")

    # Node 3 returns and is killed again in the middle of its catch-up.
    c.run("start", 3)
    wait_for(lambda: replica(c, 3, topic, 0) is not None, 30, "node 3 to serve its replicas")
    c.run("kill", 3)
    c.run("start", 3)

    # A leader dies in the middle of produce.
    victim = wait_for(lambda: leader(c.bootstrap(), topic, 0), 30, "partition 0's leader")
    before = load.count()
    wait_for(lambda: load.count() > before + 2000, 60, "writes before the leader is killed")
    c.run("kill", victim)
    before = load.count()
    wait_for(lambda: load.count() > before + 2000, 60, "writes after the leader was killed")
    c.run("start", victim)
    before = load.count()
    wait_for(lambda: load.count() > before + 2000, 60, "writes with every node back")
    load.finish()

    check_invariants(c.bootstrap(), load)
    copies = replicas_agree(c, topic, PARTITIONS)
    for p in range(PARTITIONS):
        assert copies[p]["high_watermark"] >= load.count(p), f"partition {p} holds fewer offsets than acks"


class KeyedLoad(Load):
    """An idempotent acks=all producer writing `keys` keys round-robin to
    each topic's partitions, remembering what was acknowledged (thread,
    failure and finish as `Load`)."""

    def __init__(self, bootstrap, topics, keys=40):
        super().__init__(bootstrap, topics[0])
        self.topics, self.keys = topics, keys
        self.acked = {t: {p: [] for p in range(3)} for t in topics}

    def _run(self):
        n = 0
        while not self.stop_flag.is_set():
            for t in self.topics:
                key, value = f"k{n % self.keys}".encode(), f"{n}".encode() * 8

                def on_delivery(err, msg, t=t):
                    if err is None:
                        self.acked[t][msg.partition()].append((msg.key(), msg.value()))
                    else:
                        self.errors.append(str(err))
                try:
                    self.producer.produce(t, value, key=key, partition=n % 3, on_delivery=on_delivery)
                except BufferError:
                    pass
            n += 1
            self.producer.poll(0.001 if n % 50 == 0 else 0)
        assert self.producer.flush(90) == 0, "records left unacknowledged"

    def count(self, p=None):
        return sum(len(v) for parts in self.acked.values() for v in parts.values())


def test_kill_9_during_compaction_and_retention_keeps_replicas_identical(cluster_factory):
    c = cluster_factory(3, raft_snapshot_logs=SNAPSHOT_LOGS, log_retention_check_interval_ms=100,
                        log_cleaner_min_dirty_records=300, log_segment_bytes=SEGMENT_BYTES)
    admin = AdminClient({"bootstrap.servers": c.bootstrap()})
    futures = admin.create_topics([
        NewTopic("compacted", 3, 3, config={"cleanup.policy": "compact"}),
        NewTopic("expiring", 3, 3, config={"retention.bytes": "30000"}),
    ])
    for f in futures.values():
        f.result(30)
    for t in ("compacted", "expiring"):
        wait_for(lambda t=t: all(leader(c.bootstrap(), t, p) is not None for p in range(3)), 30, f"leaders of {t}")

    load = KeyedLoad(c.bootstrap(), ("compacted", "expiring")).start()
    for round, victim in enumerate((1, 2, 3, 1)):
        before = load.count()
        wait_for(lambda: load.count() > before + 5000, 120, f"writes before node {victim} is killed")
        applied = {p: replica(c, victim, "expiring", p)["raft_applied"] or 0 for p in range(3)}
        c.run("kill", victim)
        before = load.count()
        wait_for(lambda: load.count() > before + 3000, 120, f"writes while node {victim} is down")
        if round == 0:
            # Retention let go of the entries the victim still needs: it
            # catches up through a snapshot that carries the records.
            others = [n for n in NODES if n != victim]

            def purged_past_victim():
                for p in range(3):
                    lead = leader(c.bootstrap(*others), "expiring", p)
                    r = replica(c, lead, "expiring", p) if lead in others else None
                    if r is not None and (r["raft_purged"] or 0) > applied[p]:
                        return True
                return False
            wait_for(purged_past_victim, 60, f"a leader's Raft log purged past what node {victim} holds")
        c.run("start", victim)
    before = load.count()
    wait_for(lambda: load.count() > before + 3000, 120, "writes with every node back")
    load.finish()

    compacted = replicas_agree(c, "compacted", 3)
    expiring = replicas_agree(c, "expiring", 3)
    assert any(r["log_start_offset"] > 0 for r in expiring), "retention removed nothing"
    # Files go once a purge frees them whole: asynchronously (the purge
    # waits for a snapshot, and for the next retention tick after it).
    for n in NODES:
        for p in range(3):
            def first_file_gone(n=n, p=p):
                segments = replica(c, n, "expiring", p)["segments"]
                return bool(segments) and segments[0] > 1
            wait_for(first_file_gone, 30,
                     lambda n=n, p=p: f"node {n} to delete the first segment file of expiring/{p} after "
                                      f"retention: {replica(c, n, 'expiring', p)['segments']}")
    total = sum(r["high_watermark"] for r in compacted)
    stored = sum(len(r["batches"]) for r in compacted)
    got = read_all_keyed(c, "compacted", 3)
    kept = sum(len(v) for v in got.values())
    assert kept < total, f"compaction removed nothing ({kept} of {total} records, {stored} batches)"
    for p in range(3):
        # The newest acknowledged value of every key is what a reader finds last.
        last_acked, last_read = {}, {}
        for k, v in load.acked["compacted"][p]:
            last_acked[k] = v
        for k, v in got[p]:
            last_read[k] = v
        assert last_read == last_acked, f"compacted partition {p} lost a key's newest value"
    exp = read_all_keyed(c, "expiring", 3)
    for p in range(3):
        acked = load.acked["expiring"][p]
        assert exp[p] and exp[p] == acked[len(acked) - len(exp[p]):], \
            f"expiring partition {p} is not the newest part of what was acknowledged"


def read_all_keyed(c, topic, partitions):
    """Every (key, value) of every partition, read from its start."""
    # Retention may still move the log start past where the read began: a
    # reset then goes to the new start, not to the end.
    consumer = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "unused", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    ends = {p: replica(c, 1, topic, p)["high_watermark"] for p in range(partitions)}
    got = {p: [] for p in range(partitions)}
    last = {p: -1 for p in range(partitions)}
    errors = []
    deadline = time.monotonic() + 90
    while any(last[p] < ends[p] - 1 for p in range(partitions)) and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error():
            errors.append(str(m.error()))
        if m is None or m.error():
            continue
        got[m.partition()].append((m.key(), m.value()))
        last[m.partition()] = m.offset()
    consumer.close()
    stuck = [p for p in range(partitions) if last[p] < ends[p] - 1]
    seen = {p: {n: {k: v for k, v in (replica(c, n, topic, p) or {}).items() if k != "batches"} for n in NODES}
            for p in stuck}
    assert not stuck, f"read {last} of {ends} in {topic}; stuck partitions' replicas: {seen}, " \
        f"leaders: {[leader(c.bootstrap(), topic, p) for p in stuck]}, errors: {errors[-5:]}"
    return got
