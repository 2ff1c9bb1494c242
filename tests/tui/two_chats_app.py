"""Helper for the two-chats test: one headless chat on a shared history, in its own process.

    python two_chats_app.py NAME BARRIER_DIR OTHER_NAME

Sends "NAME 1", waits until the other chat has sent its first question too (a file in BARRIER_DIR), then
sends "NAME 2" and exits: the two chats are open on the same history at the same time.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from potion.backends import FakeBackend
from tui.app import PotionChat


async def main(name: str, barrier: Path, other: str) -> None:
    app = PotionChat(FakeBackend(f"answer for {name}"))
    async with app.run_test() as pilot:
        deadline = time.monotonic() + 60

        async def until(condition) -> None:
            while not condition():
                if time.monotonic() > deadline:
                    raise SystemExit(f"{name}: timed out")
                await pilot.pause(0.02)

        async def ask(text: str) -> None:
            app.chat_screen.prompt.load_text(text)
            app.chat_screen.prompt.focus()
            await pilot.press("enter")

            def answered() -> bool:
                history = app.chat_screen.history
                return len(history) >= 2 and history[-2].content == text and history[-1].role == "assistant"

            await until(lambda: answered() and not app.chat_screen.generating)

        await until(lambda: not app.loading)
        await ask(f"{name} 1")
        (barrier / name).touch()
        await until((barrier / other).exists)
        await ask(f"{name} 2")
    print("notices:", [text for _, text in app.notices])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3]))
