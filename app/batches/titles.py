"""A batch's name for people: its first prompt, shortened at a word, and how many other prompts it has."""

from __future__ import annotations

from app.text.wording import shortened


def batch_title(prompts: list[str]) -> str:
    """'A red fox in the snow + 2 more': repeats of a prompt (several images of one) are not counted."""
    others = len(dict.fromkeys(prompts)) - 1
    title = shortened(prompts[0]) if prompts else "Empty batch"
    return f"{title} + {others} more" if others > 0 else title
