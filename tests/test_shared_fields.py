"""Input serializers build their fields once per class (sop_llm.core.strict.SharedFields): no
per-request deep copy, and no request's state seen by another, from any thread."""

import concurrent.futures

from rest_framework.exceptions import ValidationError

from tasks.openai.protocol.requests import openai_request
from tasks.serializers import TaskCreateSerializer


def test_every_request_shares_one_set_of_fields_built_once():
    first, second = TaskCreateSerializer(data={}), TaskCreateSerializer(data={})
    assert first.fields is second.fields
    assert first.fields["params"].fields is second.fields["params"].fields


def test_a_serializer_given_a_context_keeps_fields_of_its_own():
    shared = TaskCreateSerializer(data={}).fields
    own = TaskCreateSerializer(data={}, context={"request": object()})
    assert own.fields is not shared
    assert own.fields["params"].fields is not shared["params"].fields
    assert own.fields["params"].context is own.context  # its fields see its context


def _chat(n: int) -> dict:
    """Even n: a valid body naming its own max_tokens; odd n: a typo'd field named n."""
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": str(n)}]}
    if n % 2:
        body[f"max_token_{n}"] = n
    else:
        body["max_tokens"] = n + 2
    return body


def _validate(n: int):
    try:
        return openai_request(_chat(n), chat=True)
    except ValidationError as exc:
        return exc.detail


def test_threads_validating_at_once_each_get_their_own_answer():
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(_validate, range(400)))
    for n, answer in enumerate(answers):
        if n % 2:
            assert list(answer) == [f"max_token_{n}"], answer
        else:
            assert answer["max_tokens"] == n + 2 and answer["messages"][0]["content"] == str(n)
