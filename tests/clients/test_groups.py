"""Consumer groups with real clients against real brokers: membership and
rebalancing (kafka-python, confluent-kafka, aiokafka), committed offsets
handed to a successor after a SIGKILL, and a coordinator killed mid-stream in
a 3-node cluster."""
import asyncio
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

from conftest import wait_for

TOPIC = "events"


def create(bootstrap, name=TOPIC, partitions=4, rf=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result arrives
    admin.create_topics([NewTopic(name, partitions, rf)])[name].result(30)


def produce(bootstrap, count, topic=TOPIC, partitions=4):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(count):
        p.produce(topic, str(i).encode(), partition=i % partitions)
    assert p.flush(30) == 0


def covers(assignments, partitions=4):
    """Non-empty, pairwise disjoint sets covering 0..partitions-1."""
    total = sum(len(a) for a in assignments)
    union = set().union(*assignments)
    return all(assignments) and total == len(union) and union == set(range(partitions))


def commit_positions(c):
    """Commits the consumer's positions; true once they are committed."""
    try:
        c.commit(asynchronous=False)
        return True
    except KafkaException as e:
        return e.args[0].code() == KafkaError._NO_OFFSET  # nothing new since the last commit


def test_kafka_python_group_rebalances_on_join_and_leave(broker):
    create(broker.bootstrap)

    def consumer():
        return KafkaConsumer(TOPIC, bootstrap_servers=broker.bootstrap, group_id="kp", session_timeout_ms=6000,
                             heartbeat_interval_ms=200, auto_offset_reset="earliest")

    def owned(c):
        c.poll(timeout_ms=50)
        return {tp.partition for tp in c.assignment()}

    a, b = consumer(), consumer()
    wait_for(lambda: covers([owned(a), owned(b)]), 60, "two members splitting four partitions")
    b.close()
    wait_for(lambda: owned(a) == {0, 1, 2, 3}, 60, "the remaining member owning all four")
    c = consumer()
    wait_for(lambda: covers([owned(a), owned(c)]), 60, "a third consumer taking its share")
    a.close()
    c.close()


@pytest.mark.parametrize("assignor", ["range", "roundrobin", "cooperative-sticky"])
def test_confluent_group_rebalances_and_commits(broker, assignor):
    create(broker.bootstrap)
    produce(broker.bootstrap, 400)

    def consumer(name):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "ck", "client.id": name,
                      "session.timeout.ms": 6000, "heartbeat.interval.ms": 200, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "partition.assignment.strategy": assignor})
        c.subscribe([TOPIC])
        return c

    seen = {}

    def owned(c):
        m = c.poll(0.05)
        if m is not None and m.error() is None:
            seen[(m.partition(), m.offset())] = m.value()
            try:
                c.commit(m, asynchronous=False)
            except KafkaException as e:
                # As with Kafka: a commit while the group rebalances is refused;
                # the record goes to the partition's next owner again.
                assert e.args[0].code() in (KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION), e
        return {tp.partition for tp in c.assignment()}

    a, b = consumer("a"), consumer("b")
    wait_for(lambda: covers([owned(a), owned(b)]), 60, "two members splitting four partitions")
    b.close()
    wait_for(lambda: owned(a) == {0, 1, 2, 3} and len(seen) == 400, 60, "one member reading everything")
    wait_for(lambda: commit_positions(a), 30, "the last positions committed")
    committed = a.committed([TopicPartition(TOPIC, p) for p in range(4)], timeout=10)
    assert [tp.offset for tp in committed] == [100, 100, 100, 100]
    a.close()
    assert sorted(int(v) for v in seen.values()) == list(range(400))


def test_aiokafka_group_members_split_partitions(broker):
    create(broker.bootstrap)

    async def run():
        def consumer():
            return AIOKafkaConsumer(TOPIC, bootstrap_servers=broker.bootstrap, group_id="aio",
                                    session_timeout_ms=6000, heartbeat_interval_ms=200,
                                    auto_offset_reset="earliest")
        a, b = consumer(), consumer()
        await a.start()
        await b.start()
        try:
            deadline = time.monotonic() + 60
            while not covers([{tp.partition for tp in a.assignment()}, {tp.partition for tp in b.assignment()}]):
                assert time.monotonic() < deadline, "aiokafka members never split the partitions"
                await asyncio.gather(a.getmany(timeout_ms=50), b.getmany(timeout_ms=50))
            await b.stop()
            while {tp.partition for tp in a.assignment()} != {0, 1, 2, 3}:
                assert time.monotonic() < deadline, "the remaining aiokafka member never took all four"
                await a.getmany(timeout_ms=50)
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(run())


def test_static_member_restarts_into_its_partitions_without_a_rebalance_wait(broker):
    create(broker.bootstrap)

    def member(instance):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "static", "group.instance.id": instance,
                      "session.timeout.ms": 60000, "heartbeat.interval.ms": 200, "auto.offset.reset": "earliest"})
        c.subscribe([TOPIC])
        return c

    def owned(c):
        c.poll(0.05)
        return {tp.partition for tp in c.assignment()}

    a, b = member("a"), member("b")
    wait_for(lambda: covers([owned(a), owned(b)]), 60, "two static members splitting four partitions")
    b.close()  # a static member does not leave the group on close
    restarted = time.monotonic()
    b = member("b")
    # Well within the 60 s session (a new dynamic member would wait for the
    # old one to expire): the returning instance takes the old one's place.
    wait_for(lambda: covers([owned(a), owned(b)]), 30, "the static member back in the group")
    assert time.monotonic() - restarted < 30
    a.close()
    b.close()


