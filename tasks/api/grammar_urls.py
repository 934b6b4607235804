from django.urls import path

from tasks.api.grammar_views import GrammarCheck, GrammarList

urlpatterns = [
    path("grammars", GrammarList.as_view(), name="grammars-list"),
    path("grammars/check", GrammarCheck.as_view(), name="grammars-check"),
]
