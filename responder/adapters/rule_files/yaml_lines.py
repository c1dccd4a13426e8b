"""Read YAML files and documents with PyYAML's safe loader, keeping the line of every key.

Each document comes with a map from paths (`("steps", 0, "with", "url")`, the same shape
as a pydantic error `loc`) to 1-based line numbers, so that a problem found later in the
constructed data can be reported at `file:line`. Duplicate keys, which YAML loaders silently
collapse, are reported too.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

PathPart = str | int
Path = tuple[PathPart, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlSyntaxError(Exception):
    """A document that is not valid YAML (or uses a tag the safe loader refuses)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True, slots=True)
class DuplicateKey:
    """A mapping key written twice; YAML keeps only the last value."""

    path: Path
    line: int
    first_line: int


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One YAML document: its data, where it starts, and the line of every key and item."""

    data: Any
    line: int
    lines: Mapping[Path, int] = field(default_factory=dict)
    duplicates: tuple[DuplicateKey, ...] = ()

    def line_of(self, path: Sequence[Any]) -> int:
        """The line of `path`, or of its longest prefix that has one, or of the document."""
        parts = tuple(path)
        for end in range(len(parts), 0, -1):
            found = self.lines.get(parts[:end])
            if found is not None:
                return found
        return self.line


# libyaml's parser (C) when PyYAML was built with it: the same nodes, marks and safe
# construction, about 10x faster than the pure-Python one (10,000 rules load in seconds).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A safe loader that yields each document with the line of every key and item."""

    text = ""  # the source, for the line of a reader error

    def documents(self) -> Iterator[YamlDocument]:
        """Every document of the stream, in order; raises YamlSyntaxError at the first error."""
        try:
            while self.check_node():
                node = self.get_node()
                if node is None:
                    continue
                lines: dict[Path, int] = {}
                duplicates: list[DuplicateKey] = []
                _walk(node, (), lines, duplicates, set())
                data = self.construct_document(node)
                yield YamlDocument(data, _line(node), lines, tuple(duplicates))
        except yaml.MarkedYAMLError as exc:
            raise _syntax_error(exc, self.text) from exc
        except yaml.reader.ReaderError as exc:  # the C parser reports these while parsing
            raise _reader_error(self.text, exc) from exc
        except yaml.YAMLError as exc:
            raise YamlSyntaxError(1, f"invalid YAML: {exc}") from exc
        finally:
            self.dispose()


def read_documents(text: str) -> Iterator[YamlDocument]:
    """The documents of `text` (`---`-separated), each with its key lines."""
    try:
        loader = LineLoader(text)  # the Python reader refuses control characters here
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from exc
    loader.text = text
    return loader.documents()


def _reader_error(text: str, exc: yaml.reader.ReaderError) -> YamlSyntaxError:
    line = text[: exc.position].count("\n") + 1
    return YamlSyntaxError(
        line,
        f"character {exc.character:#x} is not allowed in YAML (control characters); "
        "remove it or quote it as an escape in a double-quoted string",
    )


def read_yaml_file(path: pathlib.Path) -> tuple[list[YamlDocument], list[tuple[int, str]]]:
    """The non-empty documents of a UTF-8 file, and its problems as (line, message).

    Documents before a syntax error are kept; line 0 means the file as a whole.
    """
    problems: list[tuple[int, str]] = []
    documents: list[YamlDocument] = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [(0, f"cannot read the file: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [], [(line, "the file is not UTF-8 text; save it as UTF-8")]
    try:
        for document in read_documents(text):
            problems.extend(
                (
                    dup.line,
                    f"duplicate key {format_path(dup.path)} (first at line {dup.first_line}); "
                    "YAML keeps only the last one, remove one of them",
                )
                for dup in document.duplicates
            )
            if document.data is not None:
                documents.append(document)
    except YamlSyntaxError as exc:
        problems.append((exc.line, exc.message))
    return documents, problems


def format_path(path: Sequence[PathPart]) -> str:
    """`("steps", 0, "with", "url")` as `steps[0].with.url` (`the document` when empty)."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return text.lstrip(".") or "the document"


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _walk(
    node: Node,
    path: Path,
    lines: dict[Path, int],
    duplicates: list[DuplicateKey],
    seen: set[int],
) -> None:
    # Aliases reuse node objects: walking each node once keeps "billion laughs" linear.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault((*path, index), _line(item))
            _walk(item, (*path, index), lines, duplicates, seen)
    elif isinstance(node, MappingNode):
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                continue
            key_path = (*path, key_node.value)
            if key_path in lines:
                duplicates.append(DuplicateKey(key_path, _line(key_node), lines[key_path]))
            else:
                lines[key_path] = _line(key_node)
            _walk(value_node, key_path, lines, duplicates, seen)
        for merged in merges:
            sources = merged.value if isinstance(merged, SequenceNode) else [merged]
            for source in sources:
                if isinstance(source, MappingNode):
                    _walk_merged(source, path, lines, duplicates, seen)


def _walk_merged(
    node: MappingNode,
    path: Path,
    lines: dict[Path, int],
    duplicates: list[DuplicateKey],
    seen: set[int],
) -> None:
    """Keys merged in with `<<: *anchor` point at the anchor, unless overridden."""
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode):
            key_path = (*path, key_node.value)
            lines.setdefault(key_path, _line(key_node))
            _walk(value_node, key_path, lines, duplicates, seen)


def _syntax_error(exc: yaml.MarkedYAMLError, source: str) -> YamlSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    line = int(mark.line) + 1 if mark is not None else 1
    context = exc.context
    if context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
        context = f"{context} started at line {exc.context_mark.line + 1}"
    parts = [part for part in (exc.problem, context) if part]
    message = "invalid YAML: " + ("; ".join(parts) if parts else str(exc))
    text = _mark_line(mark, source)
    if "{{" in text or "{%" in text:
        message += '; quote values that hold templates, e.g. key: "{{ labels.service }}"'
    elif exc.problem and "mapping values are not allowed" in exc.problem:
        message += "; check the indentation, and quote values that contain ': '"
    return YamlSyntaxError(line, message)


def _mark_line(mark: Any, source: str) -> str:
    """The source line a mark points at (C-parser marks carry no buffer of their own)."""
    if mark is None:
        return ""
    lines = source.splitlines()
    return lines[mark.line] if 0 <= mark.line < len(lines) else ""
