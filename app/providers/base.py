"""What every image provider takes, returns and raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from app.providers.options import DEFAULT_OPTIONS, GenerationOptions


@dataclass(frozen=True)
class GenerationRequest:
    """One text-to-image request: a prompt and its options."""

    prompt: str
    options: GenerationOptions = field(default=DEFAULT_OPTIONS)


class AnswerBody(Protocol):
    """An HTTP answer's body still waiting in its socket."""

    def read(self) -> bytes:
        """Read the whole body (GenerationError if it breaks off)."""
        ...


@dataclass(frozen=True)
class EditRequest:
    """One request to make an image from an image: the operation, its fields, and the files it sends."""

    operation: str
    prompt: str
    options: GenerationOptions
    params: dict[str, object]  # the operation's own fields, named as the Stability API names them
    image: bytes = field(repr=False)
    image_type: str  # the source's content type as sent (the job may have re-encoded it)
    mask: bytes | None = field(default=None, repr=False)  # a PNG of the image's size: white is changed
    style_image: bytes | None = field(default=None, repr=False)
    style_type: str | None = None


@dataclass
class GeneratedImage:
    """An image as a provider returned it: its bytes, or the answer they are still to be read from."""

    mime_type: str
    seed: int | None
    finish_reason: str
    request_id: str | None = None
    content: bytes | None = field(default=None, repr=False)
    body: AnswerBody | None = field(default=None, repr=False)
    length: int | None = None  # the answer's size as announced (Content-Length), before it is read

    @property
    def size_hint(self) -> int | None:
        """The image's size in bytes: read, or as announced."""
        return len(self.content) if self.content is not None else self.length

    @property
    def is_filtered(self) -> bool:
        """True when the API blurred the output for breaking its moderation policy."""
        return self.finish_reason == "CONTENT_FILTERED"

    def read(self) -> bytes:
        """The image's bytes, read from the answer the first time they are asked for."""
        if self.content is None:
            if self.body is None:
                raise GenerationError("The API's answer was dropped before it was read")
            body, self.body = self.body, None
            self.content = body.read()
        return self.content


class GenerationError(Exception):
    """A request that produced no image, with a reason a person can act on."""

    def __init__(
        self,
        reason: str,
        *,
        transient: bool = False,
        status_code: int | None = None,
        error_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.status_code = status_code
        self.error_id = error_id
        self.request_id = request_id
        self.attempt: int | None = None  # which attempt met it, set by the job


class ImageProvider(Protocol):
    """Anything that turns a GenerationRequest (or an EditRequest) into a GeneratedImage."""

    name: str
    # True: an async operation is started (start_edit) and its result polled (edit_result); False: edit() does all.
    supports_async: bool

    def generate(self, request: GenerationRequest) -> GeneratedImage:
        """Make one image or raise GenerationError."""
        ...

    def edit(self, request: EditRequest) -> GeneratedImage:
        """Make one image from an image (a sync operation) or raise GenerationError."""
        ...

    def start_edit(self, request: EditRequest) -> str:
        """Send an async operation; its result id (GenerationError if it was not accepted)."""
        ...

    def edit_result(self, result_id: str) -> GeneratedImage | None:
        """An async operation's image, or None while it is still in progress."""
        ...
