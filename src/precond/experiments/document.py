"""A report as a small tree, built once and rendered twice (:mod:`.render`: HTML and Markdown).

A :class:`Document` has a title, opening blocks and :class:`Section` s; a section has a
title and blocks. Blocks: :class:`Paragraph` (text with :class:`Bold` and :class:`Code`
runs; ``style`` ``"small"`` or ``"note"``), :class:`Table` (rows of strings, the first the
header), :class:`Figure` (an image path relative to the report, a caption, optionally a
link to another file), :class:`Preformatted` (verbatim text, optionally of a language)
and :class:`Details` (blocks folded under a summary). Text is plain: the renderers escape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Bold:
    text: str


@dataclass(frozen=True)
class Code:
    text: str


Inline = Union[str, Bold, Code]


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[Inline, ...]
    style: str = ""  # "", "small" or "note"


@dataclass(frozen=True)
class Table:
    rows: list[list[str]]  # rows[0]: the header


@dataclass(frozen=True)
class Figure:
    src: str  # relative to the report
    caption: str
    link: str | None = None  # e.g. the SVG of a PNG


@dataclass(frozen=True)
class Preformatted:
    text: str
    language: str = ""


@dataclass(frozen=True)
class Details:
    summary: str
    blocks: list[Block]


Block = Union[Paragraph, Table, Figure, Preformatted, Details]


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    anchor: str | None = None  # an id to link to


@dataclass
class Document:
    title: str
    heading: str
    blocks: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
