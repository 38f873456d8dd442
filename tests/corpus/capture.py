"""Captures the fuzz corpus: real requests from real clients.

Starts one raftka broker that advertises a recording proxy as its address, so
every connection of every client goes through the proxy, and runs each
client through what it can do (admin, produce in every codec, idempotence,
consumer groups, offsets): kafka-python 3.x, kafka-python 2.x (its own
virtualenv), confluent-kafka, aiokafka and kcat. The proxy writes each
request frame, length prefix included, to
`tests/corpus/kafka/<client>/<Api>-v<version>-<n>.bin`, a few per API and
version, the client told apart by the `client.id` each scenario sets.
`make fuzz-corpus` runs it; the harness (tests/it/fuzz) reads the files and
re-encodes each request at every routed version, so its coverage does not
depend on what a client happened to pick.

Usage: capture.py [--scenario NAME --bootstrap HOST:PORT]   (the second form
runs one client's scenario; the first runs everything).
"""
import argparse
import asyncio
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "kafka")
KEEP = 3                 # frames kept per (client, api, version)
MAX_FRAME = 64 * 1024    # larger frames (big produce requests) add nothing
API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
    22: "InitProducerId", 32: "DescribeConfigs", 37: "CreatePartitions", 42: "DeleteGroups",
    47: "OffsetDelete",
}
CLIENTS = ["kp3", "kp2", "confluent", "aiokafka", "kcat"]


# --- the recording proxy -------------------------------------------------

class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.kept = {}

    def record(self, frame):
        body = frame[4:]
        if len(frame) > MAX_FRAME or len(body) < 10:
            return
        api, version, _correlation, id_len = struct.unpack(">hhih", body[:10])
        client_id = body[10:10 + id_len].decode(errors="replace") if id_len > 0 else ""
        # "corpus-<client>[.<variant>]": a variant (a codec) is kept apart.
        client, _, variant = client_id.removeprefix("corpus-").partition(".")
        if client not in CLIENTS or api not in API_NAMES:
            return
        if api != 0:
            variant = ""
        key = (client, api, version, variant)
        with self.lock:
            n = self.kept.get(key, 0)
            if n >= KEEP:
                return
            self.kept[key] = n + 1
        folder = os.path.join(OUT, client)
        os.makedirs(folder, exist_ok=True)
        name = "-".join(filter(None, [API_NAMES[api], f"v{version}", variant, str(n)]))
        with open(os.path.join(folder, f"{name}.bin"), "wb") as f:
            f.write(frame)


async def pipe(reader, writer, on_frame=None):
    buf = b""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            if on_frame is not None:
                buf += data
                while len(buf) >= 4:
                    size = struct.unpack(">i", buf[:4])[0]
                    if len(buf) < 4 + size:
                        break
                    on_frame(buf[:4 + size])
                    buf = buf[4 + size:]
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def start_proxy(listen_port, target_port, recorder):
    async def handle(client_r, client_w):
        try:
            broker_r, broker_w = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, broker_w, recorder.record), pipe(broker_r, client_w))

    loop = asyncio.new_event_loop()

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
        async with server:
            await server.serve_forever()
    threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True).start()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the scenarios, one per client ----------------------------------------

