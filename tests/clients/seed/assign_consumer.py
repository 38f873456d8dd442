import json

from kafka import KafkaAdminClient, KafkaConsumer
from kafka.structs import TopicPartition
from kafka.admin import NewPartitions



def deserializer_value(value):
    try:
        return json.loads(value)
    except Exception as e:
        print(e)

bootstrap_servers='127.0.0.1:9092',
topic = 'test'

consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers,
                        group_id='test-group', 
                        value_deserializer=deserializer_value, 
                        auto_offset_reset='earliest', 
                        enable_auto_commit=False)
# topic과 partition을 할당
consumer.assign([TopicPartition(topic, 1)])

for msg in consumer:
    print(msg.value.get('message'))
    partitions = consumer.assignment()
    print(partitions)
    consumer.commit()
