"""Helper for the crash-recovery test: stream an answer headless, then die like a killed process."""

from __future__ import annotations

import asyncio
import os
import time

from potion.backends import FakeBackend
from tui.app import PotionChat


async def main() -> None:
    app = PotionChat(FakeBackend(" ".join(["token"] * 2000), token_delay=0.002))
    async with app.run_test() as pilot:
        deadline = time.monotonic() + 30
        while app.loading:
            await pilot.pause(0.02)
        app.chat_screen.prompt.load_text("question before the crash")
        await pilot.press("enter")
        while app.chat_screen.displayed_tokens < 20:
            if time.monotonic() > deadline:
                os._exit(3)
            await pilot.pause(0.02)
        os._exit(17)  # no cleanup, no atexit: what a crash or kill -9 leaves behind


if __name__ == "__main__":
    asyncio.run(main())
