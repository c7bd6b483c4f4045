"""The base every contract shares: strict types, no unknown fields, a schema version."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

SchemaVersion = Literal["1"]
SCHEMA_VERSION: SchemaVersion = "1"


class Part(BaseModel):
    """A piece of a message (nested inside a Contract): strict, closed, versioned by its parent."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Contract(Part):
    """A message between systems: unknown fields are refused and types are not coerced."""

    schema_version: SchemaVersion = SCHEMA_VERSION
