"""aiokafka against a real broker."""
import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def round_trip(bootstrap):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip")
    await producer.start()
    try:
        metas = [await producer.send_and_wait("aio", f"m{i}".encode(), key=b"k") for i in range(50)]
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition("aio", metas[0].partition)
        consumer.assign([tp])
        out = []
        while len(out) < 50:
            batch = await asyncio.wait_for(consumer.getmany(tp, timeout_ms=1000), timeout=30)
            out.extend(batch.get(tp, []))
        return metas, out
    finally:
        await consumer.stop()


def test_aiokafka_round_trip(broker):
    metas, out = asyncio.run(asyncio.wait_for(round_trip(broker.bootstrap), timeout=120))
    assert [m.offset for m in metas] == list(range(50))
    assert [m.value for m in out] == [f"m{i}".encode() for i in range(50)]
