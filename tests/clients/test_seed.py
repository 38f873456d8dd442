"""The seed notes' kafka-python snippets, unchanged but for the address.

Runs on kafka-python 2.x (as the notes were written) and 3.x: the producers
(read back without a group), the group consumer, the multiprocessing
consumer and the assign-and-commit consumer.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading

import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic

from conftest import wait_for
from helpers import KAFKA_PYTHON_3, end_offset, read_back, run_seed, seed_source


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


def warm_up_groups(bootstrap):
    """Has the broker create __consumer_offsets, as any cluster that has seen
    a group has: the seed's group consumer gives up after one idle second."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id="warm-up")
    from kafka import TopicPartition
    wait_for(lambda: c.committed(TopicPartition("warm-up", 0)) is None, 60, "a group coordinator")
    c.close()


class Snippet:
    """A seed program that runs until stopped, its output collected line by line."""

    def __init__(self, relpath, bootstrap, workdir, extra=()):
        for name in extra:
            with open(os.path.join(str(workdir), name), "w", encoding="utf-8") as f:
                f.write(seed_source(name if "/" in name else os.path.join(os.path.dirname(relpath), name),
                                    bootstrap))
        target = os.path.join(str(workdir), os.path.basename(relpath))
        with open(target, "w", encoding="utf-8") as f:
            f.write(seed_source(relpath, bootstrap))
        self.lines = []
        self.proc = subprocess.Popen([sys.executable, target], cwd=str(workdir), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self):
        return "".join(self.lines)

    def stop(self):
        # The snippet and the worker processes it forked: its own session.
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)


def test_seed_group_consumer_reads_the_seed_producers_record(broker, tmp_path):
    warm_up_groups(broker.bootstrap)
    for _ in range(10):
        run_seed("producer_gzip_acks0.py", broker.bootstrap, tmp_path)
        if end_offset(broker.bootstrap, "test") > 0:
            break
    out = run_seed("consumer_group.py", broker.bootstrap, tmp_path)
    # topic, partition, offset, key, value — as the notes' comments say.
    assert out.splitlines()[:5] == ["test", "0", "0", "None", "{'Hello': 'World!'}"], out


# kafka-python 3.x starts an IO thread inside KafkaConsumer(); the snippet
# builds its consumer before forking, and a forked child has no such thread,
# so on 3.x the snippet hangs against any broker. It was written for 2.x,
# where it runs (the kafka-python-2 suite).
@pytest.mark.skipif(KAFKA_PYTHON_3, reason="kafka-python 3.x consumers do not survive fork()")
def test_seed_multiprocessing_consumer_hands_records_to_workers(broker, tmp_path):
    run_seed("multiprocessing/producer.py", broker.bootstrap, tmp_path)
    snippet = Snippet("multiprocessing/main.py", broker.bootstrap, tmp_path, extra=["consumer.py"])
    try:
        wait_for(lambda: all(w in snippet.output() for w in ["Hello", "World", "Good", "Morning"]), 90,
                 lambda: f"the workers printing all four messages; the snippet printed:\n{snippet.output()}")
    finally:
        snippet.stop()
    # Several workers write to one pipe, block-buffered: a flush can split a
    # line, so PIDs are found anywhere in the output, not line by line.
    pids = set(re.findall(r"PID: (\d+)", snippet.output()))
    assert pids, snippet.output()


def test_seed_assign_and_commit(broker, tmp_path):
    from kafka import TopicPartition
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(name="test", num_partitions=3, replication_factor=1)])
    admin.close()
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, value_serializer=lambda m: json.dumps(m).encode())
    producer.send("test", {"message": "on-one"}, partition=1)
    producer.send("test", {"message": "on-zero"}, partition=0)
    producer.flush()
    producer.close()
    snippet = Snippet("assign_consumer.py", broker.bootstrap, tmp_path)
    probe = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="test-group", enable_auto_commit=False)
    try:
        wait_for(lambda: "on-one" in snippet.output(), 60, "the snippet printing partition 1's record")
        # It commits after each record: the group's offset for partition 1 moves past it.
        wait_for(lambda: probe.committed(TopicPartition("test", 1)) == 1, 60, "the committed offset")
    finally:
        snippet.stop()
        probe.close()
    assert "on-zero" not in snippet.output(), snippet.output()
