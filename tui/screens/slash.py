"""The slash commands of the chat screen (a mixin of ChatScreen, kept apart so each file stays small).

Each `cmd_*` gets the parsed arguments and returns True when the command line may be cleared from the
message box; on bad input it notifies the user and returns False, so nothing typed is lost.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from potion.errors import PotionError
from tui.codeblocks import export_markdown, slug
from tui.commands import Command, parse
from tui.context import (
    DEFAULT_SYSTEM_PROMPT,
    attachment_content,
    doc_prompt,
    explain_prompt,
    fenced,
    parse_path_line,
    read_text_file,
)
from tui.errors import AttachError, CommandError
from tui.screens.dialogs import ConfirmScreen, HelpScreen
from tui.widgets.conversation import MessageView, view_for

if TYPE_CHECKING:
    from tui.screens.chat import ChatScreen


class SlashCommands:
    async def run_command(self: ChatScreen, text: str) -> bool:
        try:
            command = parse(text)
            handler = getattr(self, f"cmd_{command.name}")
            return bool(await handler(command))
        except PotionError as exc:
            self.error(exc)
            return False

    async def show_info(self: ChatScreen, markdown: str) -> None:
        """A note in the conversation that is not part of the chat (not saved, not sent to the model)."""
        if self.query("#welcome"):
            await self.query_one("#welcome").remove()
        await self._remove_info()
        await self.conversation.mount(MessageView("info", markdown))
        self.conversation.scroll_end(animate=False)

    def _display_path(self: ChatScreen, path: Path) -> str:
        return self._relative(path)

    # -- commands -------------------------------------------------------------------------------------

    async def cmd_help(self: ChatScreen, command: Command) -> bool:
        self.app.push_screen(HelpScreen())
        return True

    async def cmd_model(self: ChatScreen, command: Command) -> bool:
        if not command.args:
            await self.show_info(_models_markdown(self.app.model_name))
            return True
        target = command.args[0]
        if re.match(r"https?://", target):
            self.app.switch_model(command.args[1] if len(command.args) > 1 else None, target)
        elif len(command.args) > 1:
            raise CommandError("/model NAME takes one argument", hint="usage: /model [NAME | URL [MODEL]]")
        else:
            self.app.switch_model(target, None)
        return True

    async def cmd_system(self: ChatScreen, command: Command) -> bool:
        current = self.session.system_prompt if self.session else self.pending_system
        if not command.rest:
            shown = current or f"(default) {DEFAULT_SYSTEM_PROMPT}"
            await self.show_info(f"**System prompt:** {shown}")
            return True
        prompt = None if command.rest == "-" else command.rest
        if self.session is None:
            self.pending_system = prompt
        else:
            self.store.set_system_prompt(self.session.id, prompt)
            self.session.system_prompt = prompt
        self.app.notify(
            "System prompt reset to the default." if prompt is None else "System prompt set for this chat."
        )
        return True

    async def cmd_file(self: ChatScreen, command: Command) -> bool:
        if self._busy():
            return False
        path = self.resolve_path(command.args[0])
        shown = self._display_path(path)
        content = attachment_content(shown, read_text_file(path))
        tokens = self.app.count_tokens(content)
        budget = (self.app.n_ctx() - self.app.max_tokens) // 2
        if tokens > budget:
            raise AttachError(
                f"{shown} is {tokens} tokens; attachments may use up to {budget} of the model's context",
                hint="use /explain PATH:LINE for one function",
            )
        await self.ensure_writable()
        session = self.ensure_session(f"{path.name}")
        stored = self.store.add_message(
            session.id, "context", content, meta={"path": shown, "tokens": tokens}
        )
        self.history.append(stored)
        if self.query("#welcome"):
            await self.query_one("#welcome").remove()
        await self._remove_info()
        await self.conversation.mount(view_for(stored))
        self.conversation.scroll_end(animate=False)
        self.refresh_sessions()
        self.app.notify(f"Attached {shown} ({tokens} tokens); it goes with your next question.")
        return True

    async def cmd_explain(self: ChatScreen, command: Command) -> bool:
        name, line = parse_path_line(command.args[0])
        path = self.resolve_path(name)
        return await self.send(explain_prompt(self._display_path(path), read_text_file(path), line))

    async def cmd_doc(self: ChatScreen, command: Command) -> bool:
        name, sep, function = command.args[0].rpartition(":")
        if not sep or not name or not function:
            raise CommandError("/doc needs PATH:FUNCTION", hint="for example /doc lib/stack.ex:push/2")
        path = self.resolve_path(name)
        return await self.send(doc_prompt(self._display_path(path), read_text_file(path), function))

    async def cmd_clear(self: ChatScreen, command: Command) -> bool:
        if self._busy():
            return False
        if self.session is not None:
            self.store.clear_session(self.session.id)
            self.history = []
        await self._show_welcome()
        self.measure_context()
        return True

    async def cmd_export(self: ChatScreen, command: Command) -> bool:
        if self.session is None or not self.history:
            raise CommandError("nothing to export yet", hint="ask something first")
        session, history = self.session, list(self.history)
        default = f"potion-chat-{session.id}-{slug(session.title)}.md"
        path = self.resolve_path(command.args[0] if command.args else default)
        text = export_markdown(session, history, model=self.app.model_name)

        def write(yes: bool | None = True) -> None:
            if not yes:
                return
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError as exc:
                self.error(f"Could not export to {path}: {exc.strerror or exc}")
                return
            self.app.notify(f"Exported {len(history)} messages to {self._display_path(path)}.")

        if path.exists():
            self.app.push_screen(
                ConfirmScreen(f"{self._display_path(path)} exists. Overwrite it?", yes="Overwrite"), write
            )
        else:
            write()
        return True

    async def cmd_scaffold(self: ChatScreen, command: Command) -> bool:
        from potion import scaffolds  # the templates are only needed here

        kinds = scaffolds.SCAFFOLDS
        if len(command.args) < 2:
            rows = "\n".join(f"| `{key}` | {kinds[key].title} |" for key in kinds)
            await self.show_info(
                "**/scaffold BEHAVIOUR Name [PATH]**, for example `/scaffold GenServer MyApp.Cache`.\n\n"
                f"| behaviour | what |\n|---|---|\n{rows}"
            )
            return len(command.args) == 0
        kind = _scaffold_kind(command.args[0], kinds)
        module = command.args[1]
        code = scaffolds.render(kind, module)
        target = command.args[2] if len(command.args) > 2 else scaffolds.module_path(module)
        path = self.resolve_path(target)
        shown = self._display_path(path)

        def write(path: Path = path) -> None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(code, encoding="utf-8")
            except OSError as exc:
                self.error(f"Could not write {shown}: {exc.strerror or exc}")
                return
            self.app.notify(f"Wrote {shown}.", title="Scaffold")

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            if path.exists():
                self.app.push_screen(
                    ConfirmScreen(f"{shown} already exists. Overwrite it?", yes="Overwrite"),
                    lambda again: write() if again else None,
                )
            else:
                write()

        question = f"Write {kinds[kind].title} {module} to {shown}?"
        if path.exists():
            question += " (the file exists; you will be asked again)"
        self.app.push_screen(ConfirmScreen(question, preview=fenced(code, "elixir"), yes="Write"), confirmed)
        return True


def _scaffold_kind(name: str, kinds: dict) -> str:
    """`GenServer`, `genserver`, `dynamic_supervisor`, `DynamicSupervisor`, `LiveView` -> a SCAFFOLDS key."""
    wanted = re.sub(r"[^a-z0-9]", "", name.lower())
    for key in kinds:
        if re.sub(r"[^a-z0-9]", "", key) == wanted:
            return key
    raise CommandError(f"no scaffold for {name}", hint="known: " + ", ".join(kinds))


def _models_markdown(current: str) -> str:
    from potion import registry  # hub machinery, only needed when listing

    rows = []
    for status in registry.list_models():
        mark = " (current)" if status.name == current or (status.path and status.path.name == current) else ""
        rows.append(f"| `{status.name}`{mark} | {status.title} | {status.state} |")
    return (
        f"**Model:** {current}\n\n| name | model | state |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n`/model NAME` switches to a registry model or a GGUF path; `/model http://host:8080` "
        "to an OpenAI-compatible server (llama-server, vLLM, Ollama)."
    )
