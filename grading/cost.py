"""Prices, token estimates and the spending budget.

Prices are USD per million tokens. The built-in table is a convenience snapshot (list prices
change: pass ``prices`` to be sure); local judges (``hf:``, ``openai-compatible:``) cost 0.
Each entry has batch prices too (``batch_input``, ``batch_output``: the providers' Batch APIs bill
half the online price); a price given without them gets half of its online price.
Estimates use ~4 characters per token for input and a typical grading reply length for
output; they are for ``--dry-run`` and the budget, never for reported usage.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Mapping

from .specs import JudgeConfigError, JudgeSpec

DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o": {"input": 2.50, "output": 10.00, "batch_input": 1.25, "batch_output": 5},
    "gpt-4o-mini": {"input": 0.15, "output": 0.60, "batch_input": 0.075, "batch_output": 0.3},
    "gpt-4.1": {"input": 2.00, "output": 8.00, "batch_input": 1, "batch_output": 4},
    "gpt-4.1-mini": {"input": 0.40, "output": 1.60, "batch_input": 0.2, "batch_output": 0.8},
    "gpt-4-turbo": {"input": 10.00, "output": 30.00, "batch_input": 5, "batch_output": 15},
    "gpt-4": {"input": 30.00, "output": 60.00, "batch_input": 15, "batch_output": 30},
    "claude-sonnet-4-6": {"input": 3.00, "output": 15.00, "batch_input": 1.5, "batch_output": 7.5},
    "claude-sonnet-4-5": {"input": 3.00, "output": 15.00, "batch_input": 1.5, "batch_output": 7.5},
    "claude-haiku-4-5": {"input": 1.00, "output": 5.00, "batch_input": 0.5, "batch_output": 2.5},
    "claude-3-5-sonnet": {"input": 3.00, "output": 15.00, "batch_input": 1.5, "batch_output": 7.5},
    "claude-3-5-haiku": {"input": 0.80, "output": 4.00, "batch_input": 0.4, "batch_output": 2},
    "claude-opus-4": {"input": 15.00, "output": 75.00, "batch_input": 7.5, "batch_output": 37.5},
}
BATCH_DISCOUNT = 0.5  # OpenAI Batch API and Anthropic Message Batches: half the online price
CHARS_PER_TOKEN = 4.0
TYPICAL_REPLY_TOKENS = 350  # a (k+3)-row table plus a short explanation


@dataclass(frozen=True)
class Price:
    input: float  # USD per million input tokens
    output: float
    batch_input: float | None = None  # through the provider's Batch API; None: BATCH_DISCOUNT of online
    batch_output: float | None = None

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1e6

    @property
    def batch(self) -> "Price":
        """The price of the same tokens sent through the provider's Batch API."""
        return Price(self.input * BATCH_DISCOUNT if self.batch_input is None else self.batch_input,
                     self.output * BATCH_DISCOUNT if self.batch_output is None else self.batch_output)

    @classmethod
    def from_entry(cls, p: Mapping[str, Any]) -> "Price":
        batch_in, batch_out = p.get("batch_input"), p.get("batch_output")
        return cls(float(p["input"]), float(p["output"]), None if batch_in is None else float(batch_in),
                   None if batch_out is None else float(batch_out))


def price_for(spec: JudgeSpec, prices: Mapping[str, Any] | None = None) -> Price | None:
    """The judge's price: ``prices`` as {"input", "output"} or {model: {...}}, then the table.

    Model names match exactly, then by the longest table name that prefixes them
    (``gpt-4o-2024-08-06`` -> ``gpt-4o``). None means unknown.
    """
    try:
        if prices and "input" in prices and "output" in prices:
            return Price.from_entry(prices)
        table = {**DEFAULT_PRICES, **{k: v for k, v in (prices or {}).items()}}
        if spec.model in table:
            return Price.from_entry(table[spec.model])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise JudgeConfigError(f"bad price table entry ({e}); expected {{input: $/Mtok, output: $/Mtok}} "
                               f"(optionally batch_input, batch_output)") from None
    if spec.provider in ("hf", "openai-compatible"):
        return Price(0.0, 0.0)
    prefixes = [m for m in table if spec.model.startswith(m)]
    if prefixes:
        return Price.from_entry(table[max(prefixes, key=len)])
    return None


def estimate_tokens(text: str) -> int:
    return max(1, int(len(text) / CHARS_PER_TOKEN + 0.5))


def message_tokens(messages: list[dict]) -> int:
    """Estimated prompt tokens of a chat (the contents; the few tokens of roles are left out)."""
    return estimate_tokens("".join(m.get("content") or "" for m in messages))


class Budget:
    """A spending cap shared by concurrent calls (and by several judges in one run).

    A call reserves its estimated cost before it is made; if that would pass the cap the call
    is not made. Its reservation is replaced by the real cost when usage comes back.
    """

    def __init__(self, max_cost: float | None):
        self.max_cost = max_cost
        self.spent = 0.0
        self.reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, estimate: float) -> bool:
        with self._lock:
            if self.max_cost is not None and self.spent + self.reserved + estimate > self.max_cost:
                return False
            self.reserved += estimate
            return True

    def settle(self, estimate: float, actual: float) -> None:
        with self._lock:
            self.reserved -= estimate
            self.spent += actual
