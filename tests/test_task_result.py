"""A task's result is shaped in one place (tasks/result.py): built from what a provider
generated, stored as a record, read back by every door, shown by the native one."""

from dataclasses import fields

from sop_llm.providers.types import GenerateResult, Usage
from tasks.api.schema import ResultChoiceSerializer, ResultSerializer
from tasks.result import ResultChoice, TaskResult

LOGPROBS = [{"token": "Paris", "logprob": -0.1, "bytes": [80], "top_logprobs": []}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def generated(text: str = "Paris", finish: str = "stop", **extra) -> GenerateResult:
    usage = Usage(prompt_tokens=5, completion_tokens=1)
    return GenerateResult(text, finish, usage, "local", "gemma", response_id="r1", **extra)


def test_a_generated_result_reads_back_from_its_record_as_it_was_built():
    meta = {"structured": {"enforcement": "grammar", "engine": "llguidance"}}
    result = TaskResult.from_generated(generated('{"a": 1}', parsed={"a": 1}, meta=meta))
    record = result.record()
    assert list(record) == [
        "text",
        "parsed",
        "finish_reason",
        "provider",
        "model",
        "response_id",
        "enforcement",
        "engine",
    ]
    assert TaskResult.from_record(record) == result
    assert result.public() == {
        "text": '{"a": 1}',
        "parsed": {"a": 1},
        "finish_reason": "stop",
        "enforcement": "grammar",
    }


def test_a_door_reading_the_public_view_sees_what_the_record_holds():
    result = TaskResult.from_generated(generated(logprobs=LOGPROBS))
    view = result.public()
    assert TaskResult.from_record(view).public() == view
    assert TaskResult.from_record(view).choices == result.choices
    assert result.choices[0].chat_logprobs == {"content": LOGPROBS, "refusal": None}


def test_n_choices_are_stored_each_with_its_own_finish_and_the_first_is_the_answer():
    second = generated("Lyon", "length", logprobs=[])
    result = TaskResult.from_generated(generated(choices=[second]))
    record = result.record()
    assert record["choices"] == [
        {"text": "Paris", "finish_reason": "stop"},
        {"text": "Lyon", "finish_reason": "length", "logprobs": []},
    ]
    assert (record["text"], record["finish_reason"]) == ("Paris", "stop")
    back = TaskResult.from_record(record)
    assert [(c.text, c.finish) for c in back.choices] == [("Paris", "stop"), ("Lyon", "length")]
    assert back.public()["choices"] == record["choices"]
    assert TaskResult.from_generated(generated()).choices == (ResultChoice("Paris", "stop"),)


def test_an_answer_that_calls_a_tool_finishes_as_tool_calls_whatever_the_provider_said():
    result = TaskResult.from_generated(generated("", tool_calls=[CALL]))
    assert result.finish_reason == "stop"
    assert result.finish == result.choices[0].finish == "tool_calls"
    assert result.record()["tool_calls"] == result.public()["tool_calls"] == [CALL]
    assert "tool_calls" not in TaskResult.from_generated(generated(tool_calls=[])).record()


def test_an_unknown_end_is_a_stop_and_only_a_length_is_truncated():
    assert ResultChoice("x", None).finish == "stop"
    assert ResultChoice("x", "content_filter").finish == "content_filter"
    assert TaskResult.from_record({"text": "x", "finish_reason": "length"}).truncated
    assert not TaskResult.from_record({"text": "x", "finish_reason": "stop"}).truncated


def test_an_old_record_reads_its_missing_keys_as_absent():
    old = {"text": "hi", "parsed": None, "finish_reason": "stop", "provider": "openai"}
    result = TaskResult.from_record(old)
    assert (result.model, result.response_id, result.logprobs, result.tool_calls) == (None,) * 4
    assert result.public() == {"text": "hi", "parsed": None, "finish_reason": "stop"}
    assert len(result.choices) == 1 and result.choices[0].chat_logprobs is None


def test_what_a_cancelled_or_failed_attempt_left_is_kept_without_an_answers_fields():
    cancelled = TaskResult.cancelled("The capital")
    assert cancelled.record() == {"text": "The capital", "finish_reason": "cancelled"}
    assert TaskResult.from_record(cancelled.record()) == cancelled
    assert cancelled.public() == cancelled.record()  # no `parsed`: there is no answer
    failed = TaskResult.partial(generated("The cap", "length")).record()
    assert failed == {
        "text": "The cap",
        "finish_reason": "length",
        "provider": "local",
        "model": "gemma",
    }
    assert TaskResult.from_record(failed).record() == failed


def test_no_record_is_no_result():
    assert TaskResult.from_record(None) is None
    assert TaskResult.from_record({}) is None


def test_the_openapi_result_describes_exactly_what_public_can_return():
    assert set(ResultSerializer().fields) == set(TaskResult.public_names())
    assert set(ResultChoiceSerializer().fields) == {f.name for f in fields(ResultChoice)}
