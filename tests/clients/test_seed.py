"""The seed notes' kafka-python snippets, unchanged but for the address.

Runs on kafka-python 2.x (as the notes were written) and 3.x. The group
consumers of the notes come with consumer groups (issue 4); here the data
is read back with consumers that have no group.
"""
import json

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic

from helpers import end_offset, read_back, run_seed


def test_seed_gzip_acks0_producer_is_read_back(broker, tmp_path):
    # acks=0 is at-most-once on the client side: kafka-python 2.0.2 marks the
    # batch done when it is queued, so a program that exits right after
    # flush() sometimes closes the socket before the request is written (the
    # broker never sees a Produce). Run the snippet until one run delivers.
    for _ in range(10):
        run_seed("producer_gzip_acks0.py", broker.bootstrap, tmp_path)
        if end_offset(broker.bootstrap, "test") > 0:
            break
    msgs = read_back(broker.bootstrap, "test", [0], 1, value_deserializer=lambda x: json.loads(x.decode("utf-8")))
    assert msgs[0].value == {"Hello": "World!"}
    assert (msgs[0].topic, msgs[0].partition, msgs[0].offset, msgs[0].key) == ("test", 0, 0, None)


def test_seed_multiprocessing_producer_is_read_back_in_order(broker, tmp_path):
    run_seed("multiprocessing/producer.py", broker.bootstrap, tmp_path)
    msgs = read_back(broker.bootstrap, "test", [0], 4)
    assert [json.loads(m.value)["message"] for m in msgs] == ["Hello", "World", "Good", "Morning"]
    assert [m.offset for m in msgs] == [0, 1, 2, 3]


def test_seed_create_partitions_then_partition_producer(broker, tmp_path):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(name="test", num_partitions=1, replication_factor=1)])
    run_seed("admin_create_partitions.py", broker.bootstrap, tmp_path)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    assert consumer.partitions_for_topic("test") == {0, 1, 2}
    consumer.close()
    admin.close()
    run_seed("partition_producer.py", broker.bootstrap, tmp_path)
    msgs = read_back(broker.bootstrap, "test", [0, 1, 2], 3)
    assert sorted(json.loads(m.value)["message"] for m in msgs) == ["Good", "Hello", "World"]
