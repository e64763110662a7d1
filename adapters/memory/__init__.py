"""In-process adapters: an advice queue in memory and a transport to the switch simulator."""

from adapters.memory.queue import AsyncInMemoryAdviceQueue, InMemoryAdviceQueue, ParkedAdvice
from adapters.memory.transport import AsyncInMemoryTransport, Exchange, InMemoryTransport

__all__ = [
    "AsyncInMemoryAdviceQueue",
    "AsyncInMemoryTransport",
    "Exchange",
    "InMemoryAdviceQueue",
    "InMemoryTransport",
    "ParkedAdvice",
]
