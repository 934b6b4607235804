from rest_framework import serializers


class MemoryEstimateSerializer(serializers.Serializer):
    n_ctx = serializers.IntegerField()
    bytes = serializers.IntegerField()


class ModelInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    path = serializers.CharField()
    file_size = serializers.IntegerField()
    valid = serializers.BooleanField()
    error = serializers.CharField(allow_null=True)
    architecture = serializers.CharField(allow_null=True)
    display_name = serializers.CharField(allow_null=True)
    size_label = serializers.CharField(allow_null=True)
    quantization = serializers.CharField(allow_null=True)
    context_length = serializers.IntegerField(allow_null=True)
    n_layers = serializers.IntegerField(allow_null=True)
    has_chat_template = serializers.BooleanField()
    alias = serializers.CharField(allow_null=True)
    defaults = serializers.DictField(help_text="preset load parameters")
    estimated_memory = MemoryEstimateSerializer(allow_null=True)


class ModelListSerializer(serializers.Serializer):
    models = ModelInfoSerializer(many=True)


class GpuSerializer(serializers.Serializer):
    available = serializers.BooleanField()
    index = serializers.IntegerField()
    reason = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_null=True)
    memory_total_mb = serializers.IntegerField(allow_null=True)
    memory_used_mb = serializers.IntegerField(allow_null=True)
    memory_free_mb = serializers.IntegerField(allow_null=True)
    utilization_percent = serializers.IntegerField(allow_null=True)
    temperature_c = serializers.IntegerField(allow_null=True)
    processes = serializers.ListField(child=serializers.DictField())


class SlotsSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="GPU_SLOTS: sequences decoded together")
    busy = serializers.IntegerField(allow_null=True)
    waiting = serializers.IntegerField(allow_null=True)


class LoadedModelSerializer(serializers.Serializer):
    name = serializers.CharField()
    path = serializers.CharField()
    params = serializers.DictField()
    loaded_at = serializers.FloatField()
    last_used = serializers.FloatField()
    load_ms = serializers.FloatField()
    estimated_bytes = serializers.IntegerField()
    process_rss_mb = serializers.FloatField()
    owner = serializers.CharField(allow_null=True)
    pid = serializers.IntegerField()
    slots = SlotsSerializer(required=False)


class ModelStatusSerializer(serializers.Serializer):
    gpu = GpuSerializer()
    loaded = LoadedModelSerializer(allow_null=True)


class ModelOutcomeSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["done", "pending", "failed"])
    job_id = serializers.CharField()
    outcome = serializers.ChoiceField(
        choices=["loaded", "already_loaded", "unloaded", "nothing_loaded"], required=False
    )
    hot_path = serializers.BooleanField(required=False)
    load_ms = serializers.FloatField(required=False)
    model = LoadedModelSerializer(required=False)
    freed = serializers.DictField(required=False, allow_null=True)
    follow = serializers.CharField(required=False, help_text="poll this while pending")
