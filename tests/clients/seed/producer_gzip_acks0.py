from kafka import KafkaProducer
from json import dumps
import time


producer = KafkaProducer(acks=0, compression_type="gzip", bootstrap_servers=['localhost:9092'], \
                        value_serializer=lambda x: dumps(x).encode('utf-8'))


data = {'Hello':'World!'}
producer.send('test',value=data)
producer.flush()
