import json
from kafka import KafkaProducer


producer = KafkaProducer(bootstrap_servers=['192.168.0.237:9092'],
                        value_serializer=lambda m: json.dumps(m).encode('utf-8'),
                        max_block_ms=1000 * 60 * 10,
                        buffer_memory=104857600 * 2,
                        max_request_size=104857600)

msg_list = ['Hello', 'World', 'Good', 'Morning']
for msg in msg_list:
    value = {
        'message':msg
    }
    producer.send(topic='test', value=value)
    producer.flush()
