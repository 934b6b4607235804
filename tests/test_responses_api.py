"""The Responses API (`/v1/responses`, issue 30), driven by the official `openai` SDK against
the running service: every response a task in Redis, its events resumable."""

import json

import jsonschema
import openai
import pytest
import requests

from tests.conftest import API_KEY, wait_for
from tests.keyring import issue

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
AUTH = {"Authorization": f"Bearer {API_KEY}"}
STORY = "Tell me a long story about a dragon."


@pytest.fixture
def service(processes):
    base = processes.web()
    processes.worker("gpu", gpu=True)
    return base


@pytest.fixture
def client(service):
    return openai.OpenAI(base_url=f"{service}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def final(client, response_id: str):
    def done():
        response = client.responses.retrieve(response_id)
        return response if response.status not in ("queued", "in_progress") else None

    return wait_for(done, what=f"{response_id} to end", timeout=120, every=0.2)


def test_a_response_from_the_local_model_is_a_task(client, service):
    raw = client.responses.with_raw_response.create(
        model="gemma",
        input="Say hello.",
        instructions="Be brief.",
        max_output_tokens=12,
        temperature=0,
    )
    response = raw.parse()
    assert response.status in ("completed", "incomplete") and response.output_text
    assert response.usage.output_tokens > 0 and response.usage.input_tokens > 0
    assert response.id == f"resp_{raw.headers['X-SOP-Task-Id']}"
    task = requests.get(
        f"{service}/api/v1/tasks/{raw.headers['X-SOP-Task-Id']}", headers=AUTH, timeout=5
    ).json()
    assert task["status"] == "completed" and task["result"]["text"] == response.output_text
    again = client.responses.retrieve(response.id)
    assert again.output_text == response.output_text and again.instructions == "Be brief."
    items = client.responses.input_items.list(response.id)
    assert [i.content[0].text for i in items.data] == ["Say hello."]


def test_a_streamed_response_arrives_as_typed_events_numbered_in_order(client):
    events = list(
        client.responses.create(
            model="gemma", input=STORY, max_output_tokens=30, temperature=0.7, stream=True
        )
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    pieces = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(pieces) > 1, pieces  # as it is generated, not in one piece at the end
    done = next(e for e in events if e.type == "response.output_text.done")
    assert deltas == done.text == events[-1].response.output_text


def test_a_background_response_is_polled_to_its_end(client):
    response = client.responses.create(
        model="gemma", input="Hi", max_output_tokens=8, background=True
    )
    assert response.status in ("queued", "in_progress") and response.background
    ended = final(client, response.id)
    assert ended.status in ("completed", "incomplete") and ended.output_text


def test_a_background_response_is_streamed_later_and_resumed_after_any_event(client, service):
    response = client.responses.create(
        model="gemma", input=STORY, max_output_tokens=40, temperature=0.7, background=True
    )
    whole = list(client.responses.retrieve(response.id, stream=True))
    assert whole[-1].type in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in whole] == list(range(len(whole)))
    cut = len(whole) // 2
    rest = list(client.responses.retrieve(response.id, stream=True, starting_after=cut))
    assert [e.sequence_number for e in rest] == list(range(cut + 1, len(whole)))
    assert [e.model_dump() for e in rest] == [e.model_dump() for e in whole[cut + 1 :]]


# An answer that cannot end early (the model's turn would otherwise end when it likes).
LONG = {
    "type": "object",
    "properties": {"story": {"type": "string", "minLength": 600}},
    "required": ["story"],
    "additionalProperties": False,
}


def test_a_background_response_is_cancelled_mid_generation(client):
    response = client.responses.create(
        model="gemma",
        input=STORY,
        max_output_tokens=900,
        temperature=0.8,
        background=True,
        text={"format": {"type": "json_schema", "name": "story", "schema": LONG, "strict": True}},
    )
    stream = client.responses.retrieve(response.id, stream=True)
    for event in stream:
        if event.type == "response.output_text.delta":
            break
    client.responses.cancel(response.id)
    ended = final(client, response.id)
    assert ended.status == "cancelled"
    assert ended.usage is None or ended.usage.output_tokens < 900


def test_a_two_turn_chain_carries_the_first_turn(client, service):
    first = client.responses.create(
        model="gemma", input="My name is Ada.", max_output_tokens=8, temperature=0
    )
    second = client.responses.create(
        model="gemma",
        input="What is my name?",
        previous_response_id=first.id,
        max_output_tokens=8,
        temperature=0,
    )
    task_id = second.id.removeprefix("resp_")
    task = requests.get(f"{service}/api/v1/tasks/{task_id}/report", headers=AUTH, timeout=5).json()
    messages = task["request"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "My name is Ada."
    assert messages[1]["content"] == first.output_text
    assert second.previous_response_id == first.id


TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def test_a_function_tool_round_trip(client):
    first = client.responses.create(
        model="gemma",
        input="What is the weather in Paris?",
        tools=[TOOL],
        tool_choice="required",
        max_output_tokens=60,
        temperature=0,
    )
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert "city" in json.loads(call.arguments)
    second = client.responses.create(
        model="gemma",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}],
        tools=[TOOL],
        tool_choice="none",
        max_output_tokens=20,
        temperature=0,
    )
    assert second.output[0].type == "message" and second.output_text


