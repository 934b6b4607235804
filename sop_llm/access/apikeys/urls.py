from django.urls import path

from sop_llm.access.apikeys import views

urlpatterns = [
    path("keys", views.KeyList.as_view(), name="keys-list"),
    path("keys/<str:key_id>", views.KeyDetail.as_view(), name="keys-detail"),
    path("usage", views.Usage.as_view(), name="usage"),
]
