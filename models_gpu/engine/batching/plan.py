"""What one decode step carries: a token per generating sequence, then prompt chunks.

The rows are kept as parallel lists (token, position, sequence id, wants output) that the
context copies into the llama_batch arrays in one numpy assignment each.
"""

from dataclasses import dataclass, field


@dataclass
class Plan:
    tokens: list[int] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    seq_ids: list[int] = field(default_factory=list)
    want: list[int] = field(default_factory=list)  # 1 where the step outputs (samples)
    outputs: list[tuple[int, object]] = field(default_factory=list)  # (batch index, sequence)
    fed: list[tuple[object, list[int]]] = field(default_factory=list)  # tokens each one gets
    prompt_tokens: int = 0

    @property
    def n_rows(self) -> int:
        return len(self.tokens)

    def add_next_token(self, seq) -> None:
        self.outputs.append((len(self.tokens), seq))
        self.tokens.append(seq.next_token)
        self.pos.append(seq.n_past)
        self.seq_ids.append(seq.slot)
        self.want.append(1)
        self.fed.append((seq, [seq.next_token]))

    def add_prompt_chunk(self, seq, n: int) -> None:
        """The next n prompt tokens; the prompt's last token also asks for the output."""
        chunk, last = seq.pending[:n], n == len(seq.pending)
        self.tokens.extend(chunk)
        self.pos.extend(range(seq.n_past, seq.n_past + n))
        self.seq_ids.extend([seq.slot] * n)
        self.want.extend([0] * n)
        if last:
            self.want[-1] = 1
            self.outputs.append((len(self.tokens) - 1, seq))
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
    room = min(budget, n_batch - plan.n_rows)
    for seq in sorted((s for s in live if s.pending), key=lambda s: s.ticket):
        take = min(room, len(seq.pending))
        if take <= 0:
            break
        plan.add_prompt_chunk(seq, take)
        room -= take
    return plan
