"""What a stream passes on of a task's token events, for every door that streams (the OpenAI
routes, the Responses and Messages APIs): the tokens of one generation, and the moment the
answer starts over (a requeue, another run or attempt) so that what was sent is not part of it."""

from dataclasses import dataclass

from tasks.waiting import FINAL_EVENTS


def restarted(event: dict, generation: tuple | None, sent: str = "") -> bool:
    """After text went out, a token of another run or attempt, or a requeue, means the
    answer starts over: what was streamed is not part of it. The creation's own task.queued
    (no `reason`) may arrive after the first tokens: a busy GPU worker claims a task between
    its creation's write and that event. A requeue that resumes from a checkpoint, and the
    tokens of the run that resumes, go on from text already sent (`continues`)."""
    if generation is None:
        return False
    if event["type"] == "task.queued":
        resumes = event.get("resumes") or {}
        return "reason" in event and not resumes.get("offset", len(sent) + 1) <= len(sent)
    if event["type"] != "task.token":
        return False
    return (event.get("run"), event.get("attempt")) != generation and not continues(event, sent)


def continues(event: dict, sent: str) -> bool:
    """A resumed run's token: its text starts at `offset` of the answer, at or before the end
    of what was sent, and agrees with what was sent from there (a resumed greedy run repeats
    the tokens generated after its checkpoint; batch numerics or a sampled run may not)."""
    offset = event.get("offset")
    if not event.get("resumed_at") or offset is None or offset > len(sent):
        return False
    overlap = sent[offset : offset + len(event["text"])]
    return event["text"].startswith(overlap)


@dataclass
class Relay:
    """What a stream has passed on of a task's tokens."""

    sent: str = ""
    generation: tuple | None = None  # (run, attempt) of the tokens sent
    late: bool = False  # joined an answer under way (an idempotent replay): text comes at the end

    def take(self, event: dict) -> str | None:
        if self.generation is None and (event.get("index", 0) > 0 or event.get("offset")):
            self.late = True
        if self.late:
            return None
        self.generation = (event.get("run"), event.get("attempt"))
        text = event["text"]
        if event.get("resumed_at"):  # what a resumed run repeats was sent already
            text = text[max(0, len(self.sent) - event["offset"]) :]
        self.sent += text
        return text

    def restarts(self, event: dict) -> bool:
        """Does `event` mean the answer starts over (what was sent is not part of it)? Also a
        resumed run's token whose text went another way than the text already sent."""
        if restarted(event, self.generation, self.sent):
            return True
        if self.generation is None or self.late or not event.get("resumed_at"):
            return False
        return event["type"] == "task.token" and not continues(event, self.sent)

    def batch(self, events: list[dict]) -> tuple[str, str | None]:
        """Events that piled up while the relay was busy -> (their text, in one chunk; what
        ended it: "restarted", "final" or None). One chunk is one write and one JSON encoding
        for the web, and one parse for the client, whatever the number of events."""
        texts = []
        for event in events:
            if self.restarts(event):
                return "".join(texts), "restarted"
            if event["type"] == "task.token" and (text := self.take(event)):
                texts.append(text)
            elif event["type"] in FINAL_EVENTS:
                return "".join(texts), "final"
        return "".join(texts), None
