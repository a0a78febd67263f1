"""Files that must go but could not be deleted (the store was down): remembered in Redis, deleted by the reaper."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis import Redis
from redis.exceptions import RedisError

from app.media_store.base import StoreError
from app.media_store.stores import Stores

log = logging.getLogger(__name__)
ORPHANS_KEY = "imagegen:media-orphans"


def discard(stores: Stores, redis: Redis | None, storage: str | None, names: Iterable[str | None]) -> int:
    """Delete these files now; any the store will not delete yet is remembered for later. Return how many waited."""
    waiting = []
    for name in filter(None, names):
        try:
            stores.get(storage).delete(name)
        except StoreError as exc:
            log.warning("could not delete %s from %s (%s); deleting it later", name, storage, exc)
            waiting.append(f"{storage or 'local'}:{name}")
    if waiting:
        remember(redis, waiting)
    return len(waiting)


def discard_many(stores: Stores, redis: Redis | None, files: Iterable[tuple[str | None, str]]) -> int:
    """Delete many (storage, name) files; once a store refuses one, the rest of its names wait without being tried.

    Return how many wait. Unlike discard, raise RedisError when they cannot be remembered: the caller then keeps
    the rows that name them, and tries again later.
    """
    waiting, down = [], set()
    for storage, name in files:
        if storage not in down:
            try:
                stores.get(storage).delete(name)
                continue
            except StoreError as exc:
                log.warning("could not delete %s from %s (%s); its files are deleted later", name, storage, exc)
                down.add(storage)
        waiting.append(f"{storage or 'local'}:{name}")
    if waiting:
        if redis is None:
            raise RedisError("no Redis to remember files to delete")
        redis.sadd(ORPHANS_KEY, *waiting)
    return len(waiting)


def remember(redis: Redis | None, entries: list[str]) -> None:
    """Note 'storage:name' entries to delete later (names are random and never reused, so later is safe)."""
    if redis is None:
        log.error("no Redis to remember files to delete: %s", entries)
        return
    try:
        redis.sadd(ORPHANS_KEY, *entries)
    except RedisError:
        log.exception("could not remember files to delete: %s", entries)


def waiting(redis: Redis) -> set[str]:
    """Every 'storage:name' still to delete."""
    return {entry.decode() for entry in redis.smembers(ORPHANS_KEY)}


def collect(stores: Stores, redis: Redis, limit: int = 200) -> int:
    """Delete up to `limit` remembered files; stop at the first the store still refuses. Return how many went."""
    deleted = 0
    for raw in redis.srandmember(ORPHANS_KEY, limit) or []:
        entry = raw.decode()
        storage, _, name = entry.partition(":")
        try:
            stores.get(storage).delete(name)
        except StoreError as exc:
            log.info("files to delete wait for the next sweep: %s", exc)
            break  # still down: try again next sweep
        redis.srem(ORPHANS_KEY, entry)
        deleted += 1
    return deleted
