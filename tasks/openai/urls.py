from django.urls import path

from tasks.openai import routes

urlpatterns = [
    path("v1/chat/completions", routes.chat_completions, name="openai-chat"),
    path("v1/completions", routes.completions, name="openai-completions"),
    path("v1/models", routes.models, name="openai-models"),
    path("v1/models/<path:model_id>", routes.model_detail, name="openai-model"),
]
