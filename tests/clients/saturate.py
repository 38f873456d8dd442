"""A load generator for test_cluster's saturation test, run as its own
process (several at once saturate the machine's cores):

    saturate.py BOOTSTRAP TOPIC PARTITIONS SECONDS

Produces small acks=all records as fast as the cluster takes them (linger 0,
so many small requests: the costly shape for a broker) and reads them back
through every partition, until SECONDS have passed. Prints the counts as JSON
and exits 1 if any record failed delivery."""
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition


def main(bootstrap, topic, partitions, seconds):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                         "queue.buffering.max.messages": 20000})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 10})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    failed, sent, read = [], 0, 0
    value = b"x" * 100

    def delivered(err, _msg):
        if err is not None:
            failed.append(str(err))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(200):
            try:
                producer.produce(topic, value, partition=sent % partitions, on_delivery=delivered)
                sent += 1
            except BufferError:
                break
        producer.poll(0)
        for m in consumer.consume(500, 0.001):
            if not m.error():
                read += 1
    left = producer.flush(60)
    consumer.close()
    print(json.dumps({"sent": sent, "read": read, "failed": len(failed), "unacked": left,
                      "errors": failed[:3]}))
    return 0 if not failed and left == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
