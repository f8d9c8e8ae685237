"""Split long texts into overlapping chunks on paragraph, then sentence, then word boundaries."""

from __future__ import annotations

import re

__all__ = ["split_text"]

_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCES = re.compile(r"(?<=[.!?…])\s+")
_WORDS = re.compile(r"\s+")


def _pieces(text: str, size: int) -> list[str]:
    """Break `text` into units no longer than `size`, preferring the coarsest boundary."""
    out: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= size:
            out.append(paragraph)
            continue
        for sentence in _SENTENCES.split(paragraph):
            if len(sentence) <= size:
                out.append(sentence)
                continue
            words = _WORDS.split(sentence)
            line = ""
            for word in words:
                while len(word) > size:  # one unbroken token longer than a chunk
                    if line:
                        out.append(line)
                        line = ""
                    out.append(word[:size])
                    word = word[size:]
                if line and len(line) + 1 + len(word) > size:
                    out.append(line)
                    line = word
                else:
                    line = f"{line} {word}" if line else word
            if line:
                out.append(line)
    return out


def _tail(pieces: list[str], overlap: int) -> list[str]:
    """The end of a chunk, at most `overlap` characters: whole pieces, else whole sentences,
    else whole words, so the next chunk repeats context without starting mid-word."""
    kept: list[str] = []
    length = 0
    for piece in reversed(pieces):
        if length + len(piece) <= overlap:
            kept.insert(0, piece)
            length += len(piece) + 1
            continue
        if kept:
            break
        room = overlap
        for splitter in (_SENTENCES, _WORDS):
            parts = splitter.split(piece)
            taken: list[str] = []
            for part in reversed(parts):
                if sum(len(t) + 1 for t in taken) + len(part) > room:
                    break
                taken.insert(0, part)
            if taken and len(taken) < len(parts):
                kept.insert(0, " ".join(taken))
                break
        break
    return kept


def split_text(text: str, *, size: int, overlap: int) -> list[str]:
    """Chunks of at most `size` characters; consecutive chunks share up to `overlap` characters.

    A text of at most `size` characters is one chunk. Overlap is made of whole sentences or
    paragraphs from the end of the previous chunk, so no chunk starts mid-word.
    """
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    chunks: list[str] = []
    current: list[str] = []
    length = 0
    for piece in _pieces(text, size):
        if current and length + len(piece) + 1 > size:
            chunks.append("\n".join(current))
            current = _tail(current, overlap)
            length = sum(len(p) + 1 for p in current)
            if current and length + len(piece) + 1 > size:
                current, length = [], 0
        current.append(piece)
        length += len(piece) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks
