"""The native task API takes the same tool fields as /v1 and checks them at submit (issue 18)."""

import pytest

from tasks.serializers import TaskCreateSerializer

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
ASK = [{"role": "user", "content": "Weather?"}]


def task(**extra) -> dict:
    return {"provider": "openai", "model": "gpt-4o-mini", "messages": ASK, **extra}


def errors(data: dict) -> dict:
    serializer = TaskCreateSerializer(data=data)
    assert not serializer.is_valid()
    return serializer.errors


def test_tools_a_choice_and_tool_turns_in_the_history_are_accepted():
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "content": '{"temp": 21}', "tool_call_id": "call_1"},
    ]
    named = {"type": "function", "function": {"name": "get_weather"}}
    serializer = TaskCreateSerializer(
        data=task(messages=history, tools=[TOOL], tool_choice=named, parallel_tool_calls=False)
    )
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["messages"][1]["content"] == ""


@pytest.mark.parametrize(
    "extra,field",
    [
        ({"tool_choice": "required"}, "tool_choice"),
        ({"parallel_tool_calls": True}, "parallel_tool_calls"),
        ({"tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
        ),
        ({"tools": [TOOL, TOOL]}, "tools"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools"),
        ({"tools": [{**TOOL, "function": {"name": "f", "parameters": {"type": 5}}}]}, "tools"),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": [CALL]}]}, "messages"),
        ({"messages": [{"role": "assistant", "content": None}]}, "messages"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {**CALL, "function": {"name": "f", "arguments": "{not json"}}
                        ],
                    }
                ]
            },
            "messages",
        ),
    ],
    ids=repr,
)
def test_a_bad_tool_field_is_refused_naming_it(extra, field):
    assert field in errors(task(**extra))


def test_tools_need_a_chat_and_custom_cannot_take_them():
    assert "tools" in errors({"provider": "openai", "model": "m", "prompt": "x", "tools": [TOOL]})
    custom = {
        "provider": "custom",
        "model": "m",
        "messages": ASK,
        "tools": [TOOL],
        "options": {"url": "http://127.0.0.1:9/x"},
    }
    assert "tools" in errors(custom)


def test_tools_beside_a_structured_format_are_refused_where_both_are_enforced_one_way():
    rf = {"type": "json_object"}
    assert "response_format" in errors(task(provider="anthropic", tools=[TOOL], response_format=rf))
    serializer = TaskCreateSerializer(data=task(tools=[TOOL], response_format=rf))
    assert serializer.is_valid(), serializer.errors  # OpenAI takes both
