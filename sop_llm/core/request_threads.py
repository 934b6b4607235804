"""Django's ASGI handler, with each request's thread-sensitive work on a pooled thread.

Django gives every request a thread of its own for its sync work (a ThreadSensitiveContext),
started for it and joined after it by yet another thread: two thread starts per request, on
the event loop's time, even for an async view whose only sync step is the response's close.
Here each request still has one thread to itself for as long as it runs, but the threads are
kept and handed to later requests (asgiref's executor-owning ThreadSensitiveContext)."""

from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

IDLE_THREADS_KEPT = 64


class _OneThread(ThreadPoolExecutor):
    """One worker thread; knows whether a call it was given is still running."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="request")
        self.pending: set[Future] = set()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = super().submit(fn, *args, **kwargs)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)
        return future


class _Pool:
    """Idle request threads; used from the event loop's thread only."""

    def __init__(self) -> None:
        self.idle: list[_OneThread] = []

    def take(self) -> _OneThread:
        return self.idle.pop() if self.idle else _OneThread()

    def give(self, executor: _OneThread) -> None:
        # A call still running (its request was cancelled mid-call) must not delay the next
        # request: that thread finishes alone and ends.
        if executor.pending or len(self.idle) >= IDLE_THREADS_KEPT:
            executor.shutdown(wait=False)
        else:
            self.idle.append(executor)


class PooledThreadsASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.threads = _Pool()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await super().__call__(scope, receive, send)  # Django refuses it
        executor = self.threads.take()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give(executor)
