from rest_framework import serializers

KV_CACHE_TYPES = ["f16", "f32", "q8_0", "q4_0"]


class ModelLoadSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=256, help_text="catalog name or alias")
    n_ctx = serializers.IntegerField(min_value=16, max_value=1_048_576, required=False)
    n_gpu_layers = serializers.IntegerField(min_value=-1, max_value=10_000, required=False)
    n_batch = serializers.IntegerField(min_value=1, max_value=65_536, required=False)
    type_k = serializers.ChoiceField(choices=KV_CACHE_TYPES, required=False)
    type_v = serializers.ChoiceField(choices=KV_CACHE_TYPES, required=False)
    flash_attn = serializers.BooleanField(required=False)
    chat_format = serializers.CharField(max_length=64, required=False)
    wait_seconds = serializers.FloatField(min_value=0, max_value=120, default=30)


class ModelUnloadSerializer(serializers.Serializer):
    wait_seconds = serializers.FloatField(min_value=0, max_value=120, default=30)
