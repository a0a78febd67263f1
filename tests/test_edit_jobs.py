"""Operations on images run by a real worker against the fake API: the exact fields and file parts each endpoint
receives, the limits checked before anything is sent or charged, and async operations polled without a slot."""

from __future__ import annotations

import io
import os
import threading
import time

import pytest
import sqlalchemy as sa
from conftest import API_KEY, drain
from factories import make_batch, make_images
from fake_stability import FakeStability
from PIL import Image
from rq import Queue
from rq.registry import ScheduledJobRegistry

from app.accounts.users import local_user
from app.extensions import db
from app.generations import edits, lifecycle, reaper, spending
from app.generations.edits import EditRefused
from app.imaging.metadata import read_parameters
from app.models import Generation, Status
from app.providers.base import EditRequest, GenerationError
from app.providers.operations import MAX_REQUEST_BYTES
from app.providers.options import GenerationOptions
from app.providers.stability import StabilityClient
from app.services import services
from app.worker.pool import GenerationWorker
from app.worker.slots import ByteBudget

PROMPT = "a lighthouse at dusk"


def mask_png(width: int = 1024, height: int = 1024) -> bytes:
    """A painted square in the middle of a black mask."""
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (width // 4, height // 4, width // 2, height // 2))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def source(app, model: str = "ultra") -> int:
    """A finished image from the fake API (Ultra: 1024 × 1024; Core: 1536 × 1536)."""
    _, (gid,) = make_images(app, PROMPT, model=model)
    return gid


def edit(app, ids, operation: str, params: dict, mask: bytes | None = None) -> list[int]:
    """An edit batch of the local user's; its generations' ids."""
    with app.test_request_context():
        batch = edits.create_edit_batch(local_user(), list(ids), operation, params, mask)
        return [g.id for g in sorted(batch.generations, key=lambda g: g.position)]


def row(app, gid: int) -> Generation:
    """The row read afresh."""
    with app.app_context():
        generation = db.session.get(Generation, gid)
        db.session.expunge(generation)
        return generation


def used(app) -> float:
    """The local user's credits used this month."""
    with app.test_request_context():
        return spending.allowance(local_user()).used


@pytest.fixture
def fake():
    """The fake API, answering async results after one 'in progress' poll."""
    with FakeStability(api_key=API_KEY, async_polls=1) as server:
        yield server


@pytest.fixture
def api_app(make_app, fake):
    """An app calling the fake API; polls due at once."""
    return make_app(STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url,
                    STABILITY_RESULT_POLL_SECONDS=0)


SOURCE_PART = {"image": ("image/png", (1024, 1024))}
OPERATIONS = [
    ("image-to-image", {"prompt": PROMPT}, "generate/sd3",
     {"prompt": PROMPT, "strength": "0.6", "mode": "image-to-image", "model": "sd3.5-large", "output_format": "png"},
     SOURCE_PART, (1024, 1024)),
    ("image-to-image", {"prompt": PROMPT, "model": "ultra", "strength": 0.35, "seed": 42, "output_format": "jpeg"},
     "generate/ultra", {"prompt": PROMPT, "strength": "0.35", "seed": "42", "output_format": "jpeg"}, SOURCE_PART,
     (1024, 1024)),
    ("upscale-fast", {}, "upscale/fast", {"output_format": "png"}, SOURCE_PART, (4096, 4096)),
    ("upscale-conservative", {"prompt": PROMPT, "negative_prompt": "fog"}, "upscale/conservative",
     {"prompt": PROMPT, "creativity": "0.35", "negative_prompt": "fog", "output_format": "png"}, SOURCE_PART,
     (2048, 2048)),
    ("upscale-creative", {"prompt": PROMPT, "style_preset": "photographic"}, "upscale/creative",
     {"prompt": PROMPT, "creativity": "0.3", "style_preset": "photographic", "output_format": "png"}, SOURCE_PART,
     (4096, 4096)),
    ("inpaint", {"prompt": "a boat"}, "edit/inpaint", {"prompt": "a boat", "grow_mask": "5", "output_format": "png"},
     {**SOURCE_PART, "mask": ("image/png", (1024, 1024))}, (1024, 1024)),
    ("outpaint", {"left": 256}, "edit/outpaint",
     {"left": "256", "right": "0", "up": "0", "down": "0", "creativity": "0.5", "output_format": "png"}, SOURCE_PART,
     (1280, 1024)),
    ("erase", {}, "edit/erase", {"grow_mask": "5", "output_format": "png"},
     {**SOURCE_PART, "mask": ("image/png", (1024, 1024))}, (1024, 1024)),
    ("search-and-replace", {"search_prompt": "the lighthouse", "prompt": "a windmill"}, "edit/search-and-replace",
     {"search_prompt": "the lighthouse", "prompt": "a windmill", "grow_mask": "3", "output_format": "png"},
     SOURCE_PART, (1024, 1024)),
    ("search-and-recolor", {"select_prompt": "the sky", "prompt": "green"}, "edit/search-and-recolor",
     {"select_prompt": "the sky", "prompt": "green", "grow_mask": "3", "output_format": "png"}, SOURCE_PART,
     (1024, 1024)),
    ("remove-background", {"output_format": "webp"}, "edit/remove-background", {"output_format": "webp"},
     SOURCE_PART, (1024, 1024)),
    ("sketch", {"prompt": PROMPT}, "control/sketch", {"prompt": PROMPT, "control_strength": "0.7",
                                                      "output_format": "png"}, SOURCE_PART, (1024, 1024)),
    ("structure", {"prompt": PROMPT, "control_strength": 0.4}, "control/structure",
     {"prompt": PROMPT, "control_strength": "0.4", "output_format": "png"}, SOURCE_PART, (1024, 1024)),
    ("style-guide", {"prompt": PROMPT}, "control/style", {"prompt": PROMPT, "fidelity": "0.5", "output_format": "png"},
     SOURCE_PART, (1024, 1024)),
    ("replace-background-and-relight", {"background_prompt": "a beach", "light_source_direction": "left"},
     "edit/replace-background-and-relight",
     {"background_prompt": "a beach", "light_source_direction": "left", "light_source_strength": "0.3",
      "preserve_original_subject": "0.6", "original_background_depth": "0.5", "keep_original_background": "false",
      "output_format": "png"}, {"subject_image": ("image/png", (1024, 1024))}, (1024, 1024)),
    ("style-transfer", {"style_image": "STYLE"}, "control/style-transfer",
     {"style_strength": "1", "composition_fidelity": "0.9", "change_strength": "0.9", "output_format": "png"},
     {"init_image": ("image/png", (1024, 1024)), "style_image": ("image/png", (1024, 1024))}, (1024, 1024)),
]


@pytest.mark.parametrize(("operation", "params", "path", "fields", "parts", "result_size"), OPERATIONS,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(OPERATIONS)])
def test_each_operation_sends_exactly_its_fields_and_file_parts(api_app, fake, operation, params, path, fields,
                                                                parts, result_size):
    gid = source(api_app)
    if params.get("style_image") == "STYLE":
        params = {**params, "style_image": source(api_app)}
    fake.reset()
    (eid,) = edit(api_app, [gid], operation, params, mask_png() if "mask" in parts else None)
    drain(api_app)
    made = row(api_app, eid)
    assert made.status == Status.SUCCEEDED, made.error
    (sent,) = fake.edit_requests
    assert sent.path == "/v2beta/stable-image/" + path
    assert sent.form == fields
    assert {name: (sent.file_types[name], sent.file_sizes[name]) for name in sent.files} == parts
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert (made.width, made.height) == result_size and made.source_id == gid and made.operation == operation
    polls = fake.result_requests
    assert len(polls) == (2 if operation in ("upscale-creative", "replace-background-and-relight") else 0)
    with api_app.app_context():
        data = b"".join(services().stores.get(made.storage).open(made.file_name).chunks())
    assert f"Operation: {operation}, Source image: {gid}" in read_parameters(data)


