"""YAML text → plain Python values, remembering the line and column of every key and value.

PyYAML's loaders drop positions and silently keep the last of two equal keys, so this module
composes the node graph with libyaml and builds the values itself: every value gets a mark, a
repeated key becomes an error, and YAML syntax errors become diagnostics at their mark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from drflow.spec.diagnostics import Diagnostic, Severity, SpecError

Loc = tuple[str | int, ...]
Position = tuple[int, int]
MISSING: Any = object()  # what Source.get returns for a location that is not in the document

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_TOO_DEEP = "a spec needs only a few levels: look for a runaway run of '[' or '{', or an alias inside itself"
# Values built again through aliases (*name): this stops alias bombs ("billion laughs"). Values written
# out in the file are bounded by its size and never count, so a large honest spec is never refused.
MAX_ALIAS_VALUES = 100_000
# A date and a time of day with no UTC offset: an instant nobody can place (which timezone?).
_NAIVE_TIME = re.compile(r"^\s*(\d{4}-\d{1,2}-\d{1,2})(?:[Tt]|[ \t]+)(\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?)\s*$")

_SYNTAX_HINTS = {
    "found character that cannot start any token": "indent with spaces: YAML does not allow tab characters",
    "found a tab character that violates indentation": "indent with spaces: YAML does not allow tabs",
    "mapping values are not allowed in this context": "put text containing ': ' in quotes "
    "(query: 'select …'), or fix the indentation of this line",
    "could not find expected ':'": "write each entry as 'key: value' and check this line's indentation",
    "found undefined alias": "define the anchor (&name) before using it (*name)",
    "but found another document": "a spec file holds one YAML document: remove the extra '---'",
    "did not find expected key": "keys of one mapping must start in the same column",
    "did not find expected '-' indicator": "items of one list must all start with '-' in the same column",
    "found unexpected end of stream": "close the quote or bracket opened earlier",
}


@dataclass
class Source:
    """A parsed spec file: its values, and where each key and value is written."""

    file: str
    data: Any
    # Nodes rather than positions: most are never asked for, so their marks are read lazily.
    values: dict[Loc, Node] = field(default_factory=dict)
    keys: dict[Loc, Node] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def position(self, loc: Loc, *, key: bool = False) -> Position:
        """Where `loc` is written: its key (for mapping entries, when key=True) or its value.

        Falls back to the nearest enclosing value, so a missing key points at its parent mapping.
        """
        if key and loc in self.keys:
            return _position(self.keys[loc])
        for end in range(len(loc), -1, -1):
            node = self.values.get(loc[:end])
            if node is not None:
                return _position(node)
        return (1, 1)

    def get(self, loc: Loc) -> Any:
        """The raw value at `loc`, or `MISSING`."""
        value = self.data
        for part in loc:
            in_list = isinstance(part, int) and isinstance(value, list) and 0 <= part < len(value)
            if not (in_list or (isinstance(part, str) and isinstance(value, dict) and part in value)):
                return MISSING
            value = value[part]
        return value

    def display(self, loc: Loc) -> str:
        """`components[user-database].backups[daily-full].schedule`: list items by name, else by index."""
        text = ""
        value = self.data
        for part in loc:
            if isinstance(part, int):
                item = value[part] if isinstance(value, list) and 0 <= part < len(value) else None
                name = item.get("name") if isinstance(item, dict) else None
                text += f"[{name}]" if isinstance(name, str) and name else f"[{part}]"
                value = item
            else:
                text += f".{part}" if text else str(part)
                value = value.get(part) if isinstance(value, dict) else None
        return text

    def diagnostic(
        self, loc: Loc, message: str, hint: str = "", *, key: bool = False, severity: Severity = "error"
    ) -> Diagnostic:
        line, col = self.position(loc, key=key)
        return Diagnostic(self.file, line, col, self.display(loc), message, hint, severity)


def parse_source(text: str, file: str) -> Source:
    """Parse one YAML document. Raises SpecError for text that is not YAML (one diagnostic at its mark)."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_syntax_diagnostic(exc, file, text)], file) from None
    except yaml.reader.ReaderError as exc:
        line, col = _offset_position(text, exc.position)
        character = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        message = f"the control character {character!r} is not allowed in YAML"
        hint = "remove it, or write it escaped in double quotes"
        raise SpecError([Diagnostic(file, line, col, "", message, hint)]) from None
    except RecursionError:
        raise SpecError([Diagnostic(file, 1, 1, "", "the document is nested too deeply", _TOO_DEEP)]) from None
    if root is None:
        message = "the file holds no YAML document"
        raise SpecError([Diagnostic(file, 1, 1, "", message, "a spec starts with 'version: 1'")])
    builder = _Builder(file)
    try:
        data = builder.build(root, ())
    except _TooLarge as exc:
        line, col = _position(exc.node)
        message = (
            f"the document expands to more than {MAX_ALIAS_VALUES} repeated values through aliases (*name), "
            "the limit that stops alias bombs; the value repeated when the limit was passed is defined here"
        )
        hint = "write the values out, or use fewer nested aliases: a spec rarely needs an alias inside an alias"
        raise SpecError([Diagnostic(file, line, col, "", message, hint)]) from None
    except RecursionError:
        raise SpecError([Diagnostic(file, 1, 1, "", "the document is nested too deeply", _TOO_DEEP)]) from None
    source = Source(file, data, builder.values, builder.keys)
    for loc, node, message, hint in builder.problems:
        line, col = _position(node)
        source.diagnostics.append(Diagnostic(file, line, col, source.display(loc), message, hint))
    return source