def test_a_streamed_function_call_arrives_with_its_arguments(client):
    events = list(
        client.responses.create(
            model="gemma",
            input="Weather in Rome?",
            tools=[TOOL],
            tool_choice="required",
            max_output_tokens=60,
            temperature=0,
            stream=True,
        )
    )
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    delta = next(e for e in events if e.type == "response.function_call_arguments.delta")
    assert delta.delta == done.arguments and "city" in json.loads(done.arguments)
    assert events[-1].response.output[0].type == "function_call"


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["city", "rank"],
    "properties": {
        "city": {"type": "string", "maxLength": 30},
        "rank": {"type": "integer", "minimum": 1, "maximum": 10},
    },
}


def test_json_schema_answers_at_temperature_one_are_all_valid(client):
    text = {"format": {"type": "json_schema", "name": "city", "schema": SCHEMA, "strict": True}}
    for seed in range(3):
        response = client.responses.create(
            model="gemma",
            input="A city as JSON.",
            max_output_tokens=60,
            temperature=1.0,
            text=text,
            extra_body={"seed": seed},  # an extension, as on chat
        )
        jsonschema.validate(json.loads(response.output_text), SCHEMA)


def test_another_tenant_s_response_is_a_404(client, service):
    response = client.responses.create(
        model="gemma", input="Hi", max_output_tokens=4, background=True
    )
    _, key = issue("tasks", name="tenant-b")
    other = openai.OpenAI(base_url=f"{service}/v1", api_key=key, max_retries=0, timeout=30)
    for call in (
        lambda: other.responses.retrieve(response.id),
        lambda: other.responses.cancel(response.id),
        lambda: other.responses.delete(response.id),
        lambda: other.responses.input_items.list(response.id),
        lambda: other.responses.create(model="gemma", input="x", previous_response_id=response.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert final(client, response.id).status in ("completed", "incomplete")


def test_a_deleted_response_is_gone(client):
    response = client.responses.create(model="gemma", input="Hi", max_output_tokens=4)
    deleted = client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    assert deleted is None or getattr(deleted, "deleted", True)


@pytest.fixture
def remote_service(processes):
    from tests.fakes.servers import FakeServer, Reply, openai_chat

    with FakeServer() as fake:
        fake.reply(Reply(200, openai_chat("Paris.")))
        processes.worker("remote", OPENAI_COMPATIBLE_BASE_URL=f"{fake.url}/v1")
        yield processes.web(), fake


def test_a_remote_provider_gets_the_response_as_its_chat_request(remote_service):
    base, fake = remote_service
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=60)
    response = client.responses.create(
        model="openai_compatible/m", input="Capital of France?", instructions="One word."
    )
    assert response.output_text == "Paris." and response.status == "completed"
    assert response.usage.input_tokens == 12 and response.usage.output_tokens == 5
    sent = fake.seen[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == [
        {"role": "system", "content": "One word."},
        {"role": "user", "content": "Capital of France?"},
    ]


def test_the_openai_agents_sdk_runs_an_agent_with_a_function_tool(service):
    from agents import (
        Agent,
        ModelSettings,
        OpenAIResponsesModel,
        Runner,
        function_tool,
        set_tracing_disabled,
    )

    set_tracing_disabled(True)  # its traces would go to api.openai.com
    asked = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        asked.append(city)
        return f"sunny in {city}"

    model = OpenAIResponsesModel(
        "gemma", openai.AsyncOpenAI(base_url=f"{service}/v1", api_key=API_KEY, max_retries=0)
    )
    agent = Agent(
        name="weather",
        instructions="Answer with the weather tool.",
        tools=[get_weather],
        model=model,
        model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=60),
        tool_use_behavior="stop_on_first_tool",  # the tool's answer is the agent's
    )
    result = Runner.run_sync(agent, "What is the weather in Paris?")
    assert len(asked) == 1 and result.final_output == f"sunny in {asked[0]}"


def test_a_response_s_webhook_is_named_response_completed_and_signed(processes, settings):
    from standardwebhooks import Webhook

    from tests.fakes.servers import FakeServer, Reply, openai_chat

    with FakeServer() as remote, FakeServer() as receiver:
        remote.reply(Reply(200, openai_chat("Paris.")))
        receiver.reply(Reply(200, {"ok": True}))
        processes.worker("remote", OPENAI_COMPATIBLE_BASE_URL=f"{remote.url}/v1")
        processes.worker("webhooks")
        base = processes.web()
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=60)
        response = client.responses.create(
            model="openai_compatible/m",
            input="Capital of France?",
            extra_body={"webhook_url": f"{receiver.url}/hook"},
        )
        wait_for(lambda: receiver.seen, what="the webhook", timeout=30)
    seen = receiver.seen[0]
    raw = json.dumps(seen.body, separators=(",", ":"))
    payload = Webhook(settings.WEBHOOK_SECRET).verify(raw, dict(seen.headers))
    assert payload["event"] == "response.completed" == seen.headers["X-SOP-Event"]
    assert payload["data"] == {"id": response.id}


