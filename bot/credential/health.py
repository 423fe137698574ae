"""Credential health: notice when the admin credential stops working, tell the operators once, keep it alive.

:class:`CredentialHealth` wraps the bot's :class:`~bot.credential.base.TokenSource` (GraphClient gets the wrapper):

- ``token()`` delegates. A :class:`~bot.errors.CredentialError` that is not transient opens a *credential episode*;
  so does Graph refusing a token with HTTP 401 (GraphClient reports it through ``graph_refused``).
- An episode gets exactly **one** alert in ``OPS_CHANNEL`` naming the fix (``migrate-bot login`` on the bot host,
  with the error code and sentence, never a token). Further failures during the episode post nothing.
- The episode ends when Graph answers a request again (``graph_accepted``), or, for an episode opened by a failed
  token request, when a token can be had again. Then **one** "works again" note follows (only if the alert went out).
- The episode lives in the database (``bot_meta``), so a restart neither repeats the alert nor forgets the note.
- ``keep_alive()`` runs daily from the poller's scheduler: it redeems the admin's refresh token so Entra's 90-day
  inactivity window never runs out unnoticed, and it feeds the same episode logic.

Transient failures (authority or network down) never open an episode: the bot retries them, nobody must act.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import SQLAlchemyError

from bot.credential.base import (
    CredentialStatus,
    StaticToken,
    TokenSource,
    TransientCredentialError,
)
from bot.errors import CredentialError, GraphAuthError
from bot.slack.mrkdwn import escape
from bot.store import Store, utcnow

log = logging.getLogger(__name__)

META_KEY = "credential_episode"
KEEP_ALIVE_JOB_ID = "credential-keep-alive"
KEEP_ALIVE_INTERVAL = timedelta(days=1)
#: the first keep-alive runs this long after start (startup already exercises the credential)
KEEP_ALIVE_FIRST_DELAY = timedelta(minutes=5)
#: after an alert could not be posted (OPS_CHANNEL wrong, bot not in it, Slack down), wait this long to try again
ALERT_RETRY = timedelta(minutes=5)
FIX = "run `migrate-bot login` on the bot's host"
NO_ADMIN_CODE = "no_account"
NO_ADMIN_SENTENCE = "No admin is signed in (delegated mode): run `migrate-bot login` on the bot's host"


@dataclass
class Episode:
    """The credential is failing: since when, why (operator sentence, no secret), and whether ops were told."""

    code: str
    message: str
    source: str  # "token": a token request failed; "graph": Graph refused the token (401)
    since: datetime
    alerted: bool = False

    def to_json(self) -> str:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Episode:
        data = json.loads(text)
        return cls(
            code=str(data["code"]),
            message=str(data["message"]),
            source=str(data["source"]),
            since=datetime.fromisoformat(data["since"]),
            alerted=bool(data.get("alerted")),
        )


def alert_text(episode: Episode) -> str:
    """The one OPS_CHANNEL alert of an episode (mrkdwn)."""
    return (
        f":closed_lock_with_key: *migrate-bot's admin credential stopped working* (`{escape(episode.code)}`): "
        f"{escape(episode.message)}\n*Fix:* {FIX}, then `migrate-bot check`. Until then commands and job "
        "updates that need Microsoft Graph fail; I'll post here when it recovers."
    )


def recovered_text(episode: Episode, now: datetime) -> str:
    """The "works again" note that closes an alerted episode."""
    minutes = max(0, round((now - episode.since).total_seconds() / 60))
    took = f"{minutes} min" if minutes < 120 else f"{round(minutes / 60)} h"
    return (
        f":white_check_mark: *migrate-bot's admin credential works again* (it failed with "
        f"`{escape(episode.code)}` for {took})."
    )


def graph_refusal_sentence(error: GraphAuthError) -> str:
    code = f" {error.code}" if error.code else ""
    correlation = f" ({error.correlation()})" if error.correlation() else ""
    return (
        f"Microsoft Graph refused the admin's access token (HTTP 401{code}){correlation}: the admin's "
        "session was probably revoked or the sign-in is no longer valid."
    )


class CredentialHealth:
    """A :class:`TokenSource` (and GraphClient token feedback) that watches the credential it wraps."""

    def __init__(
        self,
        source: TokenSource,
        *,
        slack: WebClient,
        store: Store,
        channel: str | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.source = source
        self.slack = slack
        self.store = store
        self.channel = channel
        self.clock = clock
        self._state = threading.Lock()  # guards _episode and its persistence
        self._posting = threading.Lock()  # one alert or note in flight at a time
        self._next_alert_attempt: datetime | None = None
        self._episode: Episode | None = self._load()

    # The TokenSource
    def token(self, *, claims_challenge: str | None = None) -> str:
        try:
            value = self.source.token(claims_challenge=claims_challenge) if claims_challenge else self.source.token()
        except TransientCredentialError:
            raise
        except CredentialError as error:
            self._failed(error.code or "credential", str(error), "token")
            raise
        self._succeeded("token")
        return value

    # Feedback from GraphClient
    def graph_accepted(self) -> None:
        self._succeeded("graph")

    def graph_refused(self, error: GraphAuthError) -> None:
        self._failed(f"graph_{error.status_code}", graph_refusal_sentence(error), "graph")

    # Keep-alive and status
    def keep_alive(self, only_if: Callable[[], bool] | None = None) -> CredentialStatus | None:
        """Redeem the admin's refresh token now (daily job; skipped unless ``only_if()``, the leader). Never raises:
        failures open an episode or are logged."""
        if only_if is not None and not only_if():
            return None
        keep = getattr(self.source, "keep_alive", None)
        if keep is None:
            return None  # a static simulator token: nothing to keep alive
        try:
            status = keep()
        except TransientCredentialError as error:
            log.warning("credential keep-alive: %s (will try again at the next run)", error)
            return None
        except CredentialError as error:
            log.warning("credential keep-alive failed (%s)", error.code)
            self._failed(error.code or "credential", str(error), "token")
            return None
        self._succeeded("token")
        log.info("credential keep-alive: refresh token redeemed")
        return status

    def status(self) -> CredentialStatus | None:
        """The wrapped credential's status (no secret); None for a static simulator token."""
        status = getattr(self.source, "status", None)
        return status() if callable(status) else None

    def check_admin(self) -> str | None:
        """Delegated mode: is an admin signed in? Reads the cache metadata only (no network, no secret).

        Nobody signed in opens an episode (its one OPS_CHANNEL alert names the fix) and returns the sentence to log;
        a sign-in since then closes the episode. None when an admin is signed in, or in application/static mode.
        """
        try:
            status = self.status()
        except (CredentialError, OSError) as error:
            log.warning("credential status unreadable (%s)", type(error).__name__)
            return None
        if status is None or status.mode != "delegated":
            return None
        if status.signed_in:
            episode = self._episode
            if episode is not None and episode.code == NO_ADMIN_CODE:
                self._succeeded("token")
            return None
        detail = status.problem if status.problem and "signed in" not in status.problem else None
        sentence = NO_ADMIN_SENTENCE + (f" ({detail})" if detail else "")
        self._failed(NO_ADMIN_CODE, sentence, "token", quiet=True)
        return sentence

    def state(self) -> str:
        """``static`` (simulator token), ``ok``, ``no_admin`` (nobody signed in) or ``failing`` (an open episode):
        for ``/readyz``, ``check`` and the credential metric. Cheap: no disk, no network."""
        episode = self._episode
        if episode is not None:
            return "no_admin" if episode.code == NO_ADMIN_CODE else "failing"
        return "static" if self.is_static else "ok"

    @property
    def episode(self) -> Episode | None:
        """The open credential episode, if the credential is failing now."""
        return self._episode

    @property
    def is_static(self) -> bool:
        return isinstance(self.source, StaticToken)

    def schedule(self, scheduler: Any, *, only_if: Callable[[], bool] = lambda: True) -> None:
        """Add the daily keep-alive job to an APScheduler scheduler; it runs only while ``only_if()`` (the leader)."""
        scheduler.add_job(
            self.keep_alive,
            "interval",
            kwargs={"only_if": only_if},
            seconds=KEEP_ALIVE_INTERVAL.total_seconds(),
            id=KEEP_ALIVE_JOB_ID,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC) + KEEP_ALIVE_FIRST_DELAY,
        )

    # Episodes
    def _failed(self, code: str, message: str, source: str, *, quiet: bool = False) -> None:
        try:
            with self._state:
                episode = self._episode
                if episode is None:
                    episode = self._episode = Episode(code, message, source, self.clock())
                    self._save(episode)
                    if not quiet:
                        log.warning("admin credential failing (%s): alerting %s", code, self.channel or "the log only")
                if episode.alerted:
                    return
            if not self._posting.acquire(blocking=False):
                return  # another thread is posting the alert right now
            try:
                with self._state:
                    if self._episode is not episode or episode.alerted:
                        return
                    now = self.clock()
                    if self._next_alert_attempt is not None and now < self._next_alert_attempt:
                        return
                if self._post(alert_text(episode)):
                    with self._state:
                        self._next_alert_attempt = None
                        episode.alerted = True
                        if self._episode is episode:
                            self._save(episode)
                else:
                    self._next_alert_attempt = now + ALERT_RETRY
            finally:
                self._posting.release()
        except Exception:
            log.exception("credential health: recording a failure failed")

    def _succeeded(self, source: str) -> None:
        episode = self._episode
        if episode is None or (source == "token" and episode.source != "token"):
            return  # the fast path: healthy (or a token alone can't prove Graph takes it again)
        try:
            with self._posting:
                with self._state:
                    episode = self._episode
                    if episode is None or (source == "token" and episode.source != "token"):
                        return
                    self._episode = None
                    self._save(None)
                log.info("admin credential works again (was %s)", episode.code)
                if episode.alerted:
                    self._post(recovered_text(episode, self.clock()))
        except Exception:
            log.exception("credential health: recording a recovery failed")

    def _post(self, text: str) -> bool:
        if not self.channel:
            log.warning("OPS_CHANNEL is not set: credential alerts go to this log only")
            return False
        try:
            self.slack.chat_postMessage(channel=self.channel, text=text, unfurl_links=False, unfurl_media=False)
            return True
        except SlackApiError as error:
            log.error("could not post to OPS_CHANNEL %s: %s", self.channel, error.response.get("error"))
        except OSError as error:
            log.error("could not post to OPS_CHANNEL %s: %s", self.channel, type(error).__name__)
        return False

    def _load(self) -> Episode | None:
        try:
            text = self.store.get_meta(META_KEY)
            return Episode.from_json(text) if text else None
        except (SQLAlchemyError, ValueError, KeyError, TypeError) as error:
            log.warning("credential health: stored episode unreadable (%s); starting fresh", type(error).__name__)
            return None

    def _save(self, episode: Episode | None) -> None:
        try:
            self.store.set_meta(META_KEY, episode.to_json() if episode is not None else None)
        except SQLAlchemyError as error:
            log.warning("credential health: could not store the episode (%s)", type(error).__name__)