class _TooLarge(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[Loc, Node] = {}
        self.keys: dict[Loc, Node] = {}
        self.problems: list[tuple[Loc, Node, str, str]] = []  # diagnostics once the values exist
        self.built: set[int] = set()  # nodes built once; building one again is an alias expansion
        self.repeated = 0
        self.alias: Node | None = None  # the alias being expanded (its first node), for the error
        self.active: set[int] = set()  # nodes being built: an alias back to one of them is a cycle
        self.constructor = SafeConstructor()

    def error(self, node: Node, loc: Loc, message: str, hint: str) -> None:
        self.problems.append((loc, node, message, hint))

    def build(self, node: Node, loc: Loc) -> Any:
        if id(node) in self.built:
            self.repeated += 1
            if self.repeated > MAX_ALIAS_VALUES:
                raise _TooLarge(node)
        else:
            self.built.add(id(node))
        self.values[loc] = node
        if isinstance(node, ScalarNode):
            return self.scalar(node, loc)
        if id(node) in self.active:
            self.error(node, loc, "this alias refers to a value that contains it", "remove the recursive alias")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(child, (*loc, index)) for index, child in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            return self.mapping(node, loc)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode, loc: Loc) -> Any:
        if node.tag == _STR_TAG or node.tag == _TIMESTAMP_TAG:
            # Times stay text as written (no spec field is a datetime; free-form maps stay JSON);
            # one without a timezone is refused wherever it is written.
            if node.value[:1].isdigit() or node.value[:1].isspace():
                self.naive_time(node, loc)
            return node.value
        construct = SafeConstructor.yaml_constructors.get(node.tag)
        if construct is None:
            self.error(node, loc, f"unknown YAML tag {node.tag!r}", "drflow specs use plain YAML values without tags")
            return node.value
        try:
            return construct(self.constructor, node)
        except (ConstructorError, ValueError, TypeError):
            kind = node.tag.rsplit(":", 1)[-1]
            hint = f"remove the '!!{kind}' tag or fix the value"
            self.error(node, loc, f"{node.value!r} cannot be read as {kind}", hint)
            return node.value

    def naive_time(self, node: ScalarNode, loc: Loc) -> None:
        match = _NAIVE_TIME.match(node.value)
        if match:
            day, time = match.groups()
            if loc[-1:] == ("reviewed",):  # a calendar day (drflow.spec.currency), not a time
                message = f"{node.value.strip()!r} is a time, but reviewed: is the day of the last review"
                self.error(node, loc, message, f"write the day alone, as YYYY-MM-DD: {day}")
                return
            message = f"{node.value.strip()!r} is a time without a timezone, which drflow cannot place"
            hint = f"write it in ISO 8601 with its UTC offset, e.g. {day}T{time}+00:00 (or {day}T{time}Z for UTC)"
            self.error(node, loc, message, hint)

    def mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first: dict[str, Node] = {}
        entries: list[tuple[str, Node, Node]] = []
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self.error(
                    key_node,
                    loc,
                    "a key must be a plain word, not a list or a mapping",
                    "write 'name: value'",
                )
                continue
            # The key as written: `on:` or `no:` stay words instead of becoming YAML 1.1 booleans.
            key = str(key_node.value)
            if key in first:
                line, _ = _position(first[key])
                self.error(
                    key_node,
                    (*loc, key),
                    f"duplicate key '{key}': YAML would silently keep only this last one",
                    f"remove one of them (the first is on line {line})",
                )
            else:
                first[key] = key_node
            entries.append((key, key_node, value_node))
        # `<<: *defaults` merges: explicit keys win, and of several merged mappings the first wins.
        for merge in merges:
            sources = merge.value if isinstance(merge, SequenceNode) else [merge]
            for source in reversed(sources):
                if not isinstance(source, MappingNode) or id(source) in self.active:
                    self.error(source, loc, "'<<' merges mappings only", "write '<<: *anchor' naming a mapping")
                    continue
                self.active.add(id(source))
                try:
                    result.update(self.mapping(source, loc))
                finally:
                    self.active.discard(id(source))
        for key, key_node, value_node in entries:
            self.keys[(*loc, key)] = key_node
            result[key] = self.build(value_node, (*loc, key))
        return result


