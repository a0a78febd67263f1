"""What a batch will cost, and the account's balance (cached briefly, shared by every web process)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.exceptions import RedisError

from app.prompts.forms import PromptForm
from app.providers.base import GenerationError
from app.providers.options import USD_PER_CREDIT
from app.services import QueueUnavailable, services

log = logging.getLogger(__name__)
BALANCE_KEY = "imagegen:stability-balance"
BALANCE_TTL_SECONDS = 60


@dataclass(frozen=True)
class BatchCost:
    """Prompts times images per prompt times the model's credits per image."""

    prompts: int
    per_prompt: int
    credits_per_image: float
    model_label: str

    @property
    def images(self) -> int:
        """How many images the batch makes."""
        return self.prompts * self.per_prompt

    @property
    def credits(self) -> float:
        """Credits the whole batch costs."""
        return self.images * self.credits_per_image

    @property
    def usd(self) -> float:
        """The same in US dollars (1 credit = $0.01)."""
        return self.credits * USD_PER_CREDIT


def batch_cost(form: PromptForm) -> BatchCost:
    """Price the prompts currently in the form with its chosen model."""
    model = form.chosen_model
    return BatchCost(prompts=len(form.prompt_texts()), per_prompt=form.per_prompt, credits_per_image=model.credits,
                     model_label=model.label)


def current_balance() -> float | None:
    """The account's credits, from a one-minute cache; None in demo mode or when the API (or Redis) cannot say."""
    app_services = services()
    if app_services.stability is None:
        return None
    try:
        connection = app_services.require_redis()
        cached = connection.get(BALANCE_KEY)
        if cached is not None:
            return float(cached)
        balance = app_services.stability.balance()
        connection.set(BALANCE_KEY, repr(balance), ex=BALANCE_TTL_SECONDS)
        return balance
    except (GenerationError, RedisError, QueueUnavailable, ValueError) as exc:
        log.info("balance unavailable: %s", getattr(exc, "reason", type(exc).__name__))
        return None
