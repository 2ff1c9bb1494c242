"""The chat follows `stable`: a promotion or rollback is picked up at the next question, no restart."""

from __future__ import annotations

from pathlib import Path

from potion import registry, versions
from potion.backends import FakeBackend, ModelInfo
from tui.app import PotionChat

TENSOR = [("t", [32], 0)]  # one tensor: a GGUF the registry accepts


def factory(model: str | None, url: str | None) -> FakeBackend:
    """Stands in for open_backend: answers as the model the spec (or the `stable` pointer) names."""
    spec = registry.default_spec(model)
    return FakeBackend(f"answer from {Path(spec).stem}", info=ModelInfo(name=spec, n_ctx=2048))


async def ask(pilot, wait_for, text: str) -> str:
    screen = pilot.app.chat_screen
    screen.prompt.load_text(text)
    screen.prompt.focus()
    await pilot.press("enter")
    await wait_for(pilot, lambda: not screen.generating, what="answer finished")
    return screen.conversation.messages()[-1].content


async def test_a_promotion_answers_the_next_question(potion_home, make_gguf, workdir, wait_for) -> None:
    old, new = str(make_gguf("old.gguf", tensors=TENSOR)), str(make_gguf("new.gguf", tensors=TENSOR))
    versions.promote(old)
    app = PotionChat(backend_factory=factory, workdir=workdir)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: not app.loading, what="model loaded")
        assert await ask(pilot, wait_for, "hi") == "answer from old"

        versions.promote(new)  # `potion models promote` in another terminal
        assert await ask(pilot, wait_for, "and now?") == "answer from new"
        assert app.model_name == new and any("promoted" in m for _, m in app.notices)

        versions.rollback()
        assert await ask(pilot, wait_for, "and now?") == "answer from old"


async def test_a_model_chosen_by_name_ignores_promotions(potion_home, make_gguf, workdir, wait_for) -> None:
    old, new, chosen = (str(make_gguf(f"{n}.gguf", tensors=TENSOR)) for n in ("old", "new", "chosen"))
    versions.promote(old)
    app = PotionChat(backend_factory=factory, workdir=workdir)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: not app.loading, what="model loaded")
        app.switch_model(chosen, None)
        await wait_for(pilot, lambda: app.model_name == chosen, what="switched")
        versions.promote(new)
        assert await ask(pilot, wait_for, "hi") == "answer from chosen"


async def test_a_damaged_pointer_keeps_the_model_with_one_warning(
    potion_home, make_gguf, workdir, wait_for
) -> None:
    versions.promote(str(make_gguf("old.gguf", tensors=TENSOR)))
    app = PotionChat(backend_factory=factory, workdir=workdir)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: not app.loading, what="model loaded")
        versions.path().write_text("{not json")
        assert await ask(pilot, wait_for, "hi") == "answer from old"
        assert await ask(pilot, wait_for, "again") == "answer from old"
        warnings = [m for s, m in app.notices if s == "warning" and "damaged" in m]
        assert len(warnings) == 1 and "keeping" in warnings[0]
