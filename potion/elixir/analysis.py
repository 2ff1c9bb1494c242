"""Tree-sitter analysis of Elixir source: modules, functions, docs, specs, aliases and syntax errors.

The walk visits module-level structure only: `def` bodies, strings, `quote` blocks and attribute values
are never descended into, which keeps analysis close to the cost of the C parse itself. Definitions are
read the way Elixir's own parser would see them (checked against `elixir` in the tests), and partial code
(missing `end`, a half-typed expression) still yields the modules and functions tree-sitter recovered.
"""

from __future__ import annotations

import re
import threading

import tree_sitter_elixir
from tree_sitter import Language, Node, Parser, Tree

from potion.elixir.model import (
    DEF_KINDS,
    Clause,
    ErrorSpan,
    FunctionDef,
    ModuleDef,
    SourceAnalysis,
)
from potion.elixir.nodes import (
    _child_of_type,
    _dedent_heredoc,
    _head_signature,
    _keywords,
    _line_of,
    _operator,
    _param,
)
from potion.elixir.positions import LineIndex

LANGUAGE = Language(tree_sitter_elixir.language())
BOM = b"\xef\xbb\xbf"
MAX_ERRORS = 200

# `use X` that declares `@behaviour X` (and `@impl true` callbacks) for the module.
USE_BEHAVIOURS = frozenset(
    {
        "GenServer",
        "Supervisor",
        "Application",
        "GenStage",
        "GenEvent",
        "DynamicSupervisor",
        "Mix.Task",
        "Phoenix.Channel",
        "Phoenix.LiveView",
        "Phoenix.LiveComponent",
        "Plug.Builder",
    }
)
# Leaves and literals: nothing in them can define anything.
_SKIP = frozenset(
    {
        "string",
        "charlist",
        "sigil",
        "comment",
        "atom",
        "quoted_atom",
        "integer",
        "float",
        "char",
        "boolean",
        "nil",
        "identifier",
        "alias",
        "keyword",
        "quoted_keyword",
        "operator_identifier",
    }
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "s": " ", '"': '"', "'": "'", "\\": "\\", "e": "\x1b", "0": "\0"}
_SPACE = re.compile(r"\s+")

_local = threading.local()  # a Parser is not thread-safe; the language server parses from worker threads


def parser() -> Parser:
    p = getattr(_local, "parser", None)
    if p is None:
        p = _local.parser = Parser(LANGUAGE)
    return p