def test_cores_larger_image_is_shrunk_to_one_megapixel_before_a_fast_upscale(api_app, fake):
    gid = source(api_app, model="core")  # 1536 × 1536
    fake.reset()
    (eid,) = edit(api_app, [gid], "upscale-fast", {})
    drain(api_app)
    assert row(api_app, eid).status == Status.SUCCEEDED
    (sent,) = fake.edit_requests
    assert sent.file_sizes["image"] == (1024, 1024) and sent.status == 200
    assert (row(api_app, eid).width, row(api_app, eid).height) == (4096, 4096)


def _noise_png(width: int, height: int) -> bytes:
    """A PNG that does not compress: 3 bytes a pixel."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def test_a_source_over_the_request_limit_is_re_encoded_to_fit(api_app, fake):
    gid = source(api_app)
    big = _noise_png(2048, 2048)
    assert len(big) > MAX_REQUEST_BYTES
    with api_app.app_context():
        generation = db.session.get(Generation, gid)
        services().stores.get(generation.storage).put(generation.file_name, big, "image/png")
        generation.width = generation.height = 2048
        generation.byte_size = len(big)
        db.session.commit()
    fake.reset()
    (eid,) = edit(api_app, [gid], "upscale-conservative", {"prompt": PROMPT})
    drain(api_app)
    assert row(api_app, eid).status == Status.SUCCEEDED, row(api_app, eid).error
    (sent,) = fake.edit_requests
    assert sent.status == 200 and sent.file_types["image"] == "image/jpeg" and sent.file_sizes["image"] == (2048, 2048)
    assert sent.files["image"] < MAX_REQUEST_BYTES


def test_the_fake_refuses_a_body_over_ten_mebibytes_with_413(fake):
    client = StabilityClient(API_KEY, base_url=fake.base_url)
    request = EditRequest("upscale-conservative", PROMPT, GenerationOptions(model="upscale-conservative"), {},
                          image=_noise_png(2048, 2048), image_type="image/png")
    with pytest.raises(GenerationError) as refused:
        client.edit(request)
    assert refused.value.status_code == 413 and not refused.value.transient


@pytest.mark.parametrize(("operation", "params", "size", "mask_size", "field"), [
    ("upscale-fast", {}, (24, 1024), None, None),  # a side under 32 px
    ("upscale-fast", {}, (32, 31), None, None),  # under 1,024 pixels in all
    ("upscale-creative", {"prompt": PROMPT}, (20, 2000), None, None),  # under 64 px once shrunk to 1 MP
    ("inpaint", {"prompt": "a boat"}, (4000, 3000), (4000, 3000), None),  # over 9.4 MP
    ("erase", {}, (60, 60), (60, 60), None),  # under 4,096 pixels
    ("inpaint", {"prompt": "a boat"}, (1024, 1024), (512, 512), "mask"),  # the mask's size is not the image's
    ("outpaint", {"left": 2000, "right": 1000}, (1024, 1024), None, "left"),  # wider than 2.5:1
    ("outpaint", {"up": 2001}, (1024, 1024), None, "up"),  # over 2,000 px on a side
    ("outpaint", {"left": 2000, "right": 2000, "up": 2000, "down": 2000}, (2000, 2000), None, "left"),  # over 16 MP
    ("search-and-replace", {"prompt": "x", "search_prompt": "y"}, (2600, 1000), None, None),  # the aspect rule
    ("remove-background", {}, (2100, 2100), None, None),  # over 4 MP
    ("style-transfer", {"style_image": "STYLE"}, (16_384, 64), None, None),  # a side over 16,383 px
])
def test_a_broken_limit_sends_nothing_and_charges_nothing(api_app, fake, operation, params, size, mask_size, field):
    gid = source(api_app)
    if params.get("style_image") == "STYLE":
        params = {**params, "style_image": source(api_app)}
    with api_app.app_context():
        generation = db.session.get(Generation, gid)
        generation.width, generation.height = size
        db.session.commit()
    before, rows = used(api_app), _count(api_app)
    fake.reset()
    with pytest.raises(EditRefused) as refused:
        edit(api_app, [gid], operation, params, mask_png(*mask_size) if mask_size else None)
    assert refused.value.field == field, refused.value.message
    drain(api_app)
    assert fake.requests == [] and used(api_app) == before and _count(api_app) == rows


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Generation))


def drain_scheduled(app, slots: int = 1) -> None:
    """A burst worker with RQ's scheduler: polls that are due are queued, then every queued job runs."""
    app_services = services(app)
    GenerationWorker([app_services.require_queue()], connection=app_services.require_redis(), app=app,
                     slots=slots).work(burst=True, with_scheduler=True)


