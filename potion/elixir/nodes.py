"""Small readers of tree-sitter nodes for the analysis: def heads, parameters, keyword options, heredocs."""

from __future__ import annotations

import re
from typing import Protocol

from tree_sitter import Node

_SPACE = re.compile(r"\s+")


class _Texts(Protocol):
    def text(self, node: Node) -> str: ...


def _child_of_type(node: Node, type_: str) -> Node | None:
    for child in node.children:
        if child.type == type_:
            return child
    return None


def _keywords(args: Node, walker: _Texts) -> dict[str, Node]:
    """`key: value` options in a call's arguments (`for:`, `as:`, `do:`)."""
    out: dict[str, Node] = {}
    for child in args.named_children:
        if child.type != "keywords":
            continue
        for pair in child.named_children:
            key = pair.child_by_field_name("key")
            value = pair.child_by_field_name("value")
            if key is not None and value is not None:
                out[walker.text(key).rstrip().rstrip(":")] = value
    return out


def _operator(node: Node, walker: _Texts) -> str:
    op = node.child_by_field_name("operator")
    return walker.text(op) if op is not None else ""


def _head_signature(head: Node | None, walker: _Texts) -> tuple[str, list[Node], str | None] | None:
    """(name, parameter nodes, guard text) of a def head, or None when the name is computed (unquote)."""
    guard = None
    while head is not None and head.type == "binary_operator" and _operator(head, walker) == "when":
        right = head.child_by_field_name("right")
        guard = guard or (walker.text(right) if right is not None else None)
        head = head.child_by_field_name("left")
    if head is None:
        return None
    t = head.type
    if t == "block" and head.named_child_count == 1 and head.named_children[0].type == "operator_identifier":
        name, params = walker.text(head.named_children[0]), []  # `defmacro (..)`: a nullary operator
    elif t == "identifier":
        name, params = walker.text(head), []
    elif t == "call":
        target = head.child_by_field_name("target")
        if target is None or target.type != "identifier":
            return None
        name = walker.text(target)
        args = _child_of_type(head, "arguments")
        params = args.named_children if args is not None else []
    elif t == "binary_operator":
        left, right = head.child_by_field_name("left"), head.child_by_field_name("right")
        op = _operator(head, walker)
        if left is None or right is None:
            return None
        if op == "//" and left.type == "binary_operator" and _operator(left, walker) == "..":
            name = "..//"
            params = [left.child_by_field_name("left"), left.child_by_field_name("right"), right]
        else:
            name, params = op, [left, right]
    elif t == "unary_operator":
        operand = head.child_by_field_name("operand")
        name, params = _operator(head, walker), [operand] if operand is not None else []
    else:
        return None
    if name in ("unquote", "unquote_splicing") or not name:
        return None
    for p in params:
        if p is None:
            return None
        if p.type == "call":
            target = p.child_by_field_name("target")
            if target is not None and walker.text(target) == "unquote_splicing":
                return None
    return name, params, guard


def _param(node: Node, walker: _Texts) -> str:
    if node.type == "identifier":
        return walker.text(node)
    if node.type == "binary_operator":
        op = _operator(node, walker)
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        if op == "\\\\" and left is not None and right is not None:
            return f"{_param(left, walker)} \\\\ {_SPACE.sub(' ', walker.text(right))}"
        if op == "=" and left is not None and right is not None:
            # `%{} = state` / `state = %{}`: the variable name is what a signature should show
            if right.type == "identifier":
                return walker.text(right)
            if left.type == "identifier":
                return walker.text(left)
    text = _SPACE.sub(" ", walker.text(node))
    return text if len(text) <= 40 else text[:37] + "..."


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset)


def _dedent_heredoc(value: str, node: Node, data: bytes) -> str:
    """Strip the closing delimiter's indentation from every line, like Elixir does for heredocs."""
    closing = node.children[-1] if node.children else None
    indent = closing.start_point[1] if closing is not None else 0
    lines = value.split("\n")
    if lines and lines[0].strip() == "":
        lines = lines[1:]
    out = []
    for line in lines:
        stripped = line.lstrip(" \t")
        cut = min(indent, len(line) - len(stripped))
        out.append(line[cut:])
    return "\n".join(out).rstrip()
