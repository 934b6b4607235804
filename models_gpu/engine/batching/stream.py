"""The answer's text as tokens arrive, with the same rules as the single-sequence engine:
whole UTF-8 characters only, cut at the first stop string, and streamed pieces that never
contain the start of a stop string that may still complete."""

import codecs


class TextStream:
    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self._hold = max((len(s) for s in self.stops), default=0)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.text, self.emitted, self.stopped = "", 0, False

    def push(self, piece: bytes) -> str:
        """Add one token's bytes; returns the text now safe to stream (maybe empty). After a
        stop string, `stopped` is set and the text ends before it."""
        self.text += self._decoder.decode(piece)
        cut = self._stop_at()
        if cut is not None:
            self.text, self.stopped = self.text[:cut], True
            return self._emit(len(self.text))
        return self._emit(len(self.text) - self._hold)

    def close(self, flush: bool) -> str:
        """The held-back tail; `flush` also decodes a cut-off UTF-8 sequence (at max_tokens)."""
        if flush:
            self.text += self._decoder.decode(b"", final=True)
        return self._emit(len(self.text))

    def _stop_at(self) -> int | None:
        window = self.text[max(0, self.emitted - self._hold) :]
        offset = len(self.text) - len(window)
        hits = [window.find(s) for s in self.stops if s in window]
        return offset + min(hits) if hits else None

    def _emit(self, upto: int) -> str:
        if upto <= self.emitted:
            return ""
        piece, self.emitted = self.text[self.emitted : upto], upto
        return piece
