import json
from kafka import KafkaProducer


producer = KafkaProducer(bootstrap_servers=['127.0.0.1:9092'],
                        value_serializer=lambda m: json.dumps(m).encode('utf-8'),
                        max_block_ms=1000 * 60 * 10,
                        buffer_memory=104857600 * 2,
                        max_request_size=104857600)

msg_list = ['Hello', 'World', 'Good']
topic = 'test'
for msg in msg_list:
    value = {
        'message':msg
    }
    producer.send(topic=topic, value=value)
    producer.flush()