def attempt(what, fn):
    """A scenario step; a client that lacks a feature skips it."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - a missing feature is not a failure here
        print(f"  ({what}: {type(e).__name__}: {e})", file=sys.stderr)


def kafka_python(bootstrap, cid):
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
    v3 = int(kafka.__version__.split(".")[0]) >= 3
    topic, group = f"{cid}-topic", f"{cid}-group"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=cid)
    attempt("create", lambda: admin.create_topics([NewTopic(topic, 2, 1)]))
    attempt("describe configs", lambda: admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]))
    attempt("create partitions", lambda: admin.create_partitions({topic: NewPartitions(3)}))
    for codec in [None, "gzip", "snappy", "lz4", "zstd"]:
        def produce(codec=codec):
            extra = {"enable_idempotence": True} if v3 else {}
            p = KafkaProducer(bootstrap_servers=bootstrap, client_id=f"{cid}.{codec or 'none'}",
                              compression_type=codec, acks="all", **extra)
            for i in range(20):
                p.send(topic, key=f"k{i % 4}".encode(), value=f"v{i}".encode(), headers=[("h", b"1")])
            p.flush()
            p.close()
        attempt(f"produce {codec}", produce)

    def consume():
        c = KafkaConsumer(topic, bootstrap_servers=bootstrap, client_id=cid, group_id=group,
                          auto_offset_reset="earliest", enable_auto_commit=False)
        deadline = time.monotonic() + 20
        got = 0
        while got < 20 and time.monotonic() < deadline:
            got += sum(len(v) for v in c.poll(500).values())
        c.commit()
        parts = [TopicPartition(topic, p) for p in range(3)]
        c.end_offsets(parts)
        c.beginning_offsets(parts)
        c.offsets_for_times({tp: 0 for tp in parts})
        c.close()
    attempt("consume", consume)
    # kafka-python 3 renamed the group calls.
    def call(old, new, *a):
        return getattr(admin, new if v3 else old)(*a)
    attempt("list groups", lambda: call("list_consumer_groups", "list_groups"))
    attempt("describe groups", lambda: call("describe_consumer_groups", "describe_groups", [group]))
    attempt("group offsets", lambda: call("list_consumer_group_offsets", "list_group_offsets", group))
    if v3:
        attempt("delete group offsets", lambda: admin.delete_group_offsets(group, [TopicPartition(topic, 0)]))
    attempt("delete groups", lambda: call("delete_consumer_groups", "delete_groups", [group]))
    attempt("delete topics", lambda: admin.delete_topics([topic]))
    admin.close()


def confluent(bootstrap, cid):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic
    topic, group = f"{cid}-topic", f"{cid}-group"
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": cid})

    def wait(futures):
        for f in futures.values():
            f.result(timeout=30)
    attempt("create", lambda: wait(admin.create_topics([NewTopic(topic, 2, 1)])))
    attempt("describe configs", lambda: wait(admin.describe_configs([ConfigResource("topic", topic)])))
    attempt("create partitions", lambda: wait(admin.create_partitions([NewPartitions(topic, 3)])))
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        def produce(codec=codec):
            p = Producer({"bootstrap.servers": bootstrap, "client.id": f"{cid}.{codec}", "compression.type": codec,
                          "enable.idempotence": True, "linger.ms": 5})
            for i in range(20):
                p.produce(topic, key=f"k{i % 4}", value=f"v{i}", headers={"h": b"1"})
            p.flush(30)
        attempt(f"produce {codec}", produce)

    def consume():
        c = Consumer({"bootstrap.servers": bootstrap, "client.id": cid, "group.id": group,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic])
        deadline = time.monotonic() + 20
        got = 0
        while got < 20 and time.monotonic() < deadline:
            if (m := c.poll(0.5)) is not None and m.error() is None:
                got += 1
        c.commit(asynchronous=False)
        c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
        c.offsets_for_times([TopicPartition(topic, p, 0) for p in range(3)], timeout=10)
        c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        c.close()
    attempt("consume", consume)
    attempt("list groups", lambda: admin.list_consumer_groups().result(timeout=30))
    attempt("describe groups", lambda: wait(admin.describe_consumer_groups([group])))
    attempt("delete groups", lambda: wait(admin.delete_consumer_groups([group])))
    attempt("delete topics", lambda: wait(admin.delete_topics([topic])))


def aiokafka_scenario(bootstrap, cid):
    import aiokafka
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    topic, group = f"{cid}-topic", f"{cid}-group"

    async def run():
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id=cid)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 2, 1)])
        except Exception as e:  # noqa: BLE001
            print(f"  (create: {e})", file=sys.stderr)
        for codec in [None, "gzip", "snappy", "lz4", "zstd"]:
            try:
                p = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, client_id=f"{cid}.{codec or 'none'}",
                                              compression_type=codec,
                                              enable_idempotence=True)
                await p.start()
                for i in range(20):
                    await p.send(topic, key=f"k{i % 4}".encode(), value=f"v{i}".encode())
                await p.stop()
            except Exception as e:  # noqa: BLE001
                print(f"  (produce {codec}: {e})", file=sys.stderr)
        c = aiokafka.AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, client_id=cid, group_id=group,
                                      auto_offset_reset="earliest", enable_auto_commit=False)
        await c.start()
        try:
            await asyncio.wait_for(c.getmany(timeout_ms=3000), 20)
            await c.commit()
            parts = list(c.assignment())
            await c.end_offsets(parts)
            await c.offsets_for_times({tp: 0 for tp in parts})
        finally:
            await c.stop()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
    asyncio.run(run())


def kcat(bootstrap, cid):
    topic = f"{cid}-topic"
    base = ["kcat", "-b", bootstrap, "-X", f"client.id={cid}"]
    lines = "".join(f"k{i}:v{i}\n" for i in range(20))
    subprocess.run(base + ["-L"], capture_output=True, timeout=60)
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        subprocess.run(["kcat", "-b", bootstrap, "-X", f"client.id={cid}.{codec}", "-P", "-t", topic, "-z", codec,
                        "-K", ":"], input=lines, text=True, capture_output=True, timeout=60)
    subprocess.run(base + ["-C", "-t", topic, "-o", "beginning", "-e", "-q"], capture_output=True, timeout=60)
    subprocess.run(base + ["-G", f"{cid}-group", topic, "-o", "beginning", "-e", "-q"], capture_output=True,
                   timeout=60)


SCENARIOS = {"kp3": kafka_python, "kp2": kafka_python, "confluent": confluent, "aiokafka": aiokafka_scenario,
             "kcat": kcat}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario")
    ap.add_argument("--bootstrap")
    args = ap.parse_args()
    if args.scenario:
        SCENARIOS[args.scenario](args.bootstrap, f"corpus-{args.scenario}")
        return

    sys.path.insert(0, os.path.join(ROOT, "tests", "clients"))
    from conftest import Broker
    shutil.rmtree(OUT, ignore_errors=True)
    proxy_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(os.path.join(tmp, "broker"), env={
            "RAFTKA_ADVERTISED_KAFKA_ADDR": f"127.0.0.1:{proxy_port}",
            "RAFTKA_OFFSETS_TOPIC_NUM_PARTITIONS": "3",
        }).start()
        recorder = Recorder()
        start_proxy(proxy_port, broker.kafka_port, recorder)
        bootstrap = f"127.0.0.1:{proxy_port}"
        kp2 = os.path.join(ROOT, ".venv", "kafka-python-2", "bin", "python")
        try:
            for name in CLIENTS:
                python = kp2 if name == "kp2" else sys.executable
                print(f"capturing {name}", file=sys.stderr)
                subprocess.run([python, __file__, "--scenario", name, "--bootstrap", bootstrap], timeout=600)
        finally:
            broker.stop()
    total = sum(recorder.kept.values())
    print(f"captured {total} frames: " + ", ".join(
        f"{c} {sum(n for (cl, *_), n in recorder.kept.items() if cl == c)}" for c in CLIENTS))


if __name__ == "__main__":
    main()
