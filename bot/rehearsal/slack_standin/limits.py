"""Slack's published limits, and the Block Kit / modal validation the stand-in applies with them.

:func:`validate_blocks` and :func:`validate_view` answer Slack-style error strings (``... [json-pointer:/blocks/0]``).
They cover the limits the bot can hit (lengths, counts, required fields, duplicate ids), not every rule Slack has.
"""

from __future__ import annotations

from typing import Any

__all__ = ["validate_blocks", "validate_view"]

# Slack's published limits (see /work/shared/reference/slack-platform.md, section 5).
MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
MESSAGE_TEXT_MAX = 40_000
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
URL_MAX = 3000
ID_MAX = 255  # action_id, block_id, callback_id, external_id
VIEW_TITLE_MAX = 24  # title, submit, close
PRIVATE_METADATA_MAX = 3000
VIEW_MAX_BYTES = 250_000
VIEW_STACK_MAX = 3
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def length(self, value: Any, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.err(f"must be less than {limit + 1} characters", pointer)

    def string(self, value: Any, limit: int, pointer: str, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.err("must provide a string", pointer)
            return
        if not isinstance(value, str):
            self.err("must be a string", pointer)
            return
        self.length(value, limit, pointer)

    def text(self, obj: Any, limit: int, pointer: str, *, plain_only: bool = False, required: bool = True) -> None:
        if obj is None:
            if required:
                self.err("must provide an object", pointer)
            return
        if not isinstance(obj, dict):
            self.err("must provide an object", pointer)
            return
        kind = obj.get("type")
        if plain_only and kind != "plain_text":
            self.err('must be "plain_text"', f"{pointer}/type")
        elif kind not in ("plain_text", "mrkdwn"):
            self.err("must be a valid enum value", f"{pointer}/type")
        value = obj.get("text")
        if not isinstance(value, str):
            self.err("must provide a string", f"{pointer}/text")
        elif not value:
            self.err("must be more than 0 characters", f"{pointer}/text")
        else:
            self.length(value, limit, f"{pointer}/text")

    def items(self, value: Any, limit: int, pointer: str, *, minimum: int = 0) -> list:
        if value is None:
            if minimum:
                self.err("must provide an array", pointer)
            return []
        if not isinstance(value, list):
            self.err("must provide an array", pointer)
            return []
        if len(value) > limit:
            self.err(f"no more than {limit} items allowed", pointer)
        if len(value) < minimum:
            self.err(f"must provide at least {minimum} items", pointer)
        return value

    def confirm(self, obj: Any, pointer: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.err("must provide an object", pointer)
            return
        self.text(obj.get("title"), 100, f"{pointer}/title", plain_only=True)
        self.text(obj.get("text"), 300, f"{pointer}/text")
        self.text(obj.get("confirm"), 30, f"{pointer}/confirm", plain_only=True)
        self.text(obj.get("deny"), 30, f"{pointer}/deny", plain_only=True)
        if obj.get("style") not in (None, "primary", "danger"):
            self.err("must be a valid enum value", f"{pointer}/style")

    def options(self, options: Any, limit: int, pointer: str) -> None:
        for i, option in enumerate(self.items(options, limit, pointer)):
            p = f"{pointer}/{i}"
            if not isinstance(option, dict):
                self.err("must provide an object", p)
                continue
            self.text(option.get("text"), 75, f"{p}/text")
            self.string(option.get("value"), 150, f"{p}/value", required=True)

    def element(self, el: Any, pointer: str) -> None:
        if not isinstance(el, dict):
            self.err("must provide an object", pointer)
            return
        kind = el.get("type")
        if not isinstance(kind, str):
            self.err("must provide a string", f"{pointer}/type")
            return
        self.string(el.get("action_id"), ID_MAX, f"{pointer}/action_id")
        if kind == "button":
            self.text(el.get("text"), BUTTON_TEXT_MAX, f"{pointer}/text", plain_only=True)
            self.string(el.get("value"), BUTTON_VALUE_MAX, f"{pointer}/value")
            self.string(el.get("url"), URL_MAX, f"{pointer}/url")
            if el.get("style") not in (None, "primary", "danger"):
                self.err("must be a valid enum value", f"{pointer}/style")
            self.confirm(el.get("confirm"), f"{pointer}/confirm")
        elif kind in ("static_select", "multi_static_select"):
            self.text(el.get("placeholder"), 150, f"{pointer}/placeholder", plain_only=True, required=False)
            if "option_groups" not in el:
                self.options(el.get("options"), 100, f"{pointer}/options")
            self.confirm(el.get("confirm"), f"{pointer}/confirm")
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(el.get("options"), 10, f"{pointer}/options")
        elif kind == "overflow":
            if isinstance(el.get("options"), list) and not 1 <= len(el["options"]) <= 5:
                self.err("must provide between 1 and 5 items", f"{pointer}/options")
            self.options(el.get("options"), 5, f"{pointer}/options")
        elif kind == "plain_text_input":
            self.text(el.get("placeholder"), 150, f"{pointer}/placeholder", plain_only=True, required=False)
            max_length = el.get("max_length")
            if isinstance(max_length, int) and max_length > 3000:
                self.err("must be less than or equal to 3000", f"{pointer}/max_length")
        elif kind == "image":
            self.string(el.get("image_url"), URL_MAX, f"{pointer}/image_url")
            self.string(el.get("alt_text"), 2000, f"{pointer}/alt_text", required=True)
        elif "select" in kind or kind.endswith("picker"):
            self.text(el.get("placeholder"), 150, f"{pointer}/placeholder", plain_only=True, required=False)

    def block(self, block: Any, pointer: str, *, surface: str) -> None:
        if not isinstance(block, dict):
            self.err("must provide an object", pointer)
            return
        kind = block.get("type")
        self.string(block.get("block_id"), ID_MAX, f"{pointer}/block_id")
        if kind == "section":
            if block.get("text") is None and block.get("fields") is None:
                self.err("must provide either text or fields", pointer)
            self.text(block.get("text"), SECTION_TEXT_MAX, f"{pointer}/text", required=False)
            for i, f in enumerate(self.items(block.get("fields"), SECTION_FIELDS_MAX, f"{pointer}/fields")):
                self.text(f, FIELD_TEXT_MAX, f"{pointer}/fields/{i}")
            if block.get("accessory") is not None:
                self.element(block["accessory"], f"{pointer}/accessory")
        elif kind == "header":
            self.text(block.get("text"), HEADER_TEXT_MAX, f"{pointer}/text", plain_only=True)
        elif kind == "context":
            for i, el in enumerate(self.items(block.get("elements"), 10, f"{pointer}/elements", minimum=1)):
                p = f"{pointer}/elements/{i}"
                if isinstance(el, dict) and el.get("type") == "image":
                    self.element(el, p)
                else:
                    self.text(el, SECTION_TEXT_MAX, p)
        elif kind == "actions":
            seen: set[str] = set()
            for i, el in enumerate(self.items(block.get("elements"), 25, f"{pointer}/elements", minimum=1)):
                p = f"{pointer}/elements/{i}"
                self.element(el, p)
                action_id = el.get("action_id") if isinstance(el, dict) else None
                if isinstance(action_id, str):
                    if action_id in seen:
                        self.err("action_id already exists", f"{p}/action_id")
                    seen.add(action_id)
        elif kind == "input":
            self.text(block.get("label"), 2000, f"{pointer}/label", plain_only=True)
            self.text(block.get("hint"), 2000, f"{pointer}/hint", plain_only=True, required=False)
            if block.get("element") is None:
                self.err("must provide an object", f"{pointer}/element")
            else:
                self.element(block["element"], f"{pointer}/element")
        elif kind == "image":
            self.string(block.get("image_url"), URL_MAX, f"{pointer}/image_url")
            self.string(block.get("alt_text"), 2000, f"{pointer}/alt_text", required=True)
            self.text(block.get("title"), 2000, f"{pointer}/title", plain_only=True, required=False)
        elif kind in ("divider", "rich_text", "markdown", "file", "video", "context_actions"):
            pass
        else:
            self.err(
                f"unsupported type: {kind}" if isinstance(kind, str) else "must provide a string", f"{pointer}/type"
            )


def _blocks_checker(blocks: Any, *, limit: int, pointer: str, surface: str) -> _Checker:
    checker = _Checker()
    if not isinstance(blocks, list):
        checker.err("must provide an array", pointer)
        return checker
    if len(blocks) > limit:
        checker.err(f"no more than {limit} items allowed", pointer)
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        checker.block(block, f"{pointer}/{i}", surface=surface)
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen:
                checker.err("duplicate block_id", f"{pointer}/{i}/block_id")
            seen.add(block_id)
    return checker


def validate_blocks(blocks: Any, *, limit: int = MESSAGE_MAX_BLOCKS, pointer: str = "/blocks") -> list[str]:
    """Slack-style error strings for message blocks (empty when valid)."""
    return _blocks_checker(blocks, limit=limit, pointer=pointer, surface="message").errors


def validate_view(view: Any, pointer: str = "/view") -> list[str]:
    """Slack-style error strings for a modal view (empty when valid)."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.err("must provide an object", pointer)
        return checker.errors
    if view.get("type") != "modal":
        checker.err('must be "modal"', f"{pointer}/type")
    checker.text(view.get("title"), VIEW_TITLE_MAX, f"{pointer}/title", plain_only=True)
    checker.text(view.get("submit"), VIEW_TITLE_MAX, f"{pointer}/submit", plain_only=True, required=False)
    checker.text(view.get("close"), VIEW_TITLE_MAX, f"{pointer}/close", plain_only=True, required=False)
    checker.string(view.get("private_metadata"), PRIVATE_METADATA_MAX, f"{pointer}/private_metadata")
    checker.string(view.get("callback_id"), ID_MAX, f"{pointer}/callback_id")
    checker.string(view.get("external_id"), ID_MAX, f"{pointer}/external_id")
    blocks = view.get("blocks")
    if blocks is None:
        checker.err("must provide an array", f"{pointer}/blocks")
    else:
        inner = _blocks_checker(blocks, limit=VIEW_MAX_BLOCKS, pointer=f"{pointer}/blocks", surface="modal")
        checker.errors.extend(inner.errors)
        if isinstance(blocks, list):
            has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
            if has_input and view.get("submit") is None:
                checker.err("must provide submit when the view has input blocks", f"{pointer}/submit")
    return checker.errors


def validate_home(view: Any, pointer: str = "/view") -> list[str]:
    """Slack-style error strings for an App Home view (``views.publish``; empty when valid): type ``home``, at most
    100 blocks, no title, submit or input blocks."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.err("must provide an object", pointer)
        return checker.errors
    if view.get("type") != "home":
        checker.err('must be "home"', f"{pointer}/type")
    checker.string(view.get("private_metadata"), PRIVATE_METADATA_MAX, f"{pointer}/private_metadata")
    checker.string(view.get("callback_id"), ID_MAX, f"{pointer}/callback_id")
    checker.string(view.get("external_id"), ID_MAX, f"{pointer}/external_id")
    blocks = view.get("blocks")
    if blocks is None:
        checker.err("must provide an array", f"{pointer}/blocks")
        return checker.errors
    checker.errors.extend(
        _blocks_checker(blocks, limit=VIEW_MAX_BLOCKS, pointer=f"{pointer}/blocks", surface="modal").errors
    )
    if isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks):
        checker.err("input blocks are not supported in a home view", f"{pointer}/blocks")
    return checker.errors
