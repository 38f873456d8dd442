from kafka import KafkaAdminClient
from kafka.admin import NewPartitions

bootstrap_servers='127.0.0.1:9092',
topic = 'test'

# {topic명:NewPartition 인스턴스} 형태의 딕셔너리를 생셩한다.
topic_partitions = {}
topic_partitions[topic] = NewPartitions(total_count=3)

admin_client = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
# create_partitions 메서드에 위에서 생성한 딕셔너리를 인자로 넘겨 파티션을 생성한다.
admin_client.create_partitions(topic_partitions)
