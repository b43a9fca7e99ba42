"""Merge one TARS config file (TC_Config syntax) over another, keeping order and comments: tarscli's TARS_MERGE_CONF,
TTemplate parents and children, a TServer's profile over its template.

K8STARS kept children in a Go map, so a merged file came out in random order without its comments. Here the tree
keeps every line in file order: a value from the overlay replaces the base value in place, new keys and domains are
added after the existing ones, and the overlay's comment lines travel with the item that follows them. Lines are
kept as written (escapes included), so merging never re-escapes a value.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

INDENT = "  "


class MergeConfError(ValueError):
    """A config file that cannot be parsed."""


@dataclass
class Comment:
    text: str  # the whole line, trimmed, starting with '#'


@dataclass
class Leaf:
    key: str
    text: str  # the line as written, trimmed: "key=value", "stat =x" or a bare "allow"


@dataclass
class Node:
    name: str
    items: list[Item] = field(default_factory=list)

    def find_leaf(self, key: str) -> Leaf | None:
        for item in reversed(self.items):  # TC_Config: the last duplicate wins
            if isinstance(item, Leaf) and item.key == key:
                return item
        return None

    def find_node(self, name: str) -> Node | None:
        for item in self.items:
            if isinstance(item, Node) and item.name == name:
                return item
        return None


Item = Comment | Leaf | Node


def _key_of(line: str) -> str:
    i = 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == "=":
            return line[:i].strip()
        i += 1
    return line.strip()


def parse(text: str) -> Node:
    """A config file as a tree of comments, leaves and nodes in file order. Empty lines are dropped."""
    root = Node("")
    stack = [root]
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            stack[-1].items.append(Comment(line))
        elif line.startswith("</"):
            name = line[2:].rstrip(">").strip()
            if len(stack) == 1 or stack[-1].name != name:
                raise MergeConfError(f"line {lineno}: xml end not match :{name}")
            stack.pop()
        elif line.startswith("<") and line.endswith(">"):
            node = Node(line[1:-1].strip())
            stack[-1].items.append(node)
            stack.append(node)
        else:
            key = _key_of(line)
            if key:
                stack[-1].items.append(Leaf(key, line))
    if len(stack) > 1:
        raise MergeConfError(f"<{stack[-1].name}> is never closed")
    return root


def _insert_comments(node: Node, before: Item, comments: list[Comment]) -> None:
    if not comments:
        return
    i = next(k for k, it in enumerate(node.items) if it is before)
    already = [it.text for it in node.items[max(0, i - len(comments)) : i] if isinstance(it, Comment)]
    if already == [c.text for c in comments]:
        return
    node.items[i:i] = comments


def _add_leaf(node: Node, leaf: Leaf, comments: list[Comment]) -> None:
    """New keys go after the node's last key, before its sub-domains, where a reader looks for them."""
    pos = 0
    for k, it in enumerate(node.items):
        if isinstance(it, Leaf):
            pos = k + 1
    node.items[pos:pos] = [*comments, leaf]


def merge(base: Node, overlay: Node) -> None:
    """Merge ``overlay`` into ``base`` in place. An item whose name is taken by an item of the other kind (a key in
    one file, a domain in the other) is skipped, as in K8STARS."""
    pending: list[Comment] = []
    for item in overlay.items:
        if isinstance(item, Comment):
            pending.append(item)
            continue
        if isinstance(item, Leaf):
            clash = base.find_node(item.key)
            existing_leaf = base.find_leaf(item.key)
            if existing_leaf is not None:
                _insert_comments(base, existing_leaf, pending)
                existing_leaf.text = item.text
            elif clash is None:
                _add_leaf(base, copy.deepcopy(item), pending)
        else:
            existing_node = base.find_node(item.name)
            if existing_node is not None:
                _insert_comments(base, existing_node, pending)
                merge(existing_node, item)
            elif base.find_leaf(item.name) is None:
                base.items.extend([*pending, copy.deepcopy(item)])
        pending = []
    base.items.extend(pending)


def render(root: Node) -> str:
    lines: list[str] = []

    def walk(node: Node, depth: int) -> None:
        pad = INDENT * depth
        for it in node.items:
            if isinstance(it, Node):
                lines.append(f"{pad}<{it.name}>")
                walk(it, depth + 1)
                lines.append(f"{pad}</{it.name}>")
            else:
                lines.append(pad + it.text)

    walk(root, 0)
    return "\n".join(lines) + "\n"


def merge_text(base: str, overlay: str) -> str:
    tree = parse(base)
    merge(tree, parse(overlay))
    return render(tree)
