"""Stores in memory: an advice queue and a journal, lost when the process ends."""

from voucher_adapters.stores.memory.journal import AsyncInMemoryJournal, InMemoryJournal
from voucher_adapters.stores.memory.queue import (
    AsyncInMemoryAdviceQueue,
    InMemoryAdviceQueue,
    ParkedAdvice,
)

__all__ = [
    "AsyncInMemoryAdviceQueue",
    "AsyncInMemoryJournal",
    "InMemoryAdviceQueue",
    "InMemoryJournal",
    "ParkedAdvice",
]
