from django.urls import path

from tasks.anthropic_api import batch_views, views

urlpatterns = [
    path("v1/messages", views.messages, name="anthropic-messages"),
    path("v1/messages/count_tokens", views.count_tokens, name="anthropic-count-tokens"),
    path("v1/messages/batches", batch_views.batch_collection, name="anthropic-batches"),
    path("v1/messages/batches/<str:batch_id>", batch_views.batch_detail, name="anthropic-batch"),
    path(
        "v1/messages/batches/<str:batch_id>/cancel",
        batch_views.batch_cancel,
        name="anthropic-batch-cancel",
    ),
    path(
        "v1/messages/batches/<str:batch_id>/results",
        batch_views.batch_results,
        name="anthropic-batch-results",
    ),
]
