"""Words for counts and shortened text, as messages and pages say them."""

TITLE_CHARS = 60  # a page's title or heading made from a prompt


def count_of(count: int, noun: str) -> str:
    """'1 image', '3 images': the count and the noun, plural unless the count is one."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def shortened(text: str, limit: int = TITLE_CHARS) -> str:
    """The text on one line, cut at the last word that fits within `limit` characters, with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[:limit - 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return (head.rstrip(" ,;:.-") or head) + "…"
