"""Prompt templates in dynamicprompts' syntax ({a|b}, {2$$a|b|c}, ranges, weights, __wildcards__), expanded into
every combination or into N random picks seeded by the batch's seed."""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Iterator, Mapping

from dynamicprompts.commands import Command, WildcardCommand
from dynamicprompts.generators import CombinatorialPromptGenerator, RandomPromptGenerator
from dynamicprompts.parser.parse import parse
from dynamicprompts.wildcards import WildcardManager
from pyparsing import ParseBaseException

EXPAND_MODES = ("none", "combinatorial", "random")
# Combinations are counted up to this many: past it the count is "more than" it, and nothing is listed further.
COUNT_LIMIT = 10_000
MAX_SAMPLES = 1_000


class TemplateError(ValueError):
    """A template that cannot be expanded: unreadable, or naming a wildcard list nobody has."""


def _commands(node: object) -> Iterator[Command]:
    """Every command in a parsed template, depth first (variants, wraps and variables hold commands too)."""
    if isinstance(node, Command):
        yield node
        for value in vars(node).values():
            yield from _commands(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _commands(item)
    elif hasattr(node, "value") and hasattr(node, "weight"):  # a VariantOption
        yield from _commands(node.value)


def _parsed(template: str) -> Command:
    """The template's parse tree, or TemplateError saying where it could not be read."""
    try:
        return parse(template)
    except ParseBaseException as exc:
        raise TemplateError(f"This template cannot be read near character {exc.loc + 1}: check that every {{ has "
                            "its }, and that choices are separated by |.") from None


def _wildcard_names(template: str) -> list[str]:
    """The wildcard names (or glob patterns) a template refers to, in order."""
    return [command.wildcard for command in _commands(_parsed(template))
            if isinstance(command, WildcardCommand) and isinstance(command.wildcard, str)]


def check_wildcards(template: str, lists: Mapping[str, list[str]]) -> None:
    """TemplateError naming the first __name__ (in the template or in a list it reads) that no list answers."""
    pending, seen = [template], set()
    while pending:
        for name in _wildcard_names(pending.pop()):
            matches = [key for key in lists if fnmatch.fnmatchcase(key, name)]
            if not matches:
                raise TemplateError(f"There is no wildcard list named __{name}__: make it on the Wildcards page, "
                                    "or correct the name.")
            for key in matches:
                if key not in seen:
                    seen.add(key)
                    pending.extend(lists[key])


def _manager(lists: Mapping[str, list[str]]) -> WildcardManager:
    """A wildcard manager reading these lists (in memory, never from files)."""
    manager = WildcardManager(root_map={"": [{name: list(values) for name, values in lists.items()}]})
    manager.sort_wildcards = False  # the list's own order, as its owner wrote it
    return manager


def expand(template: str, mode: str, lists: Mapping[str, list[str]], samples: int = 1, seed: int = 0,
           limit: int = COUNT_LIMIT) -> list[str]:
    """The prompts a template makes: as typed ("none"), every combination (at most `limit` + 1, so a caller can
    tell there are more), or `samples` random picks, the same picks for the same seed."""
    if mode == "none":
        return [template]
    check_wildcards(template, lists)
    if mode == "combinatorial":
        generator = CombinatorialPromptGenerator(_manager(lists))
        found = generator.generate(template, max_prompts=limit + 1)
    else:
        generator = RandomPromptGenerator(_manager(lists), seed=seed)
        found = generator.generate(template, num_images=samples)
    return [" ".join(text.split()) for text in found if text.strip()]


def picks_seed(seed: int | None) -> int:
    """The seed random picks are made with: the batch's locked seed, else a fresh one."""
    return seed if seed else random.SystemRandom().randrange(1, 2**32)
