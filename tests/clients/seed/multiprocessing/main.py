from multiprocessing import Process, Queue
import consumer
from kafka import KafkaConsumer
import json


def deserializer_value(value):
    try:
        return json.loads(value)
    except Exception as e:
        print(e)


kconsumer = KafkaConsumer('test',
                        bootstrap_servers='127.0.0.1:9092',
                        group_id='test-group',
                        value_deserializer=deserializer_value,
                        auto_offset_reset='earliest',
                        max_poll_records=1,
                        max_poll_interval_ms=3600000,
                        enable_auto_commit=True)


if __name__ == '__main__':
    queue = Queue()
    processes=[]
    def put_items(queue):
        # queue에 이벤트를 추가한다.
        for msg in kconsumer:
            queue.put(msg)

    for i in range(4):
        if i == 0:
            # Queue에 이벤트를 추가할 프로세스
            processes.append(Process(target=put_items, args=[queue]))	# queue를 인자로 넘긴다.
        else:
            # 실제 이벤트를 처리할 프로세스들
            processes.append(Process(target=consumer.consume_message, args=[queue]))  # queue를 인자로 넘긴다.

    for process in processes:
        process.start()
    for process in processes:
        process.join()