def test_a_creative_upscale_arrives_after_its_polls_and_holds_no_slot_meanwhile(make_app):
    with FakeStability(api_key=API_KEY, async_polls=2) as fake:
        app = make_app(STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url,
                       STABILITY_RESULT_POLL_SECONDS=0.5)
        gid = source(app)
        (eid,) = edit(app, [gid], "upscale-creative", {"prompt": PROMPT})
        _, (text_id,) = make_batch(app, "a harbour", model="ultra")
        drain(app, slots=1)  # one slot: the text image can only run if the upscale gave its slot back
        waiting, text = row(app, eid), row(app, text_id)
        assert waiting.status == Status.RUNNING and waiting.result_id and text.status == Status.SUCCEEDED
        assert not services(app).in_flight.job_ids()
        with app.app_context():
            base = Queue(app.config["RQ_QUEUE_NAME"], connection=services().redis)
            assert ScheduledJobRegistry(queue=base).count == 1
        deadline = time.monotonic() + 20
        while row(app, eid).status == Status.RUNNING and time.monotonic() < deadline:
            time.sleep(0.3)
            drain_scheduled(app)
        made = row(app, eid)
        assert made.status == Status.SUCCEEDED and (made.width, made.height) == (4096, 4096)
        posts = [r for r in fake.edit_requests if r.path.endswith("/upscale/creative")]
        polls = fake.result_requests
        assert len(posts) == 1 and [p.status for p in polls] == [202, 202, 200]
        assert all(b.arrived_at - a.arrived_at >= 0.45 for a, b in zip(polls, polls[1:], strict=False))
        assert polls[0].path == "/v2beta/results/" + made.result_id


