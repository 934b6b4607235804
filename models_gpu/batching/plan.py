"""What one decode step carries: a token per generating sequence, then prompt chunks."""

from dataclasses import dataclass, field

from .context import Row


@dataclass
class Plan:
    rows: list[Row] = field(default_factory=list)
    outputs: list[tuple[int, object]] = field(default_factory=list)  # (batch index, sequence)
    fed: list[tuple[object, list[int]]] = field(default_factory=list)  # tokens each one gets
    prompt_tokens: int = 0

    def add_next_token(self, seq) -> None:
        self.outputs.append((len(self.rows), seq))
        self.rows.append(Row(seq.next_token, seq.n_past, seq.slot, True))
        self.fed.append((seq, [seq.next_token]))

    def add_prompt_chunk(self, seq, n: int) -> None:
        """The next n prompt tokens; the prompt's last token also asks for logits."""
        chunk, last = seq.pending[:n], n == len(seq.pending)
        for offset, token in enumerate(chunk):
            self.rows.append(Row(token, seq.n_past + offset, seq.slot, False))
        if last:
            self.rows[-1] = Row(chunk[-1], seq.n_past + n - 1, seq.slot, True)
            self.outputs.append((len(self.rows) - 1, seq))
        self.fed.append((seq, chunk))
        self.prompt_tokens += n

    @property
    def sequences(self) -> list:
        return list({id(seq): seq for seq, _ in self.fed}.values())


def plan_step(live: list, budget: int, n_batch: int) -> Plan:
    """`live` holds the slots' sequences by slot index (ordered ids keep the step one ubatch);
    prompts are fed oldest admission first, at most `budget` prompt tokens."""
    plan = Plan()
    for seq in live:
        if seq.next_token is not None:
            plan.add_next_token(seq)
    room = min(budget, n_batch - len(plan.rows))
    for seq in sorted((s for s in live if s.pending), key=lambda s: s.ticket):
        take = min(room, len(seq.pending))
        if take <= 0:
            break
        plan.add_prompt_chunk(seq, take)
        room -= take
    return plan
