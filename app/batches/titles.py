"""A batch's name for people: its first prompt, shortened at a word, and how many other prompts it has."""

from __future__ import annotations

TITLE_CHARS = 60


def shortened(text: str, limit: int = TITLE_CHARS) -> str:
    """The text on one line, cut at the last word that fits within `limit` characters, with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[:limit - 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return (head.rstrip(" ,;:.-") or head) + "…"


def batch_title(prompts: list[str]) -> str:
    """'A red fox in the snow + 2 more': repeats of a prompt (several images of one) are not counted."""
    others = len(dict.fromkeys(prompts)) - 1
    title = shortened(prompts[0]) if prompts else "Empty batch"
    return f"{title} + {others} more" if others > 0 else title