def test_an_emptied_redis_while_an_async_operation_waits_is_healed_by_the_reaper_without_a_second_request(make_app):
    with FakeStability(api_key=API_KEY, async_polls=1) as fake:
        app = make_app(STABILITY_API_KEY=API_KEY, STABILITY_API_BASE_URL=fake.base_url,
                       STABILITY_RESULT_POLL_SECONDS=60, REAPER_STALE_SECONDS=0.2)
        gid = source(app)
        (eid,) = edit(app, [gid], "replace-background-and-relight", {"background_prompt": "a beach"})
        drain(app)
        waiting = row(app, eid)
        assert waiting.status == Status.RUNNING and waiting.result_id
        services(app).redis.flushdb()  # the scheduled poll is gone with everything else
        time.sleep(0.3)
        with app.app_context():
            swept = reaper.sweep(app, force=True)
        assert swept.requeued_stale == 1
        requeued = row(app, eid)
        assert requeued.status == Status.QUEUED and requeued.result_id == waiting.result_id
        drain(app)  # the new job polls by the stored id: 202 (scheduled again), then after the next sweep, 200
        fake.release_results()
        time.sleep(0.3)
        with app.app_context():
            reaper.sweep(app, force=True)
        drain(app)
        made = row(app, eid)
        assert made.status == Status.SUCCEEDED, made.error
        assert len([r for r in fake.edit_requests if r.path.endswith("/replace-background-and-relight")]) == 1
        assert fake.result_requests[-1].status == 200


def test_a_canceled_waiting_operation_is_not_polled_again_nor_refunded(api_app, fake):
    gid = source(api_app)
    (eid,) = edit(api_app, [gid], "upscale-creative", {"prompt": PROMPT})
    with api_app.test_request_context():
        api_app.config["STABILITY_RESULT_POLL_SECONDS"] = 30
        drain(api_app)
        before = used(api_app)
        assert lifecycle.cancel_generation(eid) == 1
        assert used(api_app) == before
    drain(api_app)
    assert row(api_app, eid).status == Status.CANCELED and len(fake.edit_requests) == 1


def test_a_byte_budget_lets_a_large_taker_go_alone_and_small_ones_together():
    budget = ByteBudget(100)
    budget.take(60)
    budget.take(30)
    taken = threading.Event()
    waiter = threading.Thread(target=lambda: (budget.take(50), taken.set()))
    waiter.start()
    assert not taken.wait(0.2)  # 140 would not fit
    budget.give_back(60)
    assert taken.wait(2)
    budget.give_back(30)
    budget.give_back(50)
    budget.take(500)  # larger than all of it: goes alone
    assert budget.used == 500
    waiter.join()
