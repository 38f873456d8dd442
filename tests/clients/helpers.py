"""Shared client-side helpers: run seed snippets, read topics back without a group."""
import os
import re
import subprocess
import sys
import time

import kafka
from kafka import KafkaConsumer, TopicPartition

SEED_DIR = os.path.join(os.path.dirname(__file__), "seed")
ADDRESS = re.compile(r"(localhost|127\.0\.0\.1|192\.168\.0\.237):9092")
KAFKA_PYTHON_3 = int(kafka.__version__.split(".")[0]) >= 3


def seed_source(relpath, bootstrap):
    """The snippet with only the address changed (and, on kafka-python 3.x,
    the `buffer_memory` option 3.x no longer accepts removed)."""
    with open(os.path.join(SEED_DIR, relpath), encoding="utf-8") as f:
        code = f.read()
    code = ADDRESS.sub(bootstrap, code)
    if KAFKA_PYTHON_3:
        code = re.sub(r"^\s*buffer_memory=.*\n", "", code, flags=re.M)
    return code


def run_seed(relpath, bootstrap, workdir, timeout=120):
    """Runs a snippet as its own Python program; returns its stdout."""
    target = os.path.join(str(workdir), os.path.basename(relpath))
    with open(target, "w", encoding="utf-8") as f:
        f.write(seed_source(relpath, bootstrap))
    done = subprocess.run([sys.executable, target], cwd=str(workdir), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{relpath} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def read_back(bootstrap, topic, partitions, count, timeout=30, **consumer_args):
    """Reads `count` records from `partitions` of `topic` without a consumer group."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                             enable_auto_commit=False, **consumer_args)
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            for _, msgs in consumer.poll(timeout_ms=500).items():
                out.extend(msgs)
    finally:
        consumer.close()
    assert len(out) >= count, f"read {len(out)} of {count} records from {topic} in {timeout}s"
    return out


def end_offset(bootstrap, topic, partition=0):
    """The partition's high watermark (ListOffsets latest)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        tp = TopicPartition(topic, partition)
        return consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()
