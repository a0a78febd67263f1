"""What a batch will cost (the price table the page computes it from, and the price the page says it showed),
and the account's balance (cached briefly, shared by every web process)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

from redis.exceptions import RedisError

from app.generations.edits import price_of_edit
from app.generations.lifecycle import price_of
from app.prompts.forms import PromptForm
from app.providers.base import GenerationError
from app.providers.operations import OPERATIONS
from app.providers.options import DEFAULT_OPTIONS, MODELS, USD_PER_CREDIT, model_label
from app.services import QueueUnavailable, services
from app.variations.plan import Plan

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
    plan: Plan | None = None  # templates expanded or a grid: the images it makes, each priced

    @property
    def images(self) -> int:
        """How many images the batch makes."""
        return len(self.plan.images) if self.plan else self.prompts * self.per_prompt

    @property
    def credits(self) -> float:
        """Credits the whole batch costs."""
        return self.plan.credits if self.plan else self.images * self.credits_per_image

    @property
    def usd(self) -> float:
        """The same in US dollars (1 credit = $0.01)."""
        return self.credits * USD_PER_CREDIT


def batch_cost(form: PromptForm) -> BatchCost:
    """Price the prompts currently in the form with its chosen model, as the reservation will (a planned batch: by
    its plan, templates expanded and each grid cell priced)."""
    if form.plan is not None and form.uses_variations:
        plan = form.plan
        _, credits_per_image, label = plan.prices[0]
        return BatchCost(prompts=len(plan.prompts), per_prompt=plan.images_per_prompt,
                         credits_per_image=credits_per_image, model_label=label, plan=plan)
    return BatchCost(prompts=len(form.prompt_texts()), per_prompt=form.per_prompt,
                     credits_per_image=price_of(form.options()), model_label=form.chosen_model.label)


def edit_cost(operation: str, params: dict[str, object], images: int = 1) -> BatchCost:
    """Price an operation on `images` images as its reservation will (image-to-image: its chosen model's price)."""
    op = OPERATIONS[operation]
    default = next((spec.default for spec in op.fields if spec.name == "model"), None)
    model = params.get("model") if params.get("model") in MODELS else default
    label = f"{op.label}, {model_label(str(model))}" if op.credits is None and model else op.label
    return BatchCost(prompts=images, per_prompt=1, credits_per_image=price_of_edit(operation, params),
                     model_label=label)


def price_table() -> dict[str, object]:
    """What the page computes the cost from as the form changes: each model's price and name, by the same rule."""
    return {"models": {model.id: {"credits": price_of(replace(DEFAULT_OPTIONS, model=model.id)), "label": model.label}
                       for model in MODELS.values()},
            "default": DEFAULT_OPTIONS.model, "usd_per_credit": USD_PER_CREDIT}


def shown_price(posted: str | None) -> float | None:
    """The price the page says it showed (its expected_credits): None when not sent, NaN when not a number."""
    text = (posted or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


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
