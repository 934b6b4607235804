from django.urls import path

from tasks.openai_compat import views

urlpatterns = [
    path("v1/chat/completions", views.chat_completions, name="openai-chat"),
    path("v1/completions", views.completions, name="openai-completions"),
    path("v1/models", views.models, name="openai-models"),
]
