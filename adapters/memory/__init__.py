"""In-process adapters: an advice queue and a journal in memory, a transport to the simulator."""

from adapters.memory.journal import AsyncInMemoryJournal, InMemoryJournal
from adapters.memory.queue import AsyncInMemoryAdviceQueue, InMemoryAdviceQueue, ParkedAdvice
from adapters.memory.transport import AsyncInMemoryTransport, Exchange, InMemoryTransport

__all__ = [
    "AsyncInMemoryAdviceQueue",
    "AsyncInMemoryJournal",
    "AsyncInMemoryTransport",
    "Exchange",
    "InMemoryAdviceQueue",
    "InMemoryJournal",
    "InMemoryTransport",
    "ParkedAdvice",
]
