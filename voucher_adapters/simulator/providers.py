"""The simulated providers behind the switch and how a request is routed to one of them."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from voucher_core.errors import InvalidArgument
from voucher_core.policy import DUAL, ProviderProfile

__all__ = ["DEFAULT_PROVIDER", "Provider", "Routing"]


@attrs.frozen
class Provider:
    """A provider the switch forwards to. ``products`` lists the product ids it serves."""

    name: str
    profile: ProviderProfile
    products: frozenset[str] = frozenset()

    @property
    def institution(self) -> dict[str, str]:
        """The provider as an ``Institution``, for ``settlementEntity`` and ``receiver``."""
        return {"id": self.name, "name": self.name[:40]}


DEFAULT_PROVIDER = Provider("provider", DUAL)


@attrs.frozen
class Routing:
    """Which provider serves which product; anything else goes to the default provider."""

    providers: tuple[Provider, ...]
    default: Provider

    @classmethod
    def of(cls, providers: Sequence[Provider], default_provider: str | None) -> Routing:
        if not providers:
            raise InvalidArgument("the switch needs at least one provider")
        names = [provider.name for provider in providers]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"provider names must be unique, got {names}")
        by_name = {provider.name: provider for provider in providers}
        if default_provider is None:
            default = providers[0]
        elif default_provider in by_name:
            default = by_name[default_provider]
        else:
            raise InvalidArgument(f"no provider named {default_provider!r} among {names}")
        return cls(tuple(providers), default)

    def route(self, product_id: str | None) -> Provider:
        if product_id is not None:
            for provider in self.providers:
                if product_id in provider.products:
                    return provider
        return self.default

    def named(self, name: str) -> Provider:
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(name)
