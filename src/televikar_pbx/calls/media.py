"""What callers hear from us, and what they leave: hold, announcements, messages.

Message capture: answer, play the prompt (the customer's own, else ours), then record
with ARI (``beep=true`` plays the tone) until the caller hangs up, presses #, or the
limit. Asterisk writes the WAV into its recording spool; we move it under the messages
directory (mode 0700, files 0600) and record a messages row. Under one second, nothing is
kept and the outcome is ``no_message`` (the desk decides that from the duration).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import wave
from collections.abc import Callable
from pathlib import Path

import structlog

from televikar_pbx.calls import naming
from televikar_pbx.calls.events import AriEvent
from televikar_pbx.calls.ports import CallStore, Telephony
from televikar_pbx.calls.state import ActiveCall
from televikar_pbx.domain.acd import MIN_MESSAGE_S
from televikar_pbx.domain.directory import HoldStyle
from televikar_pbx.errors import AriError, AriNotFound

log = structlog.get_logger("televikar_pbx.calls.media")

OUR_PROMPT = "sound:televikar/message-prompt"
HOLD_ANNOUNCEMENT = "sound:televikar/please-hold"


def sound(name: str) -> str:
    """An Asterisk media URI: our prompts are ``televikar/NAME`` sounds."""
    return name if ":" in name else f"sound:televikar/{name}"


class MediaFlows:
    def __init__(
        self,
        ari: Telephony,
        store: CallStore,
        *,
        recording_spool: Path | Callable[[str], Path],
        messages_dir: Path,
        max_message_s: int = 120,
    ) -> None:
        """``recording_spool``: Asterisk's recording spool, or with several nodes the
        spool of the node a call (by its key) is on."""
        self._ari = ari
        self._store = store
        self._spool_of = (
            recording_spool if callable(recording_spool) else lambda _key: recording_spool
        )
        self._messages = messages_dir
        self._max_s = max_message_s

    async def _answer(self, call: ActiveCall) -> None:
        if not call.answered:
            await self._ari.answer(call.caller_channel)
            call.answered = True

    # --- hold ----------------------------------------------------------------------------

    async def hold(self, call: ActiveCall, style: HoldStyle, media: str | None) -> None:
        try:
            await self._answer(call)
            call.hold = style
            if style is HoldStyle.MUSIC:
                await self._ari.start_moh(call.caller_channel, media)
            else:
                await self._ari.play(
                    call.caller_channel,
                    [sound(media or HOLD_ANNOUNCEMENT)],
                    naming.hold_playback(call.key),
                )
        except AriError as exc:
            call.log.warning("call.hold_failed", error=str(exc))

    async def stop_hold(self, call: ActiveCall) -> None:
        if call.hold is None:
            return
        call.hold = None
        # No music may be playing (announcement still on, or the channel is gone).
        with contextlib.suppress(AriError):
            await self._ari.stop_moh(call.caller_channel)

    # --- announcements and message capture ---------------------------------------------

    async def announce(self, call: ActiveCall, announcement: str) -> bool:
        """Start the announcement; False if it could not start (caller gone)."""
        try:
            await self._answer(call)
            playback_id = naming.announcement_playback(call.key)
            await self._ari.play(call.caller_channel, [sound(announcement)], playback_id)
        except AriError as exc:
            call.log.info("call.announcement_failed", error=str(exc))
            return False
        return True

    async def capture(self, call: ActiveCall, prompt: str | None) -> bool:
        """Answer and play the prompt; False if that failed (then nothing is recorded)."""
        try:
            await self.stop_hold(call)
            await self._answer(call)
            await self._ari.play(
                call.caller_channel, [sound(prompt or OUR_PROMPT)], naming.prompt_playback(call.key)
            )
        except AriError as exc:
            call.log.info("call.prompt_failed", error=str(exc))
            return False
        return True

    async def playback_finished(self, call: ActiveCall, playback_id: str) -> str | None:
        """React to the end of one of our playbacks: ``"announcement"`` when an
        announcement is over, ``"recording_started"`` when the prompt is over and the
        recording runs, ``"failed_capture"`` when the recording could not start."""
        if playback_id == naming.announcement_playback(call.key):
            return "announcement"
        if playback_id == naming.hold_playback(call.key) and call.hold is HoldStyle.ANNOUNCEMENT:
            with contextlib.suppress(AriError):  # then music until an agent answers
                await self._ari.start_moh(call.caller_channel)
            return None
        if playback_id == naming.prompt_playback(call.key) and call.recording_name is None:
            name = naming.recording(await call.record(), call.key)
            try:
                await self._ari.record(call.caller_channel, name, max_s=self._max_s)
            except AriError as exc:
                if not isinstance(exc, AriNotFound):
                    call.log.warning("call.record_failed", error=str(exc))
                return "failed_capture"
            call.recording_name = name
            return "recording_started"
        return None

    async def recording_done(self, call: ActiveCall, event: AriEvent) -> float:
        """The recording ended: keep it as a message (≥ 1 s) and return its length."""
        name = call.recording_name or ""
        source = self._spool_of(call.key) / f"{name}.wav"
        if event.type == "RecordingFailed" or not source.is_file():
            call.log.warning("call.recording_missing", file=str(source), ari_event=event.type)
            return 0.0
        duration = await asyncio.to_thread(wav_seconds, source)
        if duration < MIN_MESSAGE_S or call.customer is None:
            await asyncio.to_thread(source.unlink, True)
            call.log.info("call.no_message", seconds=round(duration, 2))
            return duration
        target = await asyncio.to_thread(self._keep, source, call.customer.id)
        await self._store.add_message(
            await call.record(), call.customer.id, call.caller_number, str(target), duration
        )
        call.log.info("call.message", seconds=round(duration, 2), file=str(target))
        return duration

    def recorded(self, call: ActiveCall) -> bool:
        """Whether the call's recording is in the spool, finished (after a restart)."""
        return (self._spool_of(call.key) / f"{recording_name(call)}.wav").is_file()

    def _keep(self, source: Path, customer_id: int) -> Path:
        folder = self._messages / str(customer_id)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self._messages, 0o700)
        target = folder / source.name
        return keep_private(source, target)


def keep_private(source: Path, target: Path) -> Path:
    """Move a recording out of Asterisk's spool into a file only the service user can
    read. Copied into a file we create 0600, then the original removed: a rename would
    keep Asterisk's owner (and mode), which we may not change in production."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as data:
        shutil.copyfileobj(data, out)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(target, 0o600)  # an existing target keeps its mode on O_CREAT
    source.unlink()
    return target


def recording_name(call: ActiveCall) -> str:
    """A unique, file-system-safe name: record id and channel id (of a call whose row
    is written: one adopted after a restart)."""
    if call.record_id is None:
        raise RuntimeError(f"call {call.key}: its row is not written yet")
    return naming.recording(call.record_id, call.key)


def wav_seconds(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate else 0.0
    except (wave.Error, EOFError, OSError):
        return 0.0