def to_bytes(source: str | bytes) -> bytes:
    """UTF-8 bytes of a document; a str with lone surrogates is encoded with replacements, not an error."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    return source.encode("utf-8", "replace")


def parse(data: bytes, old_tree: Tree | None = None) -> Tree:
    # A BOM is blanked for the parser (same length, so byte offsets stay true) and kept for positions.
    if data.startswith(BOM):
        data = b"   " + data[3:]
    return parser().parse(data, old_tree) if old_tree is not None else parser().parse(data)


def analyze(source: str | bytes, *, path: str | None = None) -> SourceAnalysis:
    """Analyse one Elixir file. Never raises: syntax errors come back in `.errors`."""
    data = to_bytes(source)
    return analyze_tree(parse(data), data, path=path)


def analyze_tree(tree: Tree, data: bytes, *, path: str | None = None) -> SourceAnalysis:
    """Analyse an already parsed tree (the incremental `Document` re-uses its tree)."""
    lines = LineIndex(data)
    walker = _Walker(data)
    try:
        walker.run(tree.root_node)
        errors = collect_errors(tree.root_node, data)
    except RecursionError as exc:  # pathological nesting in a tree-sitter node chain: report, don't raise
        errors = [ErrorSpan(0, 0, 0, 0, f"analysis stopped: {exc}")]
    walker.finish()
    return SourceAnalysis(modules=walker.modules, errors=errors, lines=lines, path=path, tree=tree)


def is_balanced(code: str | bytes) -> bool:
    """True when `code` parses with no ERROR or MISSING nodes: every `do` has its `end`, brackets close.

    The language server uses it to drop or trim completions that would leave the buffer unbalanced.
    """
    return not parse(to_bytes(code)).root_node.has_error


def collect_errors(root: Node, data: bytes, limit: int = MAX_ERRORS) -> list[ErrorSpan]:
    """ERROR and MISSING nodes, outermost first; only subtrees flagged `has_error` are visited."""
    errors: list[ErrorSpan] = []
    if not root.has_error:
        return errors
    stack = [root]
    while stack and len(errors) < limit:
        node = stack.pop()
        if node.is_missing:
            (sl, sc), (el, ec) = node.start_point, node.end_point
            errors.append(ErrorSpan(sl, sc, el, ec, f"missing `{node.type}`", missing=True))
            continue
        if node.is_error:
            (sl, sc), (el, ec) = node.start_point, node.end_point
            snippet = _SPACE.sub(" ", data[node.start_byte : node.end_byte][:40].decode("utf-8", "replace"))
            errors.append(ErrorSpan(sl, sc, el, ec, f"syntax error near `{snippet.strip()}`"))
        stack.extend(c for c in reversed(node.children) if c.has_error or c.is_missing)
    errors.sort(key=lambda e: (e.line, e.column))
    return errors


class _Pending:
    """Module attributes waiting for the next `def` (`@doc`, `@impl`, `@deprecated`)."""

    __slots__ = ("doc", "hidden", "impl", "deprecated")

    def __init__(self) -> None:
        self.doc: str | None = None
        self.hidden = False
        self.impl: bool | str | None = None
        self.deprecated: str | None = None


class _Walker:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.modules: list[ModuleDef] = []
        self._by_name: dict[str, ModuleDef] = {}
        self._pending: dict[int, _Pending] = {}
        self._functions: dict[tuple[int, str, int], FunctionDef] = {}
        self._consumed: set[int] = set()
        self._broken: set[int] = set()  # modules whose subtree has syntax errors

    # -- helpers ---------------------------------------------------------------------------------------
    def text(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def string_value(self, node: Node) -> str | None:
        """The content of a string, charlist or sigil literal (heredocs dedented); None otherwise."""
        if node.type not in ("string", "charlist", "sigil"):
            return None
        raw_sigil = node.type == "sigil" and self.text(node)[1:2].isupper()
        heredoc = False
        parts: list[str] = []
        for child in node.children:
            t = child.type
            if t == "quoted_content":
                parts.append(self.text(child))
            elif t == "escape_sequence":
                esc = self.text(child)
                parts.append(_ESCAPES.get(esc[1:2], esc[1:]) if len(esc) == 2 else esc)
            elif t == "interpolation":
                parts.append(self.text(child))
            elif t in ('"""', "'''"):
                heredoc = True
        value = "".join(parts).replace("\r\n", "\n")
        if raw_sigil:
            value = value.replace("\r\n", "\n")
        if heredoc:
            value = _dedent_heredoc(value, node, self.data)
        return value

    def resolve(self, mod: ModuleDef | None, name: str) -> str:
        """Expand `__MODULE__` and aliases visible in `mod` (its own, then its parents')."""
        name = _SPACE.sub("", name)
        if name.startswith("__MODULE__") and mod is not None:
            return mod.name + name[len("__MODULE__") :]
        if name.startswith("Elixir."):
            return name[len("Elixir.") :]
        head, dot, rest = name.partition(".")
        scope = mod
        while scope is not None:
            if head in scope.aliases:
                return scope.aliases[head] + dot + rest
            scope = self._by_name.get(scope.parent) if scope.parent else None
        return name

    def module_name(self, node: Node, parent: ModuleDef | None, nest: bool) -> str | None:
        """Name of a module argument as Elixir resolves it lexically (see scripts/public_defs.exs)."""
        if node.type == "alias":
            name = _SPACE.sub("", self.text(node))
            if name.startswith("Elixir."):
                return name[len("Elixir.") :] or None
            return f"{parent.name}.{name}" if nest and parent is not None else name
        if node.type == "identifier" and self.text(node) == "__MODULE__":
            return parent.name if parent else None
        if node.type == "dot" and parent is not None:
            text = _SPACE.sub("", self.text(node))
            if text.startswith("__MODULE__.") and re.fullmatch(r"[A-Z][\w.]*", text[len("__MODULE__.") :]):
                return parent.name + text[len("__MODULE__") :]
        return None

    # -- the walk --------------------------------------------------------------------------------------
    def run(self, root: Node) -> None:
        # Explicit stack (not recursion): deeply nested expressions must not hit Python's recursion limit.
        stack: list[tuple[Node, ModuleDef | None, tuple | None]] = [(root, None, None)]
        while stack:
            node, mod, recovered = stack.pop()
            if recovered is not None:
                self.define(recovered[0], recovered[1], mod, end=recovered[2], body=None)
                continue
            if node.id in self._consumed:
                continue
            t = node.type
            if t == "call":
                target = node.child_by_field_name("target")
                if target is not None and target.type == "identifier":
                    kw = self.text(target)
                    if kw in ("defmodule", "defprotocol", "defimpl"):
                        self.open_module(node, kw, mod, stack)
                        continue
                    if kw in DEF_KINDS:
                        if mod is not None:
                            self.define(node, kw, mod, end=None, body=stack)
                        continue
                    if kw == "quote":
                        continue
                    if mod is not None and kw in ("alias", "import", "require", "use"):
                        self.directive(node, kw, mod)
                        continue
            elif t == "unary_operator":
                if mod is not None and self.attribute(node, mod):
                    continue
            elif t == "ERROR":
                self.recover(node, mod, stack)
                continue
            elif t in _SKIP:
                continue
            children = node.named_children
            for child in reversed(children):
                stack.append((child, mod, None))

    def recover(self, node: Node, mod: ModuleDef | None, stack: list) -> None:
        """Inside an ERROR node tree-sitter leaves `def`, `arguments`, `do`... as loose siblings: re-pair
        them so a file being typed still shows its modules and the function around the cursor."""
        children = node.children
        items: list[tuple[Node, ModuleDef | None, tuple | None]] = []
        i = 0
        n = len(children)
        while i < n:
            child = children[i]
            nxt = children[i + 1] if i + 1 < n else None
            if child.type == "identifier" and nxt is not None and nxt.type == "arguments":
                kw = self.text(child)
                if kw in DEF_KINDS and mod is not None:
                    end = node.end_byte
                    for later in children[i + 2 :]:
                        if later.type == "identifier" and self.text(later) in DEF_KINDS:
                            end = later.start_byte
                            break
                    items.append((child, mod, (nxt, kw, (child.start_byte, end, node))))
                    i += 2
                    continue
                if kw in ("defmodule", "defprotocol"):
                    first = nxt.named_children[0] if nxt.named_child_count else None
                    name = self.module_name(first, mod, True) if first is not None else None
                    if name:
                        # Walked later in order: the rest of this ERROR node is the module's body.
                        new = self.new_module(name, kw, child, node, mod)
                        mod = new
                    i += 2
                    continue
            if child.is_named:
                items.append((child, mod, None))
            i += 1
        stack.extend(reversed(items))

    def open_end(self, end: int) -> int:
        """A span recovered from an ERROR (no `end` yet) runs on over trailing whitespace, so a cursor
        on the blank lines after `x +` is still inside it."""
        return len(self.data) if not self.data[end:].strip() else end

    def new_module(self, name: str, kind: str, start: Node, end: Node, parent: ModuleDef | None) -> ModuleDef:
        end_byte = self.open_end(end.end_byte) if end.type == "ERROR" else end.end_byte
        module = ModuleDef(
            name=name,
            kind=kind,
            line=start.start_point[0],
            end_line=end.end_point[0],
            start_byte=start.start_byte,
            end_byte=end_byte,
            parent=parent.name if parent else None,
        )
        self.modules.append(module)
        self._by_name.setdefault(name, module)
        if parent is not None:
            parent.children.append(name)
            short = name[len(parent.name) + 1 :] if name.startswith(parent.name + ".") else None
            if short:  # `defmodule Bar` inside `Foo` also aliases Bar -> Foo.Bar
                head = short.split(".")[0]
                parent.aliases.setdefault(head, f"{parent.name}.{head}")
        return module

    def open_module(self, node: Node, kw: str, parent: ModuleDef | None, stack: list) -> None:
        args = _child_of_type(node, "arguments")
        if args is None or args.named_child_count == 0:
            return
        first = args.named_children[0]
        body: list[Node] = []
        end: Node = node
        block = _child_of_type(node, "do_block")
        options = _keywords(args, self)
        if block is not None:
            body = block.named_children
        elif "do" in options:
            body = [options["do"]]
        else:
            sibling = node.next_sibling
            if sibling is not None and sibling.type == "ERROR" and sibling.child_count:
                if sibling.children[0].type == "do":  # `defmodule X do` whose `end` never came
                    self._consumed.add(sibling.id)
                    body, end = [sibling], sibling
        if kw == "defimpl":
            proto = self.module_name(first, None, False)
            proto = self.resolve(parent, proto) if proto and parent is not None else proto
            target = options.get("for")
            targets = target.named_children if target is not None and target.type == "list" else [target]
            for t in targets:
                tname = parent.name if t is None and parent else None
                if t is not None:
                    tname = self.module_name(t, parent, False)
                if proto and tname:
                    module = self.new_module(f"{proto}.{tname}", kw, node, end, parent)
                    stack.extend((b, module, None) for b in reversed(body))
            return
        name = self.module_name(first, parent, True)
        if name is None:
            return
        module = self.new_module(name, kw, node, end, parent)
        if node.has_error or end is not node:
            self._broken.add(id(module))
        if body and body[0].type == "ERROR" and body[0].id in self._consumed:
            self.recover(body[0], module, stack)
            return
        stack.extend((b, module, None) for b in reversed(body))

    def define(self, node: Node, kind: str, mod: ModuleDef, *, end: tuple | None, body: list | None) -> None:
        """Record a def clause. `node` is the `def` call, or (recovered) the `arguments` after a loose
        `def` identifier, with `end` = (start_byte, end_byte, node that ends it)."""
        if end is None:
            args = _child_of_type(node, "arguments")
            start_node, end_node = node, node
            start_byte, end_byte = node.start_byte, node.end_byte
        else:
            args = node
            start_byte, end_byte, end_node = end
            end_byte = self.open_end(end_byte)
            start_node = node
        pending = self._pending.setdefault(id(mod), _Pending())
        head = args.named_children[0] if args is not None and args.named_child_count else None
        sig = _head_signature(head, self) if head is not None else None
        if sig is not None:
            name, params, guard = sig
            defaults = sum(1 for p in params if p.type == "binary_operator" and _operator(p, self) == "\\\\")
            clause = Clause(
                line=start_node.start_point[0],
                end_line=end_node.end_point[0] if end is None else _line_of(self.data, end_byte),
                start_byte=start_byte,
                end_byte=end_byte,
                params=[_param(p, self) for p in params],
                defaults=defaults,
                guard=guard,
            )
            key = (id(mod), name, len(params))
            fn = self._functions.get(key)
            if fn is None:
                fn = FunctionDef(name=name, kind=kind, module=mod.name, arities=range(0))
                self._functions[key] = fn
                mod.functions.append(fn)
            fn.clauses.append(clause)
            most = max(c.defaults for c in fn.clauses)
            fn.arities = range(len(params) - most, len(params) + 1)
            if pending.doc is not None or pending.hidden:
                fn.doc, fn.doc_hidden = pending.doc, pending.hidden
            if pending.impl is not None and fn.impl is None:
                fn.impl = pending.impl
            if pending.deprecated is not None:
                fn.deprecated = pending.deprecated
        self._pending[id(mod)] = _Pending()
        # In a module with syntax errors a def may have swallowed the definitions after it (a missing
        # `end` makes tree-sitter nest them): look inside its body too.
        if body is not None and end is None and (node.has_error or id(mod) in self._broken):
            block = _child_of_type(node, "do_block")
            if block is not None:
                body.extend((c, mod, None) for c in reversed(block.named_children))

    def attribute(self, node: Node, mod: ModuleDef) -> bool:
        """Handle `@name value`; True when it was a module attribute (its value is never walked)."""
        op = node.child_by_field_name("operator")
        if op is None or op.type != "@":
            return False
        operand = node.child_by_field_name("operand")
        if operand is None or operand.type != "call":
            return True
        target = operand.child_by_field_name("target")
        if target is None or target.type != "identifier":
            return True
        attr = self.text(target)
        args = _child_of_type(operand, "arguments")
        value = args.named_children[0] if args is not None and args.named_child_count else None
        if value is None:
            return True
        pending = self._pending.setdefault(id(mod), _Pending())
        if attr in ("doc", "moduledoc"):
            text = self.string_value(value)
            hidden = value.type == "boolean" and self.text(value) == "false"
            if text is None and not hidden:
                return True  # `@doc since: "1.2"` and friends: metadata only
            if attr == "moduledoc":
                mod.moduledoc, mod.moduledoc_hidden = text, hidden
            else:
                pending.doc, pending.hidden = text, hidden
        elif attr == "spec":
            head = value
            while head.type == "binary_operator" and _operator(head, self) == "when":
                head = head.child_by_field_name("left")
            if head is not None and head.type == "binary_operator" and _operator(head, self) == "::":
                sig = _head_signature(head.child_by_field_name("left"), self)
                if sig is not None:
                    key = (sig[0], len(sig[1]))
                    mod.specs.setdefault(key, []).append(_SPACE.sub(" ", self.text(value)))
        elif attr == "impl":
            if value.type == "boolean":
                pending.impl = self.text(value) == "true"
            elif value.type == "alias":
                pending.impl = self.resolve(mod, self.text(value))
        elif attr == "behaviour":
            if value.type == "alias" or value.type == "dot":
                name = self.resolve(mod, self.text(value))
                if name not in mod.behaviours:
                    mod.behaviours.append(name)
        elif attr == "deprecated":
            pending.deprecated = self.string_value(value)
        return True

    def directive(self, node: Node, kw: str, mod: ModuleDef) -> None:
        args = _child_of_type(node, "arguments")
        if args is None or args.named_child_count == 0:
            return
        first = args.named_children[0]
        names: list[str] = []
        if first.type == "dot" and (right := first.child_by_field_name("right")) is not None:
            if right.type == "tuple":  # alias A.{B, C}
                base = self.resolve(mod, self.text(first.child_by_field_name("left")))
                names = [f"{base}.{_SPACE.sub('', self.text(c))}" for c in right.named_children]
            else:
                names = [self.resolve(mod, self.text(first))]
        elif first.type == "alias" or (first.type == "identifier" and self.text(first) == "__MODULE__"):
            names = [self.resolve(mod, self.text(first))]
        elif first.type == "atom":  # import :lists
            names = [self.text(first)]
        if not names:
            return
        if kw == "alias":
            options = _keywords(args, self)
            as_node = options.get("as")
            for full in names:
                short = self.text(as_node) if as_node is not None and len(names) == 1 else full.split(".")[-1]
                mod.aliases[short] = full
        elif kw == "import":
            mod.imports.extend(n for n in names if n not in mod.imports)
        elif kw == "require":
            mod.requires.extend(n for n in names if n not in mod.requires)
        else:
            for name in names:
                if name not in mod.uses:
                    mod.uses.append(name)
                if name in USE_BEHAVIOURS and name not in mod.behaviours:
                    mod.behaviours.append(name)

    def finish(self) -> None:
        """Attach `@spec`s to their functions (a spec may sit anywhere in the module)."""
        for mod in self.modules:
            if not mod.specs:
                continue
            for fn in mod.functions:
                specs = [s for a in fn.arities for s in mod.specs.get((fn.name, a), [])]
                if specs:
                    fn.spec = "\n".join(specs)
