"""Client libraries nobody here wrote, against the running service's `/v1` door and the real
local model: instructor, langchain-openai and pydantic-ai each make a tool call and get a typed
answer (issue 25, "Done when"). The 270M dev model is weak, so every request is constrained:
a forced tool choice or a json_schema makes a valid answer by construction, and the tests check
that it parses and that each call's arguments fit its schema. One service for the module."""

import json
import os
import uuid
from typing import Literal

import jsonschema
import openai
import pytest
from django.test import override_settings
from pydantic import BaseModel, Field

from tests.conftest import API_KEY, Processes, _delete_matching, _forget_queues

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ASK = "What is the weather in Paris?"
SAMPLING = {"max_tokens": 60, "temperature": 0, "seed": 1}


class Weather(BaseModel):
    """The weather question: which city, in which unit."""

    city: str = Field(max_length=12)
    unit: Literal["c", "f"]


class Forecast(BaseModel):
    """A short forecast for one city."""

    city: str = Field(max_length=12)
    sky: Literal["clear", "cloudy", "rain"]


WEATHER_ARGS = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["c", "f"]}},
    "required": ["city", "unit"],
}


@pytest.fixture(scope="module")
def v1():
    """daphne and a GPU worker (one llama.cpp thread: the suite shares two cores)."""
    prefix = f"{os.environ['REDIS_KEY_PREFIX']}clients{uuid.uuid4().hex[:6]}:"
    group = Processes(prefix)
    try:
        with override_settings(REDIS_KEY_PREFIX=prefix):  # where the worker's beat shows
            base = group.web()
            group.worker("gpu", gpu=True, LLAMA_THREADS="1")
        yield f"{base}/v1"
    finally:
        group.stop_all()
        _delete_matching(f"{prefix}*")
        _delete_matching(f"rq:*{prefix}*")
        _forget_queues(prefix)


def sdk(v1: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=v1, api_key=API_KEY, max_retries=0, timeout=120)


def test_the_sdk_lists_and_retrieves_the_local_model(v1):
    client = sdk(v1)
    assert "gemma" in {m.id for m in client.models.list()}
    model = client.models.retrieve("gemma")
    assert (model.id, model.object, model.owned_by) == ("gemma", "model", "sop-llm")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


# --- instructor --------------------------------------------------------------------------
def test_instructor_extracts_a_typed_object_through_a_forced_tool_call(v1):
    import instructor

    client = instructor.from_openai(sdk(v1), mode=instructor.Mode.TOOLS)
    weather, completion = client.chat.completions.create_with_completion(
        model="gemma",
        response_model=Weather,
        messages=[{"role": "user", "content": ASK}],
        max_retries=1,
        **SAMPLING,
    )
    assert isinstance(weather, Weather)
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "Weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_ARGS)


def test_instructor_gets_a_typed_answer_in_json_schema_mode(v1):
    import instructor

    client = instructor.from_openai(sdk(v1), mode=instructor.Mode.JSON_SCHEMA)
    forecast = client.chat.completions.create(
        model="gemma",
        response_model=Forecast,
        messages=[{"role": "user", "content": "Forecast for Paris, please."}],
        max_retries=1,
        **SAMPLING,
    )
    assert isinstance(forecast, Forecast) and len(forecast.city) <= 12


# --- langchain-openai --------------------------------------------------------------------
def chat_model(v1: str):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gemma", base_url=v1, api_key=API_KEY, max_retries=0, **SAMPLING)


def test_langchain_binds_a_tool_and_gets_a_call_with_valid_arguments(v1):
    from langchain_core.tools import tool

    @tool(args_schema=Weather)
    def get_weather(city: str, unit: Literal["c", "f"]) -> str:
        """Weather of a city."""
        return f"21 {unit} in {city}"

    message = chat_model(v1).bind_tools([get_weather], tool_choice="get_weather").invoke(ASK)
    (call,) = message.tool_calls
    assert call["name"] == "get_weather"
    jsonschema.validate(call["args"], WEATHER_ARGS)
    assert get_weather.invoke(call["args"]).startswith("21 ")


def test_langchain_structured_output_parses_and_named_speakers_pass(v1):
    from langchain_core.messages import HumanMessage, SystemMessage

    structured = chat_model(v1).with_structured_output(Forecast, method="json_schema")
    forecast = structured.invoke(
        [
            SystemMessage("You write forecasts.", name="planner"),
            HumanMessage("Forecast for Paris, please.", name="alice"),
        ]
    )
    assert isinstance(forecast, Forecast)


# --- pydantic-ai -------------------------------------------------------------------------
def agent_for(v1: str, output_type, calls: list[dict]):
    """An agent with one tool (get_weather) and a typed output. The tool is offered until it
    has been called, the output tool only after: each step has one thing it can do."""
    from pydantic_ai import Agent
    from pydantic_ai.capabilities import PrepareOutputTools, PrepareTools
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel("gemma", provider=OpenAIProvider(base_url=v1, api_key=API_KEY))

    async def until_called(ctx, tool_defs):
        return [] if calls else tool_defs

    async def once_called(ctx, tool_defs):
        return tool_defs if calls else []

    agent = Agent(
        model,
        output_type=output_type,
        model_settings=SAMPLING,
        capabilities=[PrepareTools(until_called), PrepareOutputTools(once_called)],
    )

    @agent.tool_plain
    def get_weather(city: str, unit: Literal["c", "f"]) -> str:
        """Weather of a city."""
        calls.append({"city": city, "unit": unit})
        return f"clear, 21 {unit}"

    return agent


def test_pydantic_ai_agent_calls_its_tool_then_answers_typed_with_tool_output(v1):
    calls: list[dict] = []
    result = agent_for(v1, Forecast, calls).run_sync(ASK)
    assert isinstance(result.output, Forecast)
    assert len(calls) == 1
    jsonschema.validate(calls[0], WEATHER_ARGS)


def test_pydantic_ai_agent_with_a_tool_answers_typed_with_native_output(v1):
    from pydantic_ai import NativeOutput

    calls: list[dict] = []
    result = agent_for(v1, NativeOutput(Forecast), calls).run_sync(ASK)
    # tool_choice is auto beside a response_format: the model may call the tool or answer in
    # the format at once; either way what it writes is valid by construction.
    assert isinstance(result.output, Forecast)
    assert len(calls) <= 1
    for call in calls:
        jsonschema.validate(call, WEATHER_ARGS)
