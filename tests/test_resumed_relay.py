"""A /v1 stream across a resume: the text goes on where the checkpoint's streamed text ended."""

from tasks.relay import Relay, restarted


def _token(text: str, offset: int, run: int = 1, resumed_at: int = 0) -> dict:
    event = {"type": "task.token", "text": text, "index": 0, "offset": offset, "run": run}
    return {**event, "attempt": 1, **({"resumed_at": resumed_at} if resumed_at else {})}


def test_a_resumed_run_repeats_nothing_of_what_was_sent_and_loses_nothing():
    relay = Relay()
    assert relay.batch([_token("Once ", 0), _token("upon a ", 5)]) == ("Once upon a ", None)
    requeued = {"type": "task.queued", "reason": "worker_lost", "resumes": {"offset": 5}}
    assert not restarted(requeued, relay.generation, relay.sent)
    # The new run starts at the checkpoint (5 characters) and repeats "upon a " first.
    events = [requeued, _token("upon a ti", 5, run=2, resumed_at=5), _token("me", 14, run=2)]
    assert relay.batch(events) == ("time", None)
    assert relay.sent == "Once upon a time"


def test_a_requeue_without_a_checkpoint_or_a_resume_that_went_another_way_restarts():
    relay = Relay()
    relay.batch([_token("Once upon", 0)])
    plain = {"type": "task.queued", "reason": "worker_lost"}
    assert restarted(plain, relay.generation, relay.sent)
    other = _token("on a hill", 5, run=2, resumed_at=5)
    assert relay.batch([other]) == ("", "restarted")
    assert relay.sent == "Once upon"
