"""The JSON codec: message objects to the SUV interface's JSON and back. No I/O.

Rules of the wire, and where each is enforced:

* Keys are camelCase, derived from the snake_case attribute name by the attrs hook
  factories below; no class lists its own renames, so a new field cannot be forgotten.
* An optional field that is ``None`` is left out of the JSON, never sent as ``null``.
* Arrays are tuples in Python. ``time`` and ``expiryDate`` are written in UTC with
  exactly three fractional digits and a ``Z``; any offset is accepted when reading, a
  time without one is not.
* Enum fields are typed ``Enum | str``: a value this version knows becomes the member, an
  unknown one stays a plain string. That is how a reply from a newer switch stays readable.
* A PIN is one of several shapes told apart by its ``type`` key; an unknown shape is kept
  as :class:`~voucher_core.messages.UnknownPin`.
* Reading is tolerant of values, strict of types. An enum value or a pattern the swagger
  does not allow is read as it came (a reply must stay readable, and a journal must give back
  what it took); only ``strict=True`` applies the checks on what a till sends
  (:mod:`voucher_core.messages.outgoing`), as a server reads requests.
* Reading is type-strict (a number is not a string, ``true`` is not ``1``), because
  silently coercing a malformed reply would hide a broken server.

Two converters share all of that. :data:`converter` ignores unknown fields, as a client must
when reading replies; :data:`strict_converter` reports them, as Electrum's servers do with
requests (and as the switch simulator should).

Decoding is bounded: a document nested deeper than :data:`MAX_DEPTH` arrays and objects is
refused before the recursive parser sees it (:func:`decode_json`), so a small hostile reply
cannot exhaust the interpreter's stack, and a parser failure of any kind is a
:class:`WireFormatError` like any other unreadable document.

Failures are collected, not raised one at a time: :class:`WireFormatError` lists every bad
field by its wire path (``tenders[0].amount.currency``), using the Java-style reason
``may not be null`` for a missing required field so a server can echo it verbatim.

Reading takes two passes only when it fails. A document is first structured by a twin of the
converter built without cattrs' detailed validation: the same hooks, the same checks, but no
bookkeeping of where each value sits, which makes reading a valid reply faster. Only if that
raises is the document read again by the detailed converter, whose errors carry every field
path; either both accept a document or both refuse it.

A message's hooks are generated once, the first time such a message is read or written.
"""

import json
import re
import types
import typing
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from typing import Any, Final, TypeVar, cast

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from voucher_core import messages
from voucher_core.errors import FieldError, WireFormatError
from voucher_core.messages import PinClear, PinEncrypted, PinHashed, PinType, UnknownPin
from voucher_core.messages._validators import (
    InvalidFieldTypeError,
    InvalidFieldValueError,
    wire_name,
)
from voucher_core.messages.outgoing import _TOLERANT

T = TypeVar("T")
_Hook = Callable[[Any, Any], Any]

MAY_NOT_BE_NULL: Final = "may not be null"
UNKNOWN_FIELD: Final = "unknown field"
# No SUV message nests deeper than about eight; a reply nested deeper than this is not one.
MAX_DEPTH: Final = 64

_NONE_TYPE: Final = type(None)
_PIN_TAGS: Final[dict[type[Any], str]] = {
    PinClear: PinType.CLEAR_PIN.value,
    PinEncrypted: PinType.ENCRYPTED_PIN.value,
    PinHashed: PinType.HASHED_PIN.value,
}
_PIN_CLASSES: Final = frozenset((*_PIN_TAGS, UnknownPin))
_JSON_TYPES: Final = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


# --- leaf hooks -------------------------------------------------------------------------


def _wrong_type(expected: str, value: object) -> InvalidFieldTypeError:
    if value is None:
        return InvalidFieldTypeError("", MAY_NOT_BE_NULL)
    found = _JSON_TYPES.get(type(value), type(value).__name__)
    return InvalidFieldTypeError("", f"must be {expected}, got {found}")


