"""Bad input is a 400 that names what is wrong, on the native API and /v1 alike (issue 16)."""

import json

import pytest
from django.test import Client

from tests.conftest import API_KEY

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {API_KEY}"}
NATIVE = {"provider": "openai_compatible", "model": "m", "prompt": "hi"}
OPENAI_CHAT = {"model": "openai_compatible/m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def http() -> Client:
    return Client(raise_request_exception=False)


def post(http: Client, url: str, raw: str | bytes, **headers):
    return http.post(url, raw, content_type="application/json", **AUTH, **headers)


def native(**extra) -> dict:
    return {**NATIVE, "options": {"base_url": "http://127.0.0.1:9/v1"}, **extra}


def native_error(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def openai_error(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


@pytest.mark.parametrize("number", NON_FINITE)
def test_a_non_finite_number_anywhere_in_a_native_body_is_a_400(http, number):
    raw = json.dumps(native(metadata={"a": [1, "PLACE"]})).replace('"PLACE"', number)
    error = native_error(post(http, "/api/v1/tasks", raw))
    assert error["code"] == "invalid_json" and "JSON parse error" in error["message"]


@pytest.mark.parametrize("number", NON_FINITE)
def test_a_non_finite_number_anywhere_in_an_openai_body_is_a_400(http, number):
    raw = json.dumps({**OPENAI_CHAT, "metadata": {"a": "PLACE"}}).replace('"PLACE"', number)
    error = openai_error(post(http, "/v1/chat/completions", raw))
    assert error["code"] == "invalid_json"


@pytest.mark.parametrize("url", ["/api/v1/tasks", "/api/v1/grammars/check", "/v1/completions"])
def test_json_nested_tens_of_thousands_deep_is_a_400_not_a_crash(http, url):
    response = post(http, url, '{"a": ' * 30_000 + "1" + "}" * 30_000)
    assert response.status_code == 400, response.content
    assert "nested deeper than 64" in response.content.decode()


def test_nesting_within_the_limit_and_brackets_inside_strings_are_accepted(http):
    deep = "[" * 60 + '"[[[{{{"' + "]" * 60
    raw = json.dumps(native(metadata={"deep": "PLACE"})).replace('"PLACE"', deep)
    response = post(http, "/api/v1/tasks", raw)
    assert response.status_code == 202, response.content
    task = http.get(f"/api/v1/tasks/{response.json()['task_id']}", **AUTH).json()
    assert task["metadata"]["deep"][0][0][0]


@pytest.mark.parametrize("url", ["/api/v1/tasks", "/v1/chat/completions"])
def test_a_lone_surrogate_in_a_string_is_a_400(http, url):
    raw = json.dumps(native(metadata={"a": "x"})).replace('"x"', '"\\ud800"')
    assert post(http, url, raw).status_code == 400


def test_a_body_that_is_not_utf8_is_a_400(http):
    assert post(http, "/api/v1/tasks", b'{"prompt": "\xff"}').status_code == 400


BAD_URLS = [
    "http://example.com:99999/",
    "http://example.com:-1/",
    "http://[::1/",
    "ftp://example.com/",
    "http:///nohost",
    42,
    ["http://example.com/"],
    {"url": "http://example.com/"},
    True,
]
URL_FIELDS = [
    ({}, "webhook_url", "webhook_url"),
    ({"provider": "custom", "options": {}}, "options.url", "options.url"),
    ({}, "options.base_url", "options.base_url"),
    ({"provider": "anthropic", "options": {}}, "options.base_url", "options.base_url"),
    (
        {"fallback": [{"provider": "custom", "model": "x", "options": {}}]},
        "fallback.0.options.url",
        "fallback.0.options.url",
    ),
]


def put(body: dict, dotted: str, value) -> dict:
    """`body` with `value` at a dotted path (creating objects on the way; digits index lists)."""
    *parents, last = dotted.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[int(last) if last.isdigit() else last] = value
    return body


@pytest.mark.parametrize("url", BAD_URLS, ids=repr)
@pytest.mark.parametrize("change,path,field", URL_FIELDS, ids=lambda x: str(x)[:30])
def test_a_bad_url_of_any_shape_is_a_400_naming_its_field(http, url, change, path, field):
    body = put(json.loads(json.dumps(native(**change))), path, url)
    error = native_error(post(http, "/api/v1/tasks", json.dumps(body)))
    assert error["field"] == field, error


WRONG_TYPES = [
    ("prompt", 42),
    ("prompt", ["hi"]),
    ("model", 7),
    ("provider", ["local"]),
    ("params.max_tokens", "100"),
    ("params.max_tokens", 10.5),
    ("params.max_tokens", True),
    ("params.temperature", "0.5"),
    ("params.temperature", "nan"),
    ("params.temperature", 10**400),
    ("params.stop", [1, 2]),
    ("params.stop", "\n"),
    ("params.seed", "42"),
    ("priority", "5"),
    ("priority", 5.0),
    ("wait", False),
    ("timeout_seconds", "60"),
    ("metadata", ["a"]),
    ("metadata", "a"),
    ("response_format.type", ["text"]),
    ("options.preset", ["vllm"]),
    ("options.preset", {"name": "vllm"}),
    ("options.headers", ["X-A: b"]),
    ("options.headers.X-A", 1),
    ("options.headers.X-A", "b\r\nInjected: yes"),
    ("options.api_key", 123),
    ("idempotency_key", 123),
]


@pytest.mark.parametrize("path,value", WRONG_TYPES, ids=repr)
def test_a_value_of_the_wrong_json_type_is_refused_not_coerced(http, path, value):
    body = put(native(), path, value)
    error = native_error(post(http, "/api/v1/tasks", json.dumps(body)))
    assert error["code"] == "invalid" and error["field"].startswith(path), error


def test_a_message_whose_content_is_not_a_string_is_refused(http):
    body = native(messages=[{"role": "user", "content": 5}])
    del body["prompt"]
    error = native_error(post(http, "/api/v1/tasks", json.dumps(body)))
    assert error["field"] == "messages.0.content" and "string" in error["message"]


def test_a_boolean_given_as_a_string_is_refused(http):
    schema = {"schema": {}, "strict": "true"}
    body = native(response_format={"type": "json_schema", "json_schema": schema})
    error = native_error(post(http, "/api/v1/tasks", json.dumps(body)))
    assert error["field"] == "response_format.json_schema.strict"


UNKNOWN_FIELDS = [
    ("max_token", "max_token"),
    ("params.max_token", "params.max_token"),
    ("messages.0.speaker", "messages.0.speaker"),  # `name` is the speaker: honoured
    ("response_format.shema", "response_format.shema"),  # `schema` is known: json_object
    ("options.load", "options.load"),
    ("options.bogus", "options.bogus"),
]


@pytest.mark.parametrize("path,field", UNKNOWN_FIELDS)
def test_an_unknown_field_is_refused_naming_it(http, path, field):
    body = native(messages=[{"role": "user", "content": "hi"}])
    del body["prompt"]
    error = native_error(post(http, "/api/v1/tasks", json.dumps(put(body, path, 1))))
    assert error["field"] == field and "unknown field" in error["message"], error


def test_a_typo_in_a_field_name_suggests_the_right_one(http):
    body = native(params={"max_token": 5})
    error = native_error(post(http, "/api/v1/tasks", json.dumps(body)))
    assert error["field"] == "params.max_token" and "'max_tokens'" in error["message"]


LOCAL = {"provider": "local", "model": "gemma-3-270m-q4_k_m", "prompt": "hi"}
BAD_LOAD = [
    ({"n_ctx": "big"}, "options.load.n_ctx"),
    ("fast", "options.load"),
    ({"type_k": "q9"}, "options.load.type_k"),
    ({"n_ctx": 64}, "options.load.n_ctx"),
    ({"n_gpu_layers": 1.5}, "options.load.n_gpu_layers"),
    ({"flash_attn": "yes"}, "options.load.flash_attn"),
    ({"type_v": "q4_0"}, "options.load.type_v"),
    ({"chat_format": 7}, "options.load.chat_format"),
    ({"n_batch": 0}, "options.load.n_batch"),
    ({"context": 4096}, "options.load.context"),
]


@pytest.mark.parametrize("load,field", BAD_LOAD, ids=repr)
def test_bad_load_options_of_a_local_task_are_a_400_at_submit(http, load, field):
    body = {**LOCAL, "options": {"load": load}}
    error = native_error(post(http, "/api/v1/tasks", json.dumps(body)))
    assert error["field"] == field, error


@pytest.mark.parametrize("load,field", BAD_LOAD, ids=repr)
def test_the_models_load_api_checks_the_same_load_parameters(http, load, field):
    if not isinstance(load, dict):
        return  # the load API takes the parameters at its top level
    body = {"model": "gemma", "wait_seconds": 0, **load}
    error = native_error(post(http, "/api/v1/models/load", json.dumps(body)))
    assert error["field"] == field.removeprefix("options.load."), error


def test_good_load_options_are_accepted(http):
    load = {"n_ctx": 512, "type_k": "q8_0", "type_v": "q8_0", "flash_attn": True}
    body = {**LOCAL, "options": {"load": load, "grammar_engine": "native"}}
    body["params"] = {"max_tokens": 64}  # fits a batch slot of n_ctx 512 / GPU_SLOTS 4
    assert post(http, "/api/v1/tasks", json.dumps(body)).status_code == 202


def test_a_bad_local_fallback_model_is_named_by_its_place_in_the_list(http):
    body = {**LOCAL, "fallback": [{"provider": "local", "model": "no-such-model"}]}
    error = native_error(post(http, "/api/v1/tasks", json.dumps(body)))
    assert error["field"] == "fallback.0.model", error


def chat(**extra) -> dict:
    return {**OPENAI_CHAT, **extra}


OPENAI_BAD = [
    (chat(max_token=5), "max_token"),
    (chat(max_tokens=-1), "max_tokens"),
    (chat(max_completion_tokens=-1), "max_completion_tokens"),
    (chat(max_tokens="5"), "max_tokens"),
    (chat(temperature="hot"), "temperature"),
    (chat(stop=[1, 2]), "stop.0"),
    (chat(stream="true"), "stream"),
    (chat(stream_options={"include_usage": 1}), "stream_options.include_usage"),
    (chat(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
    (chat(messages=[{"role": "user", "content": "x", "nme": "a"}]), "messages.0.nme"),
    (chat(messages="hi"), "messages"),
    (chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), "messages.0.content"),
    (chat(model=["gemma"]), "model"),
    (chat(metadata=[1]), "metadata"),
    (chat(webhook_url="http://example.com:99999/"), "webhook_url"),
    (chat(fallbacks=[{"provider": "local", "model": "nope"}]), "fallbacks.0"),
    (chat(logit_bias={"50256": -101}), "logit_bias"),
    (chat(logit_bias={"x1": 5}), "logit_bias"),
    (chat(logit_bias={"1": True}), "logit_bias"),
    (chat(logit_bias=[1, 2]), "logit_bias"),
    (chat(logit_bias={str(i): 1 for i in range(1025)}), "logit_bias"),
    (chat(model="openai/gpt-4o", logit_bias={"1": 5}), "logit_bias"),
]
NOT_YET = [
    chat(audio={"voice": "alloy"}),
    chat(reasoning_effort="low"),
    chat(messages=[{"role": "user", "content": "x", "audio": {"id": "a"}}]),
]


@pytest.mark.parametrize("body,param", OPENAI_BAD, ids=repr)
def test_bad_openai_input_is_a_400_naming_the_openai_parameter(http, body, param):
    error = openai_error(post(http, "/v1/chat/completions", json.dumps(body)))
    assert error["param"].startswith(param), error
    assert not error["message"].startswith(param)  # named once, in `param`


@pytest.mark.parametrize("body", NOT_YET, ids=repr)
def test_an_openai_field_we_do_not_implement_yet_is_refused_by_name(http, body):
    error = openai_error(post(http, "/v1/chat/completions", json.dumps(body)))
    assert "not supported" in error["message"], error
    assert error["param"].split(".")[0] in body or error["param"].startswith("messages.0")


def test_a_completion_with_several_prompts_or_an_echo_is_refused(http):
    for extra, param in (({"prompt": ["a", "b"]}, "prompt"), ({"echo": True}, "echo")):
        body = {"model": "openai_compatible/m", "prompt": "x", **extra}
        error = openai_error(post(http, "/v1/completions", json.dumps(body)))
        assert error["param"] == param, error


def test_the_no_op_values_of_unimplemented_fields_and_known_fields_are_accepted():
    from tasks.openai.protocol.requests import openai_request

    body = chat(
        n=1,
        logprobs=False,
        tool_choice=None,
        store=False,
        user="u-1",
        stream=False,
        stop="\n",
        max_completion_tokens=5,
        messages=[{"role": "developer", "content": [{"type": "text", "text": "be brief"}]}],
    )
    request = openai_request(body, chat=True)
    assert request["messages"] == [{"role": "system", "content": "be brief"}]
    assert "tool_choice" not in request and request["n"] == 1


def test_a_native_error_message_does_not_repeat_the_field(http):
    error = native_error(post(http, "/api/v1/tasks", json.dumps(native(priority=10**6))))
    assert error["field"] == "priority" and not error["message"].startswith("priority")


def test_an_idempotency_key_header_longer_than_the_body_field_allows_is_a_400(http):
    long_key = "k" * 7000
    error = native_error(
        post(http, "/api/v1/tasks", json.dumps(native()), HTTP_IDEMPOTENCY_KEY=long_key)
    )
    assert error["field"] == "Idempotency-Key" and "200" in error["message"]
    response = post(http, "/v1/chat/completions", json.dumps(chat()), HTTP_IDEMPOTENCY_KEY=long_key)
    assert openai_error(response)["param"] == "Idempotency-Key"


def test_an_idempotency_key_header_that_differs_from_the_body_field_is_a_400(http):
    body = json.dumps(native(idempotency_key="a"))
    error = native_error(post(http, "/api/v1/tasks", body, HTTP_IDEMPOTENCY_KEY="b"))
    assert error["field"] == "Idempotency-Key"
    assert post(http, "/api/v1/tasks", body, HTTP_IDEMPOTENCY_KEY="a").status_code == 202


@pytest.mark.parametrize("prefer", ["wait=\u00b2", "wait=\u0663", "wait=-1", "wait=1e3"])
def test_a_prefer_wait_that_is_not_plain_digits_is_ignored_not_a_500(http, prefer):
    response = post(http, "/api/v1/tasks", json.dumps(native()), HTTP_PREFER=prefer)
    assert response.status_code == 202, response.content


def raw_post(base: str, path: str, body: dict, headers: list[tuple[str, str]]):
    """POST with headers exactly as listed (repeats included), over a real socket."""
    import http.client
    from urllib.parse import urlsplit

    conn = http.client.HTTPConnection(urlsplit(base).netloc, timeout=30)
    conn.putrequest("POST", path)
    for name, value in [("Authorization", f"Bearer {API_KEY}"), *headers]:
        conn.putheader(name, value)
    data = json.dumps(body).encode()
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    response = conn.getresponse()
    return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}


@pytest.fixture
def remote_service(processes):
    from tests.fakes.servers import FakeServer, Reply, openai_chat

    with FakeServer() as fake:
        fake.reply(Reply(200, openai_chat("Paris.")))
        processes.worker("remote", OPENAI_COMPATIBLE_BASE_URL=f"{fake.url}/v1")
        yield processes.web(), fake.url


@pytest.mark.slow
def test_a_repeated_idempotency_key_header_is_a_400_when_its_values_differ(remote_service):
    base, remote = remote_service
    task = native(options={"base_url": f"{remote}/v1"})
    twice = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    for path, body in (("/api/v1/tasks", task), ("/v1/chat/completions", chat())):
        status, content, _ = raw_post(base, path, body, twice)
        error = json.loads(content)["error"]
        assert status == 400 and "Idempotency-Key" in (error.get("field"), error.get("param"))
    same = [("Idempotency-Key", "a,b"), ("Idempotency-Key", "a,b")]
    assert raw_post(base, "/api/v1/tasks", task, same)[0] == 202


@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True])
def test_an_idempotent_replay_on_v1_answers_the_same_task(remote_service, stream):
    base, remote = remote_service
    body = {"model": "openai_compatible/m", "messages": [{"role": "user", "content": "Capital?"}]}
    body |= {"stream": stream, "fallbacks": []}
    key = [("Idempotency-Key", f"replay-{stream}")]
    first = raw_post(base, "/v1/chat/completions", body, key)
    again = raw_post(base, "/v1/chat/completions", body, key)
    assert first[0] == again[0] == 200, again[1]
    assert first[2]["x-sop-task-id"] == again[2]["x-sop-task-id"]
    assert b"Paris." in again[1] and (not stream or again[1].endswith(b"data: [DONE]\n\n"))


def test_the_api_root_links_the_dashboard_and_the_docs_and_every_link_opens(api):
    links = api.get("/api/v1/").json()
    assert links["dashboard"].endswith("/monitor/") and links["docs"].endswith("/api/docs/")
    for url in links.values():  # pages for people may send a header-only client to sign in
        assert api.get(url).status_code in (200, 302), url


def test_the_browsable_tasks_page_opens_with_a_form_prefilled_with_a_valid_task(api):
    import html
    import re

    page = api.get("/api/v1/tasks", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    textarea = re.search(
        r'<textarea[^>]*name="_content"[^>]*>(.*?)</textarea>', page.content.decode(), re.S
    )
    prefilled = json.loads(html.unescape(textarea.group(1)))
    response = api.post("/api/v1/tasks", prefilled, format="json")
    assert response.status_code == 202, response.json()


def test_no_preset_points_at_this_service(settings, http):
    from sop_llm.providers.openai_compatible import PRESETS, points_at_us

    assert not [name for name, (url, _) in PRESETS.items() if points_at_us(url)]
    settings.PORT = 11434  # as if the service ran on ollama's port
    body = native(options={"preset": "ollama"})
    assert native_error(post(http, "/api/v1/tasks", json.dumps(body)))["field"] == "options.preset"


def test_errors_given_before_a_v1_view_runs_come_in_openai_s_shape(http, settings):
    assert openai_error(http.get("/v1/nope", **AUTH), 404)["code"] == "not_found"
    settings.MAX_REQUEST_BODY_BYTES = 2048
    response = post(http, "/v1/chat/completions", json.dumps(chat(stop="x" * 5000)))
    assert openai_error(response, 413)["code"] == "body_too_large"


@pytest.mark.parametrize("url", ["/api/v1/tasks", "/v1/chat/completions"])
def test_a_content_length_that_is_not_a_number_is_a_400(http, url):
    response = post(http, url, json.dumps(native()), CONTENT_LENGTH="\u00b2")
    assert response.status_code == 400, response.content


def test_every_provider_has_its_own_options_serializer():
    from sop_llm.core.strict import StrictSerializer
    from sop_llm.providers import REGISTRY, get_provider

    for name in REGISTRY:  # a new provider must say which options it takes
        assert issubclass(get_provider(name).options_serializer, StrictSerializer), name


TOOL_TURN = {"role": "tool", "content": "42"}


def test_a_tool_message_without_tool_call_id_is_a_400_naming_it_on_both_doors(http):
    history = [{"role": "user", "content": "hi"}, TOOL_TURN]
    body = {k: v for k, v in native(messages=history).items() if k != "prompt"}
    error = native_error(post(http, "/api/v1/tasks", json.dumps(body)))
    assert error["field"] == "messages.1.tool_call_id", error
    error = openai_error(post(http, "/v1/chat/completions", json.dumps(chat(messages=history))))
    assert error["param"] == "messages.1.tool_call_id", error


def test_a_message_with_an_empty_array_of_content_parts_is_a_400_naming_it():
    from rest_framework.exceptions import ValidationError

    from tasks.openai.protocol.requests import openai_request

    with pytest.raises(ValidationError) as refused:
        openai_request(chat(messages=[{"role": "user", "content": []}]), chat=True)
    assert "must not be empty" in str(refused.value.detail["messages"][0]["content"])


@pytest.mark.parametrize("url", ["/api/v1/tasks", "/v1/chat/completions"])
def test_a_key_given_twice_in_one_object_is_a_400_naming_the_key(http, url):
    body = native() if url == "/api/v1/tasks" else chat(zzz=1)  # zzz: a 400 either way
    raw = json.dumps(body)[:-1] + ', "model": "other"}'
    response = post(http, url, raw)
    assert response.status_code == 400, response.content
    assert "'model' is given twice" in response.json()["error"]["message"]


@pytest.mark.parametrize("field", ["fallbacks", "fallback"])
def test_an_unknown_fallback_model_on_v1_names_its_place_in_the_fallbacks(http, field):
    body = chat(**{field: ["openai_compatible/m", "nope/zzz"]})
    error = openai_error(post(http, "/v1/chat/completions", json.dumps(body)), 404)
    assert (error["param"], error["code"]) == (f"{field}.1", "model_not_found"), error
