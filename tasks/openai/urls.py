from django.urls import path

from tasks.openai import batch_views, file_views, views

urlpatterns = [
    path("v1/chat/completions", views.chat_completions, name="openai-chat"),
    path("v1/completions", views.completions, name="openai-completions"),
    path("v1/models", views.models, name="openai-models"),
    path("v1/models/<path:model_id>", views.model_detail, name="openai-model"),
    path("v1/files", file_views.file_collection, name="openai-files"),
    path("v1/files/<str:file_id>", file_views.file_detail, name="openai-file"),
    path("v1/files/<str:file_id>/content", file_views.file_content, name="openai-file-content"),
    path("v1/batches", batch_views.batch_collection, name="openai-batches"),
    path("v1/batches/<str:batch_id>", batch_views.batch_detail, name="openai-batch"),
    path("v1/batches/<str:batch_id>/cancel", batch_views.batch_cancel, name="openai-batch-cancel"),
]
