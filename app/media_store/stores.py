"""The stores a process uses: the one new files go to (MEDIA_STORAGE), and every one a row may name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.media_store.base import MediaStore, StoreError
from app.media_store.local import LocalStore
from app.media_store.s3 import S3Store, build_client


@dataclass
class Stores:
    """The current store and, by name, each configured one (rows keep the name of the one holding their files)."""

    current: MediaStore
    by_name: dict[str, MediaStore]

    def get(self, name: str | None) -> MediaStore:
        """The store a row names (rows from before the column existed are local)."""
        store = self.by_name.get(name or "local")
        if store is None:
            raise StoreError(f"files are in {name!r}, which is not configured (set S3_BUCKET)")
        return store

    @property
    def s3(self) -> S3Store | None:
        """The S3 store, when S3_BUCKET is set."""
        store = self.by_name.get("s3")
        return store if isinstance(store, S3Store) else None


def build_stores(config: Mapping[str, object]) -> Stores:
    """The local store always (rows may still be there during a move), the S3 one when a bucket is configured."""
    by_name: dict[str, MediaStore] = {"local": LocalStore(str(config["MEDIA_ROOT"]))}
    if config.get("S3_BUCKET"):
        client = build_client(config.get("S3_ENDPOINT_URL"), str(config["S3_REGION"]))  # type: ignore[arg-type]
        by_name["s3"] = S3Store(client, str(config["S3_BUCKET"]), str(config.get("S3_PREFIX") or ""),
                                url_ttl=int(config["S3_URL_TTL"]),  # type: ignore[call-overload]
                                serve_directly=config["S3_SERVE"] == "redirect")
    return Stores(current=by_name[str(config["MEDIA_STORAGE"])], by_name=by_name)