def _structure_str(value: Any, cls: Any) -> Any:
    if not isinstance(value, str):
        raise _wrong_type("a string", value)
    return value if cls is str else cls(value)


def _structure_str_or_number(value: Any, cls: Any) -> Any:
    # A number where a string belongs is read as its JSON text, as Jackson's default coercion
    # does; a boolean, an array or an object is still refused.
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = json.dumps(value)
    return _structure_str(value, cls)


def _structure_int(value: Any, _: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _wrong_type("an integer", value)
    return value


def _structure_float(value: Any, _: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _wrong_type("a number", value)
    return float(value)


def _structure_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type("a boolean", value)
    return value


def _structure_datetime(value: Any, _: Any) -> datetime:
    if not isinstance(value, str):
        raise _wrong_type("an RFC 3339 date-time string", value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:  # RFC 3339 allows a lower-case "t" and "z"; fromisoformat does not.
            parsed = datetime.fromisoformat(value.upper())
        except ValueError:
            reason = f"must be an RFC 3339 date-time, got {value[:40]!r}"
            raise InvalidFieldValueError("", reason) from None
    if parsed.utcoffset() is None:
        raise InvalidFieldValueError("", f"must carry a UTC offset or Z, got {value[:40]!r}")
    return parsed


def _unstructure_datetime(value: datetime) -> str:
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def _enum_or_str_hook(enum_cls: type[Enum]) -> _Hook:
    members = {member.value: member for member in enum_cls}

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, str):
            raise _wrong_type("a string", value)
        return members.get(value, value)

    return structure


def _unstructure_enum_or_str(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _structure_unknown_pin(value: Any, _: Any) -> UnknownPin:
    if not isinstance(value, dict):
        raise _wrong_type("an object", value)
    tag = value.get("type")
    if not isinstance(tag, str):
        raise InvalidFieldTypeError("type", _wrong_type("a string", tag).reason)
    return UnknownPin(type=tag, fields={k: x for k, x in value.items() if k != "type"})


def _unstructure_unknown_pin(value: UnknownPin) -> dict[str, Any]:
    return {"type": value.type, **value.fields}


# --- hook factories ---------------------------------------------------------------------


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_str_dict(tp: Any) -> bool:
    return typing.get_origin(tp) is dict and typing.get_args(tp)[:1] == (str,)


def _renames(cls: type[Any]) -> dict[str, Any]:
    return {a.name: override(rename=wire_name(a.name)) for a in attrs.fields(cls)}


def _located(exc: Exception, note: str) -> Exception:
    exc.add_note(note)
    return exc


def _collect_items(items: Iterable[tuple[Any, Any]], hook: _Hook, item_type: Any) -> list[Any]:
    """Structure every item, gathering all failures with their index or key."""
    out, errors = [], []
    for index, item in items:
        try:
            out.append(hook(item, item_type))
        except Exception as exc:  # every failure is reported with its index, none is lost
            errors.append(_located(exc, IterableValidationNote(f"@ {index!r}", index, item_type)))
    if errors:
        raise IterableValidationError("While structuring an array", errors, list)
    return out


class _HookFactories:
    """Hook factories bound to one converter; each runs once per type, at import."""

    def __init__(self, conv: cattrs.Converter) -> None:
        self.conv = conv
        self.pin_classes = {tag: cls for cls, tag in _PIN_TAGS.items()}

    def structure_attrs(self, cls: type[Any]) -> _Hook:
        generated = make_dict_structure_fn(cls, self.conv, **_renames(cls))
        tag = _PIN_TAGS.get(cls)

        def structure(value: Any, _: Any) -> Any:
            if not isinstance(value, dict):
                raise _wrong_type("an object", value)
            if tag is not None and "type" in value:  # the discriminator is not a field
                if value["type"] != tag:
                    raise InvalidFieldValueError("type", f"must be {tag!r}, got {value['type']!r}")
                value = {k: x for k, x in value.items() if k != "type"}
            return generated(value, cls)

        return structure

    def unstructure_attrs(self, cls: type[Any]) -> Callable[[Any], Any]:
        generated = make_dict_unstructure_fn(
            cls, self.conv, _cattrs_omit_if_default=True, **_renames(cls)
        )
        tag = _PIN_TAGS.get(cls)
        if tag is None:
            return generated
        return lambda value: {"type": tag, **generated(value)}

    def structure_pin(self, value: Any, _: Any) -> Any:
        tag = value.get("type") if isinstance(value, dict) else None
        if isinstance(tag, str):
            tagged = self.pin_classes.get(tag)
            if tagged is not None:
                return self.conv.get_structure_hook(tagged)(value, tagged)
        return _structure_unknown_pin(value, UnknownPin)

    def structure_union(self, tp: Any) -> _Hook:
        args = typing.get_args(tp)
        members = tuple(a for a in args if a is not _NONE_TYPE)
        inner: _Hook
        if frozenset(members) == _PIN_CLASSES:
            inner = self.structure_pin
        elif len(members) == 2 and str in members:
            inner = _enum_or_str_hook(next(a for a in members if a is not str))
        elif len(members) == 1:
            inner = self.conv.get_structure_hook(members[0])
        else:
            raise TypeError(f"no wire mapping for {tp!r}")
        if _NONE_TYPE not in args:
            return inner
        only = members[0]
        return lambda value, _: None if value is None else inner(value, only)

    def unstructure_union(self, tp: Any) -> Callable[[Any], Any]:
        members = tuple(a for a in typing.get_args(tp) if a is not _NONE_TYPE)
        inner: Callable[[Any], Any]
        if frozenset(members) == _PIN_CLASSES:
            hooks = {cls: self.conv.get_unstructure_hook(cls) for cls in members}
            inner = lambda value: hooks[value.__class__](value)  # noqa: E731
        elif len(members) == 2 and str in members:
            inner = _unstructure_enum_or_str
        elif len(members) == 1:
            inner = self.conv.get_unstructure_hook(members[0])
        else:
            raise TypeError(f"no wire mapping for {tp!r}")
        return lambda value: None if value is None else inner(value)

    def structure_tuple(self, tp: Any) -> _Hook:
        item_type = typing.get_args(tp)[0]
        hook = self.conv.get_structure_hook(item_type)

        def structure(value: Any, _: Any) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise _wrong_type("an array", value)
            try:
                return tuple([hook(item, item_type) for item in value])
            except Exception:  # redone item by item, to report every bad one
                return tuple(_collect_items(enumerate(value), hook, item_type))

        return structure

    def unstructure_tuple(self, tp: Any) -> Callable[[Any], Any]:
        hook = self.conv.get_unstructure_hook(typing.get_args(tp)[0])
        return lambda value: [hook(item) for item in value]

    def structure_dict(self, tp: Any) -> _Hook:
        value_type = typing.get_args(tp)[1]
        hook = self.conv.get_structure_hook(value_type)

        def structure(value: Any, _: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise _wrong_type("an object", value)
            if value_type is Any:  # free-form JSON, such as ErrorDetail.detailMessage
                return dict(value)
            return dict(zip(value, _collect_items(value.items(), hook, value_type), strict=True))

        return structure

    def unstructure_dict(self, tp: Any) -> Callable[[Any], Any]:
        hook = self.conv.get_unstructure_hook(typing.get_args(tp)[1])
        return lambda value: {key: hook(item) for key, item in value.items()}


def make_converter(
    *, strict: bool, numbers_as_strings: bool = False, detailed: bool = True
) -> cattrs.Converter:
    """Build the codec; *strict* makes unknown fields an error instead of ignoring them.

    With *numbers_as_strings* a JSON number is read where the model has a string
    (``"currency": 710`` reads as ``"710"``), as Electrum's Java servers read requests.
    ``detailed=False`` builds the fast reader of valid documents: its failures do not say
    where (:func:`from_wire` reads a failed document again with the detailed one).
    """
    conv = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=strict)
    conv.register_structure_hook(
        str, _structure_str_or_number if numbers_as_strings else _structure_str
    )
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, _unstructure_datetime)
    conv.register_structure_hook(UnknownPin, _structure_unknown_pin)
    conv.register_unstructure_hook(UnknownPin, _unstructure_unknown_pin)

    factories = _HookFactories(conv)
    for predicate, structure, unstructure in (
        (attrs.has, factories.structure_attrs, factories.unstructure_attrs),
        (_is_union, factories.structure_union, factories.unstructure_union),
        (_is_homogeneous_tuple, factories.structure_tuple, factories.unstructure_tuple),
        (_is_str_dict, factories.structure_dict, factories.unstructure_dict),
    ):
        conv.register_structure_hook_factory(predicate, structure)
        conv.register_unstructure_hook_factory(predicate, unstructure)
    # Each message's hooks are generated the first time one is read or written, not here:
    # generating them all for both converters was most of `import voucher_core`.
    return conv


converter: Final = make_converter(strict=False)
strict_converter: Final = make_converter(strict=True)


@cache
def _coercing_converter() -> cattrs.Converter:
    return make_converter(strict=True, numbers_as_strings=True)


@cache
def _fast_reader(strict: bool, numbers_as_strings: bool) -> cattrs.Converter:
    """The twin that reads valid documents fast (made on first use)."""
    return make_converter(strict=strict, numbers_as_strings=numbers_as_strings, detailed=False)


# --- error paths ------------------------------------------------------------------------


def _join(path: str, field: str) -> str:
    if not field:
        return path
    return f"{path}.{field}" if path else field


def _note_of(exc: BaseException, kind: type[str]) -> Any:
    for note in getattr(exc, "__notes__", ()):
        if note.__class__ is kind:
            return note
    return None


def _field_errors(exc: BaseException, path: str, out: list[FieldError]) -> None:
    if isinstance(exc, ClassValidationError):
        for sub in exc.exceptions:
            note = _note_of(sub, AttributeValidationNote)
            _field_errors(sub, path if note is None else _join(path, wire_name(note.name)), out)
    elif isinstance(exc, IterableValidationError):
        for sub in exc.exceptions:
            note = _note_of(sub, IterableValidationNote)
            _field_errors(sub, path if note is None else f"{path}[{note.index}]", out)
    elif isinstance(exc, ForbiddenExtraKeysError):
        out.extend(FieldError(_join(path, key), UNKNOWN_FIELD) for key in sorted(exc.extra_fields))
    elif isinstance(exc, InvalidFieldValueError | InvalidFieldTypeError):
        out.append(FieldError(_join(path, exc.field), exc.reason))
    elif isinstance(exc, KeyError):  # the generated hooks index the input by wire key
        out.append(FieldError(path, MAY_NOT_BE_NULL))
    else:
        out.append(FieldError(path, str(exc) or type(exc).__name__))


# --- public API -------------------------------------------------------------------------


def to_wire(message: Any) -> dict[str, Any]:
    """The message as a JSON-ready dict: camelCase keys, unset fields left out.

    >>> from voucher_core.messages import LedgerAmount
    >>> to_wire(LedgerAmount(amount=79995, currency="710"))
    {'amount': 79995, 'currency': '710'}
    """
    return cast(dict[str, Any], converter.get_unstructure_hook(message.__class__)(message))


# The JSON of the envelopes serialised last, by identity. A sale's request and advice are
# serialised by the journal, the queue and the transport alike; they are frozen, so the
# bytes made the first time stand. Holding the message keeps its id from being reused.
_RECENT: dict[int, tuple[Any, bytes]] = {}
_RECENT_LIMIT = 256
_ENVELOPES = frozenset({messages.ProvisionRequest, messages.TenderAdvice, messages.BasicReversal})


def to_json(message: Any) -> bytes:
    """The message as compact JSON, encoded as UTF-8."""
    key = id(message)
    kept = _RECENT.get(key)
    if kept is not None and kept[0] is message:
        return kept[1]
    # ASCII-only output is valid UTF-8 and survives a lone surrogate that came in escaped.
    body = json.dumps(to_wire(message), separators=(",", ":"), allow_nan=False).encode()
    if type(message) in _ENVELOPES:
        if len(_RECENT) >= _RECENT_LIMIT:
            _RECENT.pop(next(iter(_RECENT), key), None)
        _RECENT[key] = (message, body)
    return body


def from_wire(
    cls: type[T], data: Any, *, strict: bool = False, numbers_as_strings: bool = False
) -> T:
    """Read a decoded JSON document as *cls*; raise :class:`WireFormatError` if it is not one.

    Unknown fields are ignored unless *strict*. *numbers_as_strings* (only with *strict*)
    reads a number where the model has a string, as Electrum's Java servers do.
    """
    if numbers_as_strings and not strict:
        raise ValueError("numbers_as_strings reads as a server does: it needs strict=True")
    # Tolerant reading turns the checks on what the till sends off (messages.outgoing).
    token = None if strict else _TOLERANT.set(True)
    try:
        try:
            fast = _fast_reader(strict, numbers_as_strings).get_structure_hook(cls)
            return cast(T, fast(data, cls))
        except Exception:  # read again below, to say where it failed
            pass
        chosen = _coercing_converter() if numbers_as_strings else None
        if chosen is None:
            chosen = strict_converter if strict else converter
        try:
            return cast(T, chosen.get_structure_hook(cls)(data, cls))
        except Exception as exc:
            errors: list[FieldError] = []
            _field_errors(exc, "", errors)
            raise WireFormatError(cls.__name__, errors) from exc
    finally:
        if token is not None:
            _TOLERANT.reset(token)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# Made once: ``json.loads`` with any keyword builds a new decoder (and scanner) every call.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


# A whole string (escapes included), a bracket, or a quote that opens a string never closed.
_TOKEN: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|"', re.DOTALL)


def _deeper_than(text: str, limit: int) -> bool:
    """Whether arrays and objects in *text* nest deeper than *limit*; strings are skipped.

    Linear in the length of *text*. A string left open ends the scan: the parser refuses
    that text anyway.
    """
    if text.count("[") + text.count("{") <= limit:  # the usual case, decided at C speed
        return False
    depth = 0
    for token in _TOKEN.finditer(text):
        first = text[token.start()]
        if first == '"':
            if token.end() - token.start() == 1:
                return False
        elif first in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def decode_json(content: bytes | str) -> Any:
    """Decode JSON *content* (UTF-8, -16 or -32 bytes, or text), bounded in nesting.

    Raises :class:`ValueError` for anything that is not such a document: bad syntax, a bad
    encoding, ``NaN`` or ``Infinity``, or arrays and objects nested deeper than
    :data:`MAX_DEPTH`. Never :class:`RecursionError`, however deep the input.
    """
    if isinstance(content, bytes | bytearray):
        content = bytes(content).decode(json.detect_encoding(content), "surrogatepass")
    if not isinstance(content, str):
        raise ValueError(f"JSON must be bytes or text, got {type(content).__name__}")
    if _deeper_than(content, MAX_DEPTH):
        raise ValueError(f"nested deeper than {MAX_DEPTH} arrays and objects")
    try:
        return _DECODER.decode(content)
    except RecursionError:  # not reachable within MAX_DEPTH unless the caller's stack is full
        raise ValueError("nested too deep for the parser") from None


def from_json(cls: type[T], content: bytes | str, *, strict: bool = False) -> T:
    """Decode JSON *content* and read it as *cls*; every failure is a :class:`WireFormatError`."""
    try:
        data = decode_json(content)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        error = FieldError("", f"could not be decoded as JSON ({exc})")
        raise WireFormatError(cls.__name__, [error]) from exc
    return from_wire(cls, data, strict=strict)


__all__ = [
    "MAX_DEPTH",
    "MAY_NOT_BE_NULL",
    "UNKNOWN_FIELD",
    "FieldError",
    "WireFormatError",
    "converter",
    "decode_json",
    "from_json",
    "from_wire",
    "make_converter",
    "strict_converter",
    "to_json",
    "to_wire",
]
