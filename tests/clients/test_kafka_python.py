"""kafka-python 3.x against a real broker: codecs, keys, admin, idempotence,
size limits, and kill -9 recovery."""
import collections
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import MessageSizeTooLargeError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

from helpers import read_back


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_round_trip_with_every_codec(broker, codec):
    topic = f"codec-{codec or 'none'}"
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type=codec, linger_ms=5)
    futures = [producer.send(topic, f"value-{i}".encode()) for i in range(500)]
    producer.flush()
    offsets = [f.get(timeout=30).offset for f in futures]
    assert offsets == list(range(500))
    producer.close()
    msgs = read_back(broker.bootstrap, topic, [0], 500)
    assert [m.value for m in msgs[:500]] == [f"value-{i}".encode() for i in range(500)]


def test_keyed_records_land_in_one_partition_each_in_order(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("keyed", num_partitions=4, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    sent = collections.defaultdict(set)
    futures = []
    for i in range(400):
        key = f"key-{i % 10}".encode()
        futures.append((key, i, producer.send("keyed", key=key, value=str(i).encode())))
    producer.flush()
    for key, _, f in futures:
        sent[key].add(f.get(timeout=30).partition)
    producer.close()
    assert all(len(p) == 1 for p in sent.values()), "each key maps to exactly one partition"
    msgs = read_back(broker.bootstrap, "keyed", [0, 1, 2, 3], 400)
    by_key = collections.defaultdict(list)
    for m in msgs:
        assert m.partition in sent[m.key]
        by_key[m.key].append(int(m.value))
    for key, values in by_key.items():
        assert values == sorted(values), f"order kept for {key}"
        assert len(values) == 40


def test_admin_create_delete_and_grow_topics(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("adm", num_partitions=1, replication_factor=1)])
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic("adm", num_partitions=1, replication_factor=1)])
    assert "adm" in admin.list_topics()
    admin.create_partitions({"adm": NewPartitions(total_count=3)})
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    assert consumer.partitions_for_topic("adm") == {0, 1, 2}
    consumer.close()
    admin.delete_topics(["adm"])
    assert "adm" not in admin.list_topics()
    with pytest.raises(UnknownTopicOrPartitionError):
        admin.delete_topics(["adm"])
    admin.close()


def test_idempotent_producer_20000_records_exactly_once(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all",
                             linger_ms=5, batch_size=64 * 1024)
    n = 20_000
    futures = [producer.send("idem", value=str(i).encode()) for i in range(n)]
    producer.flush()
    for f in futures:
        f.get(timeout=60)
    producer.close()
    msgs = read_back(broker.bootstrap, "idem", [0], n, timeout=120)
    values = [int(m.value) for m in msgs]
    assert values == list(range(n)), "every record exactly once, in order"
    assert [m.offset for m in msgs] == list(range(n))


def test_900kb_record_accepted_and_3mb_rejected(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", max_request_size=10 * 1024 * 1024)
    ok = producer.send("sizes", b"x" * 900_000).get(timeout=30)
    assert ok.offset == 0
    with pytest.raises(MessageSizeTooLargeError):
        producer.send("sizes", b"y" * 3_000_000).get(timeout=30)
    producer.close()
    msgs = read_back(broker.bootstrap, "sizes", [0], 1, max_partition_fetch_bytes=2 * 1024 * 1024)
    assert len(msgs[0].value) == 900_000


def test_kill_9_and_restart_keeps_every_acknowledged_record(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=2)
    futures = [producer.send("durable", f"r{i}".encode()) for i in range(3000)]
    producer.flush()
    acked = [f.get(timeout=30).offset for f in futures]
    producer.close()
    broker.kill()
    broker.start()
    msgs = read_back(broker.bootstrap, "durable", [0], len(acked))
    assert [m.value for m in msgs] == [f"r{i}".encode() for i in range(3000)]
    assert [m.offset for m in msgs] == acked


def test_compacted_topic_keeps_the_last_value_of_each_key(broker_factory):
    """cleanup.policy=compact: kafka-python writes versions and tombstones;
    kafka-python and confluent-kafka read back the last value of each key,
    across the offset gaps compaction leaves."""
    from confluent_kafka import Consumer, TopicPartition as CTopicPartition
    from kafka import TopicPartition
    from conftest import wait_for
    b = broker_factory(RAFTKA_LOG_RETENTION_CHECK_INTERVAL_MS="100", RAFTKA_LOG_CLEANER_MIN_DIRTY_RECORDS="10")
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    admin.create_topics([NewTopic("profiles", 1, 1, topic_configs={"cleanup.policy": "compact",
                                                                   "delete.retention.ms": "0"})])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=b.bootstrap, acks="all", linger_ms=5)
    for version in range(20):
        for user in range(10):
            producer.send("profiles", key=b"user-%d" % user, value=b"user-%d v%d" % (user, version))
        producer.flush()
    producer.send("profiles", key=b"user-3", value=None)  # deleted
    producer.flush()
    # The newest batch is never compacted (as Kafka never cleans its active
    # segment), so one more write lets the tombstone itself go.
    producer.send("profiles", key=b"user-9", value=b"user-9 v20")
    producer.flush()
    producer.close()
    want = {f"user-{u}": f"user-{u} v19" for u in range(9) if u != 3}
    want["user-9"] = "user-9 v20"

    def read_kafka_python():
        consumer = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=None, auto_offset_reset="earliest",
                                 consumer_timeout_ms=2000)
        consumer.assign([TopicPartition("profiles", 0)])
        got = [(m.offset, m.key.decode(), m.value and m.value.decode()) for m in consumer]
        consumer.close()
        return got

    got = wait_for(lambda: (lambda r: r if len(r) == 9 else None)(read_kafka_python()), 30,
                   "the log compacted to the live keys")
    assert {k: v for _, k, v in got} == want
    assert [o for o, _, _ in got] == [190, 191, 192, 194, 195, 196, 197, 198, 201], got

    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "compacted", "enable.auto.commit": False})
    c.assign([CTopicPartition("profiles", 0, 0)])
    seen = {}
    deadline = time.monotonic() + 20
    while len(seen) < 9 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen[m.key().decode()] = (m.offset(), m.value().decode())
    c.close()
    assert {k: v for k, (_, v) in seen.items()} == want
