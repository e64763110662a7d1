"""The codec reads a valid document without cattrs' detailed validation, and a failed one
again with it: the two readers accept and refuse the same documents, and a refusal still
names every bad field by its wire path."""

from __future__ import annotations

import json
from typing import Any

import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st

from voucher_core.messages import ProvisionResponse, TenderAdvice
from voucher_core.wire import (
    MAY_NOT_BE_NULL,
    WireFormatError,
    _fast_reader,
    converter,
    from_json,
    strict_converter,
    to_json,
)


@given(data=st.data())
def test_both_readers_read_a_valid_message_alike(data: st.DataObject) -> None:
    message = data.draw(strategies.provision_responses())
    document = json.loads(to_json(message))
    pairs = ((_fast_reader(False, False), converter), (_fast_reader(True, False), strict_converter))
    for fast, detailed in pairs:
        read = fast.get_structure_hook(ProvisionResponse)(document, ProvisionResponse)
        assert read == detailed.get_structure_hook(ProvisionResponse)(document, ProvisionResponse)
        assert read == message


def response_document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(to_json(strategies.RESPONSE))
    return loaded


def test_a_reply_the_fast_reader_refuses_is_reported_field_by_field() -> None:
    document = response_document()
    del document["client"]["id"]
    document["amounts"] = {"requestAmount": {"amount": "1", "currency": "710"}}
    with pytest.raises(WireFormatError) as refused:
        from_json(ProvisionResponse, json.dumps(document))
    paths = {error.path: error.reason for error in refused.value.errors}
    assert paths["client.id"] == MAY_NOT_BE_NULL
    assert "amounts.requestAmount.amount" in paths


def test_an_unknown_field_is_refused_by_the_strict_reader_only() -> None:
    document = json.loads(to_json(strategies.CONFIRMATION))
    document["surprise"] = True
    content = json.dumps(document)
    assert from_json(TenderAdvice, content) == strategies.CONFIRMATION
    with pytest.raises(WireFormatError) as refused:
        from_json(TenderAdvice, content, strict=True)
    assert [error.path for error in refused.value.errors] == ["surprise"]
