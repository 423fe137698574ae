"""Factory functions: how each shared collaborator is built from :class:`bot.config.Settings`.

The composition roots call them: :class:`bot.app.MigrateBot` for the running bot, and each ``migrate-bot``
command in :mod:`bot.cli`. No component builds its own collaborators; it receives them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor as SchedulerThreads
from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk import WebClient

from bot.config import Settings
from bot.credential.base import StaticToken, TokenSource
from bot.graph.client import GraphClient
from bot.ops.startup import admin_credential, open_store
from bot.slack.observed import CallHook, ObservedWebClient
from bot.slack.retry import BoundedRateLimitRetryHandler, IdempotentConnectionRetryHandler
from bot.store import Store
from bot.workflow.policy import Policy, UsergroupMembers
from bot.workflow.poller import BATCHES_IN_FLIGHT

SCHEDULER_THREADS = 4


def build_slack_client(
    settings: Settings, *, timeout: float = 15, retries: bool = True, on_call: CallHook | None = None
) -> WebClient:
    """The Web API client: ``SLACK_API_URL``; with ``retries`` it waits out 429s and retries dropped connections
    of calls that change nothing (:mod:`bot.slack.retry`).

    No retry on 5xx or of a post after a dropped connection: a resent ``chat.postMessage`` could post twice.
    ``on_call``: each call's latency and error (metrics).
    """
    assert settings.slack_bot_token is not None
    handlers = [
        BoundedRateLimitRetryHandler(max_retry_count=5),
        IdempotentConnectionRetryHandler(max_retry_count=2),
    ]
    return ObservedWebClient(
        on_call=on_call,
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=handlers if retries else None,  # None: slack_sdk's default (no wait for 429s)
    )


def build_store(settings: Settings, url: str | None = None) -> Store:
    """The database (``DATABASE_URL`` or the SQLite file in the data folder), its schema brought up to date; a
    URL, driver or database it can't use is one line naming the setting (:func:`bot.ops.startup.open_store`)."""
    return open_store(url or settings.resolved_database_url)


def build_tokens(settings: Settings) -> TokenSource:
    """Where Graph tokens come from: ``GRAPH_STATIC_TOKEN`` (simulator), else the admin credential."""
    if settings.graph_static_token is not None:
        return StaticToken(settings.graph_static_token.get_secret_value())
    return admin_credential(settings)


def build_graph(settings: Settings, tokens: TokenSource, **options: Any) -> GraphClient:
    """The Graph client for ``GRAPH_BASE_URL``; ``options`` tune timeouts and retries (see :class:`GraphClient`)."""
    return GraphClient(settings.graph_base_url, tokens, **options)


def build_scheduler() -> BackgroundScheduler:
    """The one background scheduler (UTC) for the poller's sweep and every periodic job."""
    return BackgroundScheduler(
        timezone=UTC,
        executors={"default": SchedulerThreads(SCHEDULER_THREADS)},
        job_defaults={"coalesce": True, "max_instances": 1},
    )


def build_poll_pool() -> ThreadPoolExecutor:
    """The poller's threads: one Graph batch of RUNNING runs each (a slow Graph sees at most this many at once)."""
    return ThreadPoolExecutor(BATCHES_IN_FLIGHT, thread_name_prefix="poll")


def build_policy(settings: Settings, slack: WebClient, team_id: str | None) -> Policy:
    """The access rules from the settings (user groups resolved through ``slack``)."""
    return Policy(
        groups=UsergroupMembers(slack),
        team_id=team_id,
        allowed_users=frozenset(settings.allowed_slack_users),
        migrators_group=settings.migrators_usergroup,
        allowed_channels=frozenset(settings.allowed_channels),
        require_approval=settings.require_approval,
        approvers=frozenset(settings.approvers),
        approvers_group=settings.approvers_usergroup,
        allow_self_approval=settings.allow_self_approval,
    )