def _position(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _offset_position(text: str, offset: int) -> Position:
    before = text[:offset]
    return (before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


# Where libyaml notices an unclosed quote or bracket (the end of the file, or a later line), the
# context mark is where it was opened: report that line.
_UNCLOSED = {
    "while scanning a quoted scalar": ("quote", "close it where the value ends, on the line where it starts"),
    "while parsing a flow sequence": ("'['", "close it with ']' (e.g. targets: [s3-primary, s3-secondary])"),
    "while parsing a flow mapping": ("'{'", "close it with '}' (e.g. approval: {approvers: [alice]})"),
}


# A value that opens a quote: `key: "…`, `- '…`, `- key: "…`.
_QUOTED_VALUE = re.compile(r"""^\s*(?:-\s+)?(?:[^\s#'"\[\]{}][^#:]*:\s+)?(["'])""")
_CLOSED = {'"': re.compile(r'(?:[^"\\]|\\.)*"'), "'": re.compile(r"(?:[^']|'')*'(?!')")}


def _unclosed_quote(text: str, before: int) -> tuple[int, int, str] | None:
    """(line, column, quote) of the first value before line `before` that opens a quote and does not close
    it on its line: YAML then reads on to the next quote, and the error appears far from the mistake."""
    for number, line in enumerate(text.splitlines()[: before - 1], 1):
        match = _QUOTED_VALUE.match(line)
        if match and not _CLOSED[match.group(1)].match(line, match.end()):
            return number, match.end(), match.group(1)
    return None


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, file: str, text: str = "") -> Diagnostic:
    failed = exc.problem_mark.line + 1 if exc.problem_mark else 0
    quote = _unclosed_quote(text, failed) if exc.context != "while scanning a quoted scalar" else None
    if quote is not None:
        line, col, char = quote
        message = (
            f"YAML syntax error: the quote {char} opened here is not closed on this line, so the YAML reader "
            f"read on and gave up on line {failed} ({exc.problem})"
        )
        hint = f"close it with {char} where the value ends, on this line"
        return Diagnostic(file, line, col, "", message, hint)
    opened = _UNCLOSED.get(exc.context or "")
    start = exc.context_mark
    if opened and start is not None:
        what, hint = opened
        lines = text.splitlines()
        if what == "quote" and start.line < len(lines) and start.column < len(lines[start.line]):
            what = f"quote {lines[start.line][start.column]}"
        ended = exc.problem_mark.line + 1 if exc.problem_mark else start.line + 1
        message = f"YAML syntax error: the {what} opened here is never closed (the YAML reader gave up on line {ended})"
        return Diagnostic(file, start.line + 1, start.column + 1, "", message, hint)
    no_colon = _missing_colon(exc, text)
    if no_colon is not None:
        return Diagnostic(file, *no_colon)
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    hint = _SYNTAX_HINTS.get(problem, "")
    if problem.startswith("mapping values are not allowed"):
        hint = _over_indented(text, line) or hint
    context, context_mark, problem_mark = exc.context, exc.context_mark, exc.problem_mark
    if not hint and context and context_mark and problem_mark and context_mark.line != problem_mark.line:
        hint = f"look at line {context_mark.line + 1} too ({context} that started there)"
    message = f"YAML syntax error: {problem}"
    return Diagnostic(file, line, col, "", message, hint or "fix the YAML syntax here")


_KEY_AND_VALUE = re.compile(r"^(\s*(?:-\s+)?)([A-Za-z_][\w-]*)\s+(\S.*)$")


def _missing_colon(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, int, str, str, str] | None:
    """`rto 30m`: libyaml notices on the next line; report the line the key is on, with the line rewritten."""
    start = exc.context_mark
    if exc.context != "while scanning a simple key" or start is None or exc.problem != "could not find expected ':'":
        return None
    lines = text.splitlines()
    written = lines[start.line] if start.line < len(lines) else ""
    match = _KEY_AND_VALUE.match(written.split(" #", 1)[0].rstrip())
    message = "YAML syntax error: this line has no ':' after its key"
    if match is None:
        return (
            start.line + 1,
            start.column + 1,
            "",
            message,
            "write it as 'key: value' (a ':' and a space after the key)",
        )
    indent, key, value = match.groups()
    return start.line + 1, len(indent) + 1, "", message, f"write it as '{key}: {value}'"


def _over_indented(text: str, line: int) -> str:
    """The hint for a line indented deeper than the `key: value` line above it (YAML reads it as more text)."""
    lines = text.splitlines()
    if not 1 < line <= len(lines):
        return ""
    above = next(
        (n for n in range(line - 1, 0, -1) if lines[n - 1].strip() and not lines[n - 1].lstrip().startswith("#")), 0
    )
    if not above:
        return ""
    here, there = lines[line - 1], lines[above - 1]
    key = _KEY_AND_VALUE.match(there.replace(": ", " ", 1)) if ": " in there else None
    if key is None or there.rstrip().endswith(":"):
        return ""
    indent, above_indent = len(here) - len(here.lstrip(" ")), len(key.group(1))
    if indent <= above_indent:
        return ""
    return (
        f"this line is indented {indent} spaces, deeper than '{key.group(2)}' on line {above} ({above_indent}), "
        f"so YAML reads it as more of that value: indent it {above_indent} spaces like '{key.group(2)}'"
    )
