from rest_framework import serializers

from models_gpu.schema import GpuSerializer, LoadedModelSerializer


class RedisHealthSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)


class WorkerSerializer(serializers.Serializer):
    name = serializers.CharField()
    pid = serializers.IntegerField()
    host = serializers.CharField()
    lanes = serializers.ListField(child=serializers.CharField())


class LaneWorkersSerializer(serializers.Serializer):
    gpu = WorkerSerializer(many=True)
    remote = WorkerSerializer(many=True)
    webhooks = WorkerSerializer(many=True)


class LaneDepthSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    processing = serializers.ListField(child=serializers.CharField())


class QueuesSerializer(serializers.Serializer):
    gpu = LaneDepthSerializer()
    remote = LaneDepthSerializer()


class RunningSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    lane = serializers.CharField()
    worker = serializers.CharField()
    provider = serializers.CharField(allow_null=True)
    model = serializers.CharField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)


class DayStatsSerializer(serializers.Serializer):
    date = serializers.DateField()
    created = serializers.IntegerField(required=False)
    completed = serializers.IntegerField(required=False)
    failed = serializers.IntegerField(required=False)
    cancelled = serializers.IntegerField(required=False)
    tokens_in = serializers.IntegerField(required=False)
    tokens_out = serializers.IntegerField(required=False)


class BatchRowSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    endpoint = serializers.CharField()
    created_at = serializers.IntegerField()
    expires_at = serializers.IntegerField()
    request_counts = serializers.DictField(child=serializers.IntegerField())


class BatchesSerializer(serializers.Serializer):
    active = serializers.IntegerField(help_text="batches not yet ended")
    by_status = serializers.DictField(child=serializers.IntegerField())
    lines_waiting = serializers.IntegerField(help_text="lines of active batches not written yet")
    list = BatchRowSerializer(many=True, help_text="the oldest active batches, at most 50")


class StatusSerializer(serializers.Serializer):
    version = serializers.CharField()
    uptime_seconds = serializers.FloatField(
        allow_null=True, help_text="since the longest-running live process of the service started"
    )
    redis = RedisHealthSerializer()
    workers = LaneWorkersSerializer(required=False)
    gpu = GpuSerializer(required=False)
    loaded_model = LoadedModelSerializer(required=False, allow_null=True)
    queues = QueuesSerializer(required=False)
    processing = RunningSerializer(many=True, required=False)
    today = DayStatsSerializer(required=False)
    dead_letters = serializers.IntegerField(required=False)
    batches = BatchesSerializer(required=False)


class PendingSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    task_id = serializers.CharField()
    priority = serializers.IntegerField()
    provider = serializers.CharField(allow_null=True)
    model = serializers.CharField(allow_null=True)
    enqueued_at = serializers.DateTimeField(allow_null=True)


class ProcessingSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    worker = serializers.CharField()


class LaneQueueSerializer(serializers.Serializer):
    depth = serializers.IntegerField()
    pending = PendingSerializer(many=True)
    processing = ProcessingSerializer(many=True)


class LanesSerializer(serializers.Serializer):
    gpu = LaneQueueSerializer()
    remote = LaneQueueSerializer()


class QueueSerializer(serializers.Serializer):
    lanes = LanesSerializer()


class LogSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    level = serializers.CharField()
    logger = serializers.CharField()
    message = serializers.CharField()
    task_id = serializers.CharField(allow_null=True)


class LogsSerializer(serializers.Serializer):
    logs = LogSerializer(many=True)


class StatsSerializer(serializers.Serializer):
    days = DayStatsSerializer(many=True, help_text="also `<status>:<provider>` counters")


class RqQueueStatsSerializer(serializers.Serializer):
    name = serializers.CharField()
    jobs = serializers.IntegerField()
    workers = serializers.IntegerField()
    finished_jobs = serializers.IntegerField()
    started_jobs = serializers.IntegerField()
    deferred_jobs = serializers.IntegerField()
    failed_jobs = serializers.IntegerField()
    scheduled_jobs = serializers.IntegerField()


class RqStatsSerializer(serializers.Serializer):
    queues = RqQueueStatsSerializer(many=True)