def test_a_response_s_stream_outlives_the_web_process_that_recorded_it(processes):
    import os
    import signal

    first = processes.web()
    processes.worker("gpu", gpu=True)
    recorder = processes.procs[0]
    client = openai.OpenAI(base_url=f"{first}/v1", api_key=API_KEY, max_retries=0, timeout=120)
    response = client.responses.create(
        model="gemma", input=STORY, max_output_tokens=200, temperature=0.7, background=True
    )
    seen = []
    for event in client.responses.retrieve(response.id, stream=True):
        seen.append(event)
        if event.type == "response.output_text.delta":
            break
    os.killpg(recorder.pid, signal.SIGKILL)  # the recording process dies mid-answer
    recorder.wait()
    second = processes.web()
    other = openai.OpenAI(base_url=f"{second}/v1", api_key=API_KEY, max_retries=0, timeout=120)
    last = seen[-1].sequence_number
    rest = list(other.responses.retrieve(response.id, stream=True, starting_after=last))
    assert rest[0].sequence_number == last + 1
    assert rest[-1].type in ("response.completed", "response.incomplete")
    deltas = [e.delta for e in seen + rest if e.type == "response.output_text.delta"]
    assert "".join(deltas) == rest[-1].response.output_text


def openai_response(text: str) -> dict:
    """A Responses API answer, as api.openai.com sends it."""
    part = {"type": "output_text", "text": text, "annotations": []}
    message = {"id": "msg_x", "type": "message", "role": "assistant", "status": "completed"}
    return {
        "id": "resp_fake123",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "gpt-4o-mini",
        "output": [{**message, "content": [part]}],
        "usage": {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11},
    }


def test_the_openai_provider_gets_the_response_as_a_responses_api_request(processes):
    from tests.fakes.servers import FakeServer, Reply

    with FakeServer() as fake:
        fake.reply(Reply(200, openai_response("Paris.")))
        env = {"OPENAI_BASE_URL": f"{fake.url}/v1", "OPENAI_API_KEY": "sk-test-responses"}
        processes.worker("remote", **env)
        base = processes.web()
        client = openai.OpenAI(base_url=f"{base}/v1", api_key=API_KEY, max_retries=0, timeout=60)
        response = client.responses.create(
            model="openai/gpt-4o-mini",
            input="Capital of France?",
            instructions="One word.",
            max_output_tokens=10,
            tools=[TOOL],
            tool_choice={"type": "function", "name": "get_weather"},
        )
    assert response.output_text == "Paris." and response.usage.output_tokens == 2
    sent = fake.seen[-1]
    assert sent.path == "/v1/responses"
    assert sent.headers["Authorization"] == "Bearer sk-test-responses"
    assert sent.body["instructions"] == "One word." and sent.body["max_output_tokens"] == 10
    assert sent.body["input"] == [{"role": "user", "content": "Capital of France?"}]
    assert sent.body["tools"][0]["name"] == "get_weather"
    assert sent.body["tool_choice"] == {"type": "function", "name": "get_weather"}
