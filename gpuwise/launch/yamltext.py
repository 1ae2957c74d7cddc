"""YAML as a person reads it: scripts as literal blocks, no anchors, keys in the order given."""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types
    def ignore_aliases(self, data: Any) -> bool:
        return True  # the same dict twice is written out twice, not as &id001 / *id001


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(data: dict[str, Any], comments: list[str]) -> str:
    head = "".join(f"# {line}\n" for line in comments)
    return head + str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000))
