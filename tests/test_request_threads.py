"""The ASGI handler keeps Django's thread-per-request rule with pooled threads
(sop_llm.core.request_threads): one thread per request at a time, reused by later requests."""

import asyncio
import threading

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from asgiref.testing import ApplicationCommunicator

from sop_llm.asgi import application
from sop_llm.core.request_threads import _Pool

thread_of = sync_to_async(threading.get_ident)  # thread-sensitive, as Django's hops are


async def _in_request(pool: _Pool, body) -> object:
    executor = pool.take()
    try:
        async with ThreadSensitiveContext(executor=executor):
            return await body()
    finally:
        pool.give(executor)


def test_a_request_s_sync_calls_share_one_thread_and_the_next_request_reuses_it():
    pool = _Pool()

    async def two_calls():
        return {await thread_of(), await thread_of()}

    async def main():
        first = await _in_request(pool, two_calls)
        second = await _in_request(pool, two_calls)
        return first, second

    first, second = asyncio.run(main())
    assert len(first) == 1 and first == second  # one thread each, the same one


def test_concurrent_requests_each_get_a_thread_of_their_own():
    pool = _Pool()
    both_inside = threading.Barrier(2, timeout=5)

    def meet() -> int:
        both_inside.wait()  # deadlocks (times out) if the two shared one thread
        return threading.get_ident()

    async def main():
        call = sync_to_async(meet)
        return await asyncio.gather(*(_in_request(pool, call) for _ in range(2)))

    first, second = asyncio.run(main())
    assert first != second


def test_a_thread_still_busy_when_its_request_ends_is_not_handed_out_again():
    pool = _Pool()
    release = threading.Event()

    async def main():
        executor = pool.take()
        async with ThreadSensitiveContext(executor=executor):
            stuck = asyncio.ensure_future(sync_to_async(release.wait)())
            await asyncio.sleep(0.05)  # the call runs; its request gives up on it
            stuck.cancel()
        pool.give(executor)
        assert pool.idle == []
        release.set()

    asyncio.run(main())


def test_a_request_through_the_asgi_application_is_answered():
    async def main():
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/health",
            "headers": [],
            "query_string": b"",
            "http_version": "1.1",
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 1),
        }
        app = ApplicationCommunicator(application, scope)
        await app.send_input({"type": "http.request", "body": b""})
        start = await app.receive_output(5)
        while (await app.receive_output(5)).get("more_body"):
            pass
        return start["status"]

    assert asyncio.run(main()) in (200, 503)  # 503: a dependency is down, still an answer