KILLED_CONSUMER = textwrap.dedent("""
    import sys
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "crash", "session.timeout.ms": 3000,
                  "heartbeat.interval.ms": 200, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["crash"])
    read = 0
    while read < 50:
        m = c.poll(1)
        if m is None or m.error():
            continue
        read += 1
        if read <= 30:
            c.commit(m, asynchronous=False)
    print("committed 30, read", read, flush=True)
    while True:
        c.poll(0.1)  # stays a live member until killed
""")


def test_sigkilled_member_expires_and_successor_resumes_from_commits(broker, tmp_path):
    create(broker.bootstrap, "crash", 1)
    produce(broker.bootstrap, 100, "crash", 1)
    script = tmp_path / "member.py"
    script.write_text(KILLED_CONSUMER)
    proc = subprocess.Popen([sys.executable, str(script), broker.bootstrap], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("committed 30"), line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    killed = time.monotonic()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "crash", "session.timeout.ms": 6000,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["crash"])
    first = wait_for(lambda: (lambda m: m if m is not None and m.error() is None else None)(c.poll(0.2)), 60,
                     "the successor's first record")
    waited = time.monotonic() - killed
    c.close()
    # Nothing committed is read again; the uncommitted 30..49 are (at least once).
    assert first.offset() == 30
    # The dead member held the partition until its 3 s session expired.
    assert waited >= 2.5, f"took over after {waited:.2f}s, before the dead member's session expired"


def coordinator_of(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    desc = admin.describe_consumer_groups([group])[group].result(10)
    return desc.coordinator.id


def test_coordinator_killed_during_consumption(cluster_factory):
    c = cluster_factory(3)
    boot = c.bootstrap()
    create(boot, "stream", 4, rf=3)
    produce(boot, 2000, "stream")
    consumer = Consumer({"bootstrap.servers": boot, "group.id": "survivor", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 300})
    consumer.subscribe(["stream"])
    seen = set()

    def consume_until(n):
        def step():
            for m in consumer.consume(num_messages=100, timeout=0.1):
                if m.error() is None:
                    seen.add((m.partition(), m.offset()))
                    if len(seen) % 50 == 0:
                        commit_positions(consumer)  # may fail while the coordinator moves
                if len(seen) >= n:
                    break
            return len(seen) >= n
        wait_for(step, 90, f"{n} records consumed")

    consume_until(800)
    wait_for(lambda: commit_positions(consumer), 30, "positions committed")
    consumed_before = len(seen)
    before = {tp.partition: tp.offset for tp in
              consumer.committed([TopicPartition("stream", p) for p in range(4)], timeout=10)}
    victim = wait_for(lambda: coordinator_of(boot, "survivor"), 30, "the group's coordinator")
    c.run("kill", victim)
    killed = time.monotonic()
    survivors = c.bootstrap(*[n for n in (1, 2, 3) if n != victim])

    def committed_by_new_coordinator():
        probe = Consumer({"bootstrap.servers": survivors, "group.id": "survivor"})
        try:
            got = probe.committed([TopicPartition("stream", p) for p in range(4)], timeout=5)
            return {tp.partition: tp.offset for tp in got} == before
        except Exception:
            return False
        finally:
            probe.close()

    wait_for(committed_by_new_coordinator, 30, "the committed offsets, from the new coordinator")
    print(f"offsets read back from the new coordinator {time.monotonic() - killed:.2f} s after the kill")
    consume_until(2000)
    print(f"all records consumed {time.monotonic() - killed:.2f} s after the kill")

    def committed_everything():
        if not commit_positions(consumer):
            return False
        try:
            got = consumer.committed([TopicPartition("stream", p) for p in range(4)], timeout=5)
        except KafkaException:
            return False
        return {tp.partition: tp.offset for tp in got} == {p: 500 for p in range(4)}

    wait_for(committed_everything, 60, "offsets committed through the new coordinator")
    print(f"final offsets committed {time.monotonic() - killed:.2f} s after the kill")
    consumer.close()
    assert coordinator_of(survivors, "survivor") != victim
    # Partitions not read yet have no committed offset (-1001).
    assert sum(max(o, 0) for o in before.values()) == consumed_before
    # A new member of the group resumes at the end: nothing is redelivered.
    fresh = Consumer({"bootstrap.servers": survivors, "group.id": "survivor", "enable.auto.commit": False})
    got = fresh.committed([TopicPartition("stream", p) for p in range(4)], timeout=10)
    assert [tp.offset for tp in got] == [500] * 4
    fresh.close()

    # A full restart of the cluster keeps them too.
    c.run("down")
    c.run("up", 3)

    def committed_after_restart():
        probe = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "survivor"})
        try:
            got = probe.committed([TopicPartition("stream", p) for p in range(4)], timeout=5)
            return [tp.offset for tp in got] == [500] * 4
        except KafkaException:
            return False
        finally:
            probe.close()

    wait_for(committed_after_restart, 60, "the committed offsets after a full cluster restart")


def test_kafka_python_assign_and_commit_without_membership(broker):
    create(broker.bootstrap, "manual", 2)
    produce(broker.bootstrap, 10, "manual", 2)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="manual-group", enable_auto_commit=False,
                      auto_offset_reset="earliest")
    tp = KpTopicPartition("manual", 1)
    c.assign([tp])
    got = []
    wait_for(lambda: got.extend(m for ms in c.poll(timeout_ms=200).values() for m in ms) or len(got) >= 5, 30,
             "five records of partition 1")
    c.commit()
    assert c.committed(tp) == 5
    c.close()
    # kafka-python 3.x reads the committed position back in a fresh consumer.
    d = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="manual-group", enable_auto_commit=False)
    assert d.committed(tp) == 5
    d.close()
