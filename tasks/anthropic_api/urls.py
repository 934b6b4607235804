from django.urls import path

from tasks.anthropic_api import views

urlpatterns = [
    path("v1/messages", views.messages, name="anthropic-messages"),
    path("v1/messages/count_tokens", views.count_tokens, name="anthropic-count-tokens"),
]
