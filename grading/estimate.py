"""The one estimator of calls, tokens and cost (``--dry-run`` of skillmix-grade, skillmix-datagen
and skillmix-pipeline; nothing is called).

Callers describe prompts: its estimated tokens, how many samples of it are wanted, how many of
those the cache already holds, how many samples one request carries (the API's ``n``: the
prompt is sent and billed once a request) and a typical reply length. :class:`CallEstimate`
adds them up and prices them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .cost import Price


@dataclass
class CallEstimate:
    calls: int = 0  # requests that would be sent
    replies: int = 0  # samples asked for (the uncached ones)
    cached: int = 0  # samples already in the cache: no call
    submitted: int = 0  # samples in batches an earlier run submitted (a later run collects them): no call
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, prompt_tokens: int, samples: int = 1, *, reply_tokens: int, per_request: int = 1,
            cached: int = 0, submitted: int = 0, times: int = 1) -> "CallEstimate":
        """``samples`` samples of one prompt (``cached`` of them in the cache, ``submitted`` in a
        pending batch), ``times`` over."""
        missing = max(0, samples - cached - submitted)
        requests = -(-missing // max(1, per_request))
        self.calls += times * requests
        self.replies += times * missing
        self.cached += times * cached
        self.submitted += times * submitted
        self.input_tokens += times * requests * prompt_tokens
        self.output_tokens += times * missing * reply_tokens
        return self

    def __iadd__(self, other: "CallEstimate") -> "CallEstimate":
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def cost(self, price: Price | None) -> float | None:
        return None if price is None else price.cost(self.input_tokens, self.output_tokens)

    def to_dict(self, price: Price | None, prefix: str = "", digits: int = 4) -> dict:
        """Counts, and the cost online and through the provider's Batch API side by side."""
        cost, batch = self.cost(price), self.cost(price.batch if price else None)
        return {f"{prefix}calls": self.calls, f"{prefix}replies": self.replies, f"{prefix}cached": self.cached,
                f"{prefix}in_submitted_batches": self.submitted,
                f"{prefix}input_tokens_est": self.input_tokens, f"{prefix}output_tokens_est": self.output_tokens,
                f"{prefix}cost_est": None if cost is None else round(cost, digits),
                f"{prefix}batch_cost_est": None if batch is None else round(batch, digits)}
