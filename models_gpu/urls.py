from django.urls import path

from models_gpu import views

urlpatterns = [
    path("models", views.ModelList.as_view(), name="models-list"),
    path("models/status", views.ModelStatus.as_view(), name="models-status"),
    path("models/load", views.waiting(views.ModelLoad.as_view()), name="models-load"),
    path("models/unload", views.waiting(views.ModelUnload.as_view()), name="models-unload"),
    path("models/jobs/<str:job_id>", views.ModelJob.as_view(), name="models-job"),
]
