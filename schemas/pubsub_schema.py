"""Pub/Sub topic schemas generated from the pydantic contracts (`make schemas`): Protocol Buffer, proto2.

Pub/Sub validates a message against a topic's schema at publish and refuses what does not
conform (https://cloud.google.com/pubsub/docs/schemas). Schemas are Avro or Protocol Buffer.
Our billing messages are plain JSON, and with JSON encoding an Avro schema expects Avro's own
JSON encoding, in which a nullable field's value is wrapped by its type: a plan change would
have to carry `"new_plan": {"string": "STARTER"}`, and the `"new_plan": "STARTER"` every
billing system sends (docs/billing.md) would be refused. The Protocol Buffer JSON mapping takes the
message as it is: plain values, `null` for an absent field, names as declared. proto2 lets the
schema say which fields are required; unknown fields, wrong JSON types and values outside an
enum are refused as well. Value rules a schema cannot state (the event id's pattern, lengths)
stay with the consumer, which dead-letters what breaks them.
"""

from __future__ import annotations

import re
import types
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from pydantic import AwareDatetime, BaseModel

from schemas import events

PACKAGE = "onboarding"
# Models published on a topic with a schema, by the schema's file name.
TOPIC_MODELS: dict[str, type[BaseModel]] = {"BillingEvent.proto": events.BillingEvent}
_FIELD = descriptor_pb2.FieldDescriptorProto
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SchemaRefused(ValueError):
    """A message Pub/Sub would refuse at publish under the topic's schema."""


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without Annotated and None, and whether None was allowed."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [member for member in get_args(annotation) if member is not type(None)]
        if len(members) != 1:
            raise TypeError(f"no proto type for the union {annotation}")
        inner, _ = _unwrap(members[0])
        return inner, True
    return annotation, False


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def file_descriptor(model: type[BaseModel]) -> descriptor_pb2.FileDescriptorProto:
    """A proto2 file with one message: the model's fields in order, Literal-of-names fields as enums."""
    proto = descriptor_pb2.FileDescriptorProto(name=f"{model.__name__}.proto", package=PACKAGE, syntax="proto2")
    message = proto.message_type.add(name=model.__name__)
    for number, (name, field) in enumerate(model.model_fields.items(), start=1):
        annotation, nullable = _unwrap(field.annotation)
        label = _FIELD.LABEL_REQUIRED if field.is_required() and not nullable else _FIELD.LABEL_OPTIONAL
        entry = message.field.add(name=name, number=number, label=label)
        values = get_args(annotation) if get_origin(annotation) is Literal else ()
        if values and all(isinstance(value, str) and _IDENTIFIER.match(value) for value in values):
            enum = message.enum_type.add(name=_camel(name))
            for index, value in enumerate(values, start=1):
                enum.value.add(name=value, number=index)
            entry.type = _FIELD.TYPE_ENUM
            entry.type_name = f".{PACKAGE}.{model.__name__}.{enum.name}"
        elif annotation in (str, datetime, AwareDatetime) or values:
            entry.type = _FIELD.TYPE_STRING  # a datetime travels as RFC 3339 text
        else:
            raise TypeError(f"{model.__name__}.{name}: no proto type for {annotation}")
    return proto


def render(proto: descriptor_pb2.FileDescriptorProto, source: str) -> str:
    """The .proto text of a file built by `file_descriptor` (what deploy.sh hands to Pub/Sub)."""
    [message] = proto.message_type
    lines = [
        f"// Generated from {source} by `make schemas` (schemas/pubsub_schema.py); never edit by hand.",
        f'syntax = "{proto.syntax}";',
        "",
        f"package {proto.package};",
        "",
        f"message {message.name} {{",
    ]
    for enum in message.enum_type:
        lines.append(f"  enum {enum.name} {{")
        lines += [f"    {value.name} = {value.number};" for value in enum.value]
        lines.append("  }")
    for entry in message.field:
        label = "required" if entry.label == _FIELD.LABEL_REQUIRED else "optional"
        kind = entry.type_name.rsplit(".", 1)[-1] if entry.type == _FIELD.TYPE_ENUM else "string"
        lines.append(f"  {label} {kind} {entry.name} = {entry.number};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def rendered() -> dict[str, str]:
    """File name to .proto text for every topic schema."""
    return {name: render(file_descriptor(model), f"schemas.events.{model.__name__}") for name, model in TOPIC_MODELS.items()}


def message_class(model: type[BaseModel]) -> type[Message]:
    """A protobuf class for the model's schema, to check messages as Pub/Sub does."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor(model))
    found: type[Message] = message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{model.__name__}"))
    return found


def check_json(model: type[BaseModel], data: bytes) -> None:
    """Raise SchemaRefused unless `data` is a JSON-encoded message of the model's schema."""
    parsed = message_class(model)()
    try:
        json_format.Parse(data, parsed)
    except json_format.ParseError as error:
        raise SchemaRefused(str(error)) from error
    if not parsed.IsInitialized():
        raise SchemaRefused(f"missing required fields: {', '.join(parsed.FindInitializationErrors())}")
