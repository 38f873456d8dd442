"""confluent-kafka (librdkafka 2.x) against a real broker."""
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic, ResourceType


def consume(bootstrap, topic, partitions, count, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in partitions])
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        assert m.error() is None, m.error()
        out.append(m)
    c.close()
    assert len(out) == count, f"read {len(out)} of {count}"
    return out


def produce(bootstrap, topic, values, **conf):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **conf})
    results = []

    def on_delivery(err, msg):
        results.append((err, msg.offset() if err is None else None))
    for v in values:
        p.produce(topic, v, on_delivery=on_delivery)
        p.poll(0)
    assert p.flush(60) == 0
    return results


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_round_trip_with_every_codec(broker, codec):
    topic = f"ck-{codec}"
    values = [f"v{i}".encode() for i in range(1000)]
    results = produce(broker.bootstrap, topic, values, **{"compression.type": codec, "acks": "all"})
    assert all(err is None for err, _ in results)
    assert sorted(o for _, o in results) == list(range(1000))
    assert [m.value() for m in consume(broker.bootstrap, topic, [0], 1000)] == values


def test_idempotent_producer_20000_exactly_once(broker):
    values = [str(i).encode() for i in range(20_000)]
    results = produce(broker.bootstrap, "ck-idem", values, **{"enable.idempotence": True})
    assert all(err is None for err, _ in results)
    msgs = consume(broker.bootstrap, "ck-idem", [0], 20_000)
    assert [int(m.value()) for m in msgs] == list(range(20_000))


def test_admin_create_grow_delete(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("ck-adm", num_partitions=2, replication_factor=1)])["ck-adm"].result(30)
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic("ck-adm", num_partitions=2, replication_factor=1)])["ck-adm"].result(30)
    assert e.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic("bad/name", num_partitions=1, replication_factor=1)])["bad/name"].result(30)
    assert e.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    admin.create_partitions([NewPartitions("ck-adm", 4)])["ck-adm"].result(30)
    md = admin.list_topics(timeout=10)
    assert len(md.topics["ck-adm"].partitions) == 4
    admin.delete_topics(["ck-adm"])["ck-adm"].result(30)
    assert "ck-adm" not in admin.list_topics(timeout=10).topics


def test_oversized_record_is_rejected_with_a_clear_error(broker):
    results = produce(broker.bootstrap, "ck-big", [b"z" * 3_000_000], **{"message.max.bytes": 10_000_000})
    err, _ = results[0]
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_startup_topics_from_env_cap_replication_and_keep_policy(broker_factory):
    b = broker_factory(RAFTKA_CREATE_TOPICS="Topic1:1:3,Topic2:2:1:compact")
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    md = admin.list_topics(timeout=10)
    assert len(md.topics["Topic1"].partitions) == 1
    assert len(md.topics["Topic1"].partitions[0].replicas) == 1, "rf 3 capped to the one live broker"
    assert len(md.topics["Topic2"].partitions) == 2
    res = ConfigResource(ResourceType.TOPIC, "Topic2")
    configs = admin.describe_configs([res])[res].result(30)
    assert configs["cleanup.policy"].value == "compact"
    assert configs["retention.ms"].value == "604800000"


def test_describe_configs_for_broker_and_unknown_topic(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(ResourceType.BROKER, "1")
    configs = admin.describe_configs([res])[res].result(30)
    assert configs["message.max.bytes"].value == "1048588"
    assert configs["auto.create.topics.enable"].value == "true"
    missing = ConfigResource(ResourceType.TOPIC, "no-such-topic")
    with pytest.raises(KafkaException) as e:
        admin.describe_configs([missing])[missing].result(30)
    assert e.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_topic_max_message_bytes_is_enforced(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("ck-small", 1, 1, config={"max.message.bytes": "2000"})])["ck-small"].result(30)
    results = produce(broker.bootstrap, "ck-small", [b"a" * 100, b"b" * 5000], **{"batch.num.messages": 1})
    assert results[0][0] is None
    assert results[1][0] is not None and results[1][0].code() == KafkaError.MSG_SIZE_TOO_LARGE
