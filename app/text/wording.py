"""Words for counts, as messages and pages say them."""


def count_of(count: int, noun: str) -> str:
    """'1 image', '3 images': the count and the noun, plural unless the count is one."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
