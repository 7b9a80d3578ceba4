"""The base of every config model, and a config section from plain values with one-line
errors (a config file's section, a command line's options)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fer_core import UsageError

# The json_schema_extra key that marks a field no stage result depends on; the result
# store's keys leave such fields out (fer_core.store.keys.RESULT_NEUTRAL, equal by a test).
RESULT_NEUTRAL = "result_neutral"


def neutral(default: Any, why: str) -> Any:
    """A field that shapes no result (how many threads do the same work, where the data
    lies when its content keys the stage): left out of every cache key, so changing it
    reruns nothing. Only for a field a test shows bitwise-equal outputs with it changed
    (tests/flows/test_neutral_settings.py)."""
    return Field(default, json_schema_extra={RESULT_NEUTRAL: True}, description=why)


class Config(BaseModel):
    """A frozen config: unknown keys are refused, a field is never reassigned (a changed
    copy is ``cfg.model_copy(update={...})``)."""

    # defer_build: a schema is built when a model is first validated, not when its module
    # loads, so that a bad command checks its config in about 0.1 s.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    def to_dict(self) -> dict:
        return self.model_dump()

    @classmethod
    def from_values(cls, values: Mapping[str, Any], where: str):
        """The model of ``values``; an unknown key or a bad value is a ValueError of one
        line that names ``where`` (e.g. ``prep.yaml [align]``), the key and the known keys."""
        if not isinstance(values, Mapping):
            raise UsageError(f"{where}: expected a mapping, got {type(values).__name__}")
        known = sorted(cls.model_fields)
        unknown = sorted(str(k) for k in set(values) - set(known))
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {unknown}; known: {known}")
        try:
            return cls.model_validate(dict(values))
        except ValidationError as e:
            raise UsageError(f"{where}: {one_line(e)}") from None


def one_line(error: ValidationError) -> str:
    """A pydantic error as one line: each bad field, what it should be and what it got."""
    out: dict[str, list[str]] = {}
    got: dict[str, str] = {}
    for e in error.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        msg = str(e["msg"]).removeprefix("Value error, ")
        if msg not in out.setdefault(field, []):
            out[field].append(msg)
        got.setdefault(field, repr(e.get("input")))
    return "; ".join(f"{field + ': ' if field else ''}{' or '.join(msgs)} (got {got[field]})"
                     for field, msgs in out.items())
