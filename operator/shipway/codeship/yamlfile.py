"""Reading Codeship's YAML and JSON files the way its (Go) parser sees them.

Two differences from a plain ``yaml.safe_load`` matter for a faithful conversion:

* a number keeps the text it was written with, so ``tag: 1.10``, ``name: 01`` or
  ``PYTHON_VERSION: 3.10`` stay ``"1.10"``, ``"01"`` and ``"3.10"`` where a string is expected
  (``safe_load`` would turn them into ``1.1``, ``1`` and ``3.1``);
* a key given twice in one mapping is an error instead of silently taking the last value.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from shipway.compiler.limits import TooDeepToReadError, read_deep


class RawInt(int):
    """An integer that remembers how it was written."""

    raw: str

    def __new__(cls, value: int, raw: str) -> RawInt:
        obj = super().__new__(cls, value)
        obj.raw = raw
        return obj


class RawFloat(float):
    """A float that remembers how it was written."""

    raw: str

    def __new__(cls, value: float, raw: str) -> RawFloat:
        obj = super().__new__(cls, value)
        obj.raw = raw
        return obj


class FileError(Exception):
    """A file that cannot be read or parsed; the message names the file and the line."""


class _Loader(yaml.SafeLoader):
    pass


def _int(loader: yaml.SafeLoader, node: yaml.Node) -> RawInt:
    assert isinstance(node, yaml.ScalarNode)
    return RawInt(yaml.SafeLoader.construct_yaml_int(loader, node), node.value)


def _float(loader: yaml.SafeLoader, node: yaml.Node) -> RawFloat:
    assert isinstance(node, yaml.ScalarNode)
    return RawFloat(yaml.SafeLoader.construct_yaml_float(loader, node), node.value)


def _mapping(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    assert isinstance(node, yaml.MappingNode)
    seen: set[str] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key_node.value!r} twice",
                    key_node.start_mark,
                )
            seen.add(key_node.value)
    loader.flatten_mapping(node)  # "<<: *anchor" merge keys first; explicit keys win
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            # {{ .Branch }} unquoted is a map whose key is a map: Codeship's Go parser refuses
            # it too; say so instead of failing on an unhashable key
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                "found a map or list used as a key (an unquoted {{ template }}? quote it)",
                key_node.start_mark,
            )
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, int | float):
            key = key_node.value  # a service called 01 or 2: names are text
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor("tag:yaml.org,2002:int", _int)
_Loader.add_constructor("tag:yaml.org,2002:float", _float)
_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)


def parse_yaml(text: str, source: str) -> Any:
    """One YAML document; an empty file is None."""
    try:
        return read_deep(lambda: yaml.load(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        raise FileError(f"{source}: not valid YAML: {exc}") from None
    except TooDeepToReadError as exc:
        raise FileError(f"{source}: {exc}") from None


def parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileError(f"{source}: not valid JSON: {exc}") from None


def parse_file_text(text: str, source: str) -> Any:
    """JSON for ``*.json`` files, YAML for everything else."""
    if source.endswith(".json"):
        return parse_json(text, source)
    return parse_yaml(text, source)


def text_of(value: Any) -> str:
    """A scalar as the text the user wrote (numbers keep their digits, booleans are lower-case)."""
    if isinstance(value, RawInt | RawFloat):
        return value.raw
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def plain(value: Any) -> Any:
    """A deep copy with only plain dict/list/str/int/float/bool/None (safe to dump)."""
    if isinstance(value, dict):
        return {text_of(k) if not isinstance(k, str) else k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or type(value) in (str, int, float):
        return value
    if isinstance(value, RawInt):
        return int(value)
    if isinstance(value, RawFloat):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
