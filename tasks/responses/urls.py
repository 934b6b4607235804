from django.urls import path

from tasks.responses import views

urlpatterns = [
    path("v1/responses", views.responses, name="openai-responses"),
    path("v1/responses/<str:response_id>", views.response_detail, name="openai-response"),
    path(
        "v1/responses/<str:response_id>/cancel",
        views.response_cancel,
        name="openai-response-cancel",
    ),
    path(
        "v1/responses/<str:response_id>/input_items",
        views.response_input_items,
        name="openai-response-input-items",
    ),
]
