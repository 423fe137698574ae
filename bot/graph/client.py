"""The Microsoft Graph client for cross-tenant migration jobs (beta; synchronous, on httpx).

Reads (GET) retry 429/503/504, timeouts and connection failures, honouring ``Retry-After``, else with capped
exponential backoff and jitter. :meth:`GraphClient.get_jobs` and :meth:`GraphClient.get_users` read many with
Graph JSON batching (20 per ``POST /$batch``) and retry a throttled or failed read inside a batch alone, after its
own ``Retry-After``. The actions (validate, migrate, cancel) are not idempotent: they are sent again
only when Graph certainly did not process them (429, or the connection could not be opened). After any other
failure (a timeout, a dropped connection, a 5xx) the job is read again and compared with a read made just before
the action (or the ``before=`` job the caller passes) to decide whether the action took effect.
"""

from __future__ import annotations

import binascii
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Protocol, TypeVar, runtime_checkable
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from bot.credential.base import TokenSource
from bot.encoding import b64url_decode
from bot.errors import (
    ConflictReason,
    CredentialError,
    GraphActionOutcomeUnknown,
    GraphAuthError,
    GraphBadRequest,
    GraphConflict,
    GraphError,
    GraphErrorInfo,
    GraphNotFound,
    GraphThrottled,
    GraphUnavailable,
)
from bot.graph.models import (
    ACTION_EFFECTS,
    MIGRATABLE,
    NOT_CANCELLABLE,
    VALIDATABLE,
    VALIDATION_TTL,
    JobStatus,
    MigrationJob,
    MigrationTask,
    parse_job_id,
    took_effect,
)
from bot.ops.logs import bind

log = logging.getLogger(__name__)

JOBS_PATH = "/solutions/migrations/crossTenantMigrationJobs"
BACKOFF_BASE = 1.0  # seconds before the first retry without Retry-After (then doubling, capped)
MAX_PAGES = 1000
BATCH_PATH = "/$batch"
BATCH_SIZE = 20  # Graph's limit of requests in one JSON batch
#: Answers to ``POST /$batch`` meaning "no batching here": read one job per request instead.
_BATCH_UNAVAILABLE = frozenset({404, 405, 501})
_RETRIED_STATUSES = frozenset({503, 504})
_CLAIMS_RE = re.compile(r'claims="([^"]+)"')
_Model = TypeVar("_Model", bound=BaseModel)
USER_SELECT = "id,userPrincipalName,displayName"
#: (operation, HTTP status or how it failed, seconds): one call per request sent
RequestHook = Callable[[str, str, float], None]


@runtime_checkable
class TokenFeedback(Protocol):
    """A token source that wants to know how Graph took its tokens (see :class:`bot.credential.health.CredentialHealth`)."""

    def graph_accepted(self) -> None:
        """Graph answered a request with 2xx: the token works."""
        ...

    def graph_refused(self, error: GraphAuthError) -> None:
        """Graph answered 401 (after any claims-challenge retry): the token was refused."""
        ...


@dataclass(frozen=True)
class ActionResult:
    """What validate/migrate/cancel returned.

    ``request_id``/``client_request_id`` are those of the action's own request. ``confirmed_by_reread`` is True
    when the action's answer was lost (timeout, 5xx) and re-reading the job showed that it took effect.
    """

    job: MigrationJob
    request_id: str | None
    client_request_id: str
    confirmed_by_reread: bool = False


class _NotSent(GraphUnavailable):
    """The request never reached Graph: no connection could be opened (connect error or timeout, pool timeout)."""


class GraphClient:
    """Graph's ``/solutions/migrations/crossTenantMigrationJobs`` for one tenant.

    ``tokens`` supplies the bearer token for each request (it is never logged). ``timeout`` bounds each read,
    write and wait for a pooled connection; ``connect_timeout`` the TCP/TLS connect. ``max_attempts`` counts
    the first try; a ``Retry-After`` longer than ``max_backoff`` is not waited for: the
    :class:`~bot.errors.GraphThrottled` (or 503) is raised at once so a person is not kept waiting. ``observe``
    hears of every request (operation, status, seconds), for metrics.
    """

    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        *,
        http: httpx.Client | None = None,
        timeout: float = 20.0,
        connect_timeout: float = 10.0,
        max_attempts: int = 4,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        observe: RequestHook | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._base_path = urlsplit(self._base).path.rstrip("/")
        self._observe = observe
        self._origin = _origin(self._base)
        self._tokens = tokens
        self._feedback = tokens if isinstance(tokens, TokenFeedback) else None
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(follow_redirects=False)
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._max_attempts = max(1, max_attempts)
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._read_retrying = self._retrying(_retryable_read)  # reusable: tenacity keeps per-call state per thread
        self._batching = True  # until Graph (or a proxy) answers 404/405/501 to a batch

    @property
    def batching(self) -> bool:
        """False once a ``POST /$batch`` was refused as unavailable: reads go one job per request."""
        return self._batching

    # Reads
    def get_job(self, job_id: str) -> MigrationJob:
        """One job. Raises :class:`~bot.errors.InvalidJobId` before any request for a non-GUID id."""
        response = self._get(self._job_url(parse_job_id(job_id)))
        return _model(MigrationJob, _json(response), response)

    def get_jobs(
        self, job_ids: Iterable[str], *, max_wait: float | None = None
    ) -> dict[str, MigrationJob | GraphError]:
        """Many jobs, by lower-case id: each a job or the :class:`~bot.errors.GraphError` of its own read.

        Read 20 at a time with ``POST /$batch``; a 429/503/504 inside a batch is retried for that job alone, after
        its own ``Retry-After`` (else capped backoff), up to ``max_attempts``. When the batch endpoint answers
        404/405/501 the jobs are read with single GETs, and so is every later call. A failure of the whole batch
        (after its retries) is every job's error; a :class:`~bot.errors.CredentialError` is raised. ``max_wait``:
        a job asked to wait longer than this (or than ``max_backoff``) is not retried but answered with its error.
        """
        ids = list(dict.fromkeys(parse_job_id(job_id) for job_id in job_ids))
        bodies = self._read_many({job_id: f"{JOBS_PATH}/{job_id}" for job_id in ids}, max_wait)
        return {job_id: _parsed(MigrationJob, body) for job_id, body in bodies.items()}

    def list_jobs(self, *, max_pages: int | None = None) -> list[MigrationJob]:
        """Every job of the tenant, following ``@odata.nextLink`` to the last page (or only ``max_pages``)."""
        return [_model(MigrationJob, item, None) for item in self._pages(self._base + JOBS_PATH, max_pages)]

    def list_tasks(self, job_id: str) -> list[MigrationTask]:
        """Every user (task) of a job with its per-workload statuses, all pages."""
        url = self._job_url(parse_job_id(job_id)) + "/users"
        return [_model(MigrationTask, item, None) for item in self._pages(url)]

    def get_user(self, user_id: str) -> dict[str, Any]:
        """``GET /users/{id}?$select=id,userPrincipalName,displayName`` (needs User.ReadBasic.All)."""
        return _json(self._get(self._base + _user_path(user_id)))

    def get_users(
        self, user_ids: Iterable[str], *, max_wait: float | None = None
    ) -> dict[str, dict[str, Any] | GraphError]:
        """Many users (id, userPrincipalName, displayName), by lower-case id: each a user or the
        :class:`~bot.errors.GraphError` of its own read. Batched, retried and falling back like :meth:`get_jobs`."""
        ids = list(dict.fromkeys(user_id.lower() for user_id in user_ids))
        return self._read_many({user_id: _user_path(user_id) for user_id in ids}, max_wait)

    # Actions
    def validate_job(self, job_id: str, *, before: MigrationJob | None = None) -> ActionResult:
        """``POST {id}/validate``. ``before``: a fresh read of the job, saving the GET made to compare with."""
        return self._action("validate", job_id, before)

    def migrate_job(self, job_id: str, *, before: MigrationJob | None = None) -> ActionResult:
        """``POST {id}/migrate`` (see :meth:`validate_job` for ``before``)."""
        return self._action("migrate", job_id, before)

    def cancel_job(self, job_id: str, *, before: MigrationJob | None = None) -> ActionResult:
        """``POST {id}/cancel``. Graph answers 202 with a cancel response (status, message), not a job: the
        result's job is the job read before the call with that status and message (no extra request)."""
        return self._action("cancel", job_id, before)

    def get_task(self, job_id: str, task_id: str) -> MigrationTask:
        """One user (task) of a job; :class:`~bot.errors.GraphNotFound` when the user is not in the batch."""
        response = self._get(f"{self._job_url(parse_job_id(job_id))}/users/{parse_job_id(task_id)}")
        return _model(MigrationTask, _json(response), response)

    def cancel_task(self, job_id: str, task_id: str) -> dict[str, Any]:
        """``POST {id}/users/{taskId}/cancel``: take one user out of the batch. Sent once (again only when it
        certainly did not reach Graph); returns Graph's cancel response (``status``, ``message``)."""
        url = f"{self._job_url(parse_job_id(job_id))}/users/{parse_job_id(task_id)}/cancel"
        response = self._retrying(lambda error: isinstance(error, (GraphThrottled, _NotSent)))(
            self._request, "POST", url
        )
        return _json(response) if response.content.strip() else {}

    def update_job(self, job_id: str, *, complete_after: datetime) -> None:
        """``PATCH {id}`` with ``completeAfterDateTime`` (the only writable field). Setting a date is idempotent,
        so it is retried like a read."""
        moment = complete_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._read_retrying(
            self._request,
            "PATCH",
            self._job_url(parse_job_id(job_id)),
            content=json.dumps({"completeAfterDateTime": moment}).encode(),
        )

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Batched reads
    def _read_many(self, paths: dict[str, str], max_wait: float | None) -> dict[str, dict[str, Any] | GraphError]:
        """GETs of ``{key: path relative to the version}``, 20 to a ``POST /$batch`` (or one by one once batching
        is unavailable): each key's JSON body or the error of its own read."""
        keys = list(paths)
        results: dict[str, dict[str, Any] | GraphError] = {}
        for start in range(0, len(keys), BATCH_SIZE):
            chunk = {key: paths[key] for key in keys[start : start + BATCH_SIZE]}
            results.update(self._batch_reads(chunk, max_wait) if self._batching else self._single_reads(chunk))
        return {key: results[key] for key in keys}  # in the order asked, retried reads too

    def _single_reads(self, paths: dict[str, str]) -> dict[str, dict[str, Any] | GraphError]:
        results: dict[str, dict[str, Any] | GraphError] = {}
        for key, path in paths.items():
            try:
                results[key] = _json(self._get(self._base + path))
            except GraphError as error:
                results[key] = error
        return results

    def _batch_reads(self, paths: dict[str, str], max_wait: float | None) -> dict[str, dict[str, Any] | GraphError]:
        """At most 20 reads: one batch, then again for the reads whose own answer asks for a retry."""
        pending = {str(n): key for n, key in enumerate(paths)}
        due = dict.fromkeys(pending, 0.0)  # monotonic time each may be sent again
        attempts = dict.fromkeys(pending, 0)
        results: dict[str, dict[str, Any] | GraphError] = {}
        longest = self._max_backoff if max_wait is None else min(max_wait, self._max_backoff)
        skew = 0.0  # keeps the schedule when ``sleep`` returns early (tests inject one that does not sleep)
        while pending:
            now = time.monotonic() + skew
            wake = min(due[n] for n in pending)
            if wake > now:
                self._sleep(wake - now)
                skew = max(skew, wake - time.monotonic())
                now = time.monotonic() + skew
            ready = {n: paths[key] for n, key in pending.items() if due[n] <= now}
            try:
                answers = self._send_batch(ready)
            except GraphError as error:
                if error.status_code in _BATCH_UNAVAILABLE:
                    log.warning("Graph batching is unavailable (HTTP %s): reading one by one", error.status_code)
                    self._batching = False
                    results.update(self._single_reads({key: paths[key] for key in pending.values()}))
                    return results
                for n in ready:
                    results[pending.pop(n)] = error
                continue
            for n, path in ready.items():
                outcome = _batch_outcome(answers.get(n), path)
                attempts[n] += 1
                if isinstance(outcome, GraphError) and attempts[n] < self._max_attempts and _retryable_read(outcome):
                    wait = _retry_after_of(outcome)
                    wait = self._backoff(attempts[n]) if wait is None else wait
                    if wait <= longest:
                        due[n] = time.monotonic() + skew + wait
                        continue
                results[pending.pop(n)] = outcome
        return results

    def _send_batch(self, requests: dict[str, str]) -> dict[str, dict[str, Any]]:
        """One ``POST /$batch`` of GETs (``{request id: path}``); the answers by request id."""
        body = {"requests": [{"id": n, "method": "GET", "url": path} for n, path in requests.items()]}
        response = self._read_retrying(
            self._request, "POST", self._base + BATCH_PATH, content=json.dumps(body).encode()
        )
        answers = _json(response).get("responses")
        if not isinstance(answers, list):
            raise _unreadable(response, "a batch answer without 'responses'")
        return {str(answer.get("id")): answer for answer in answers if isinstance(answer, dict)}

    # The action protocol
    def _action(self, action: str, job_id: str, before: MigrationJob | None) -> ActionResult:
        job_id = parse_job_id(job_id)
        if before is None or before.id.lower() != job_id:
            before = self.get_job(job_id)
        url = f"{self._job_url(job_id)}/{action}"
        # Sent again only when Graph certainly did not process it (429, or never connected).
        retrying = self._retrying(lambda error: isinstance(error, (GraphThrottled, _NotSent)))
        try:
            response = retrying(self._request, "POST", url)
        except _NotSent as error:
            raise GraphUnavailable(
                replace(
                    error.info,
                    message=(
                        f"{error.info.message} The {action} did NOT reach Graph and was not applied; it is safe to "
                        "retry."
                    ),
                )
            ) from error
        except GraphThrottled:
            raise
        except GraphConflict as conflict:  # why: from the job as it is now, not from Graph's wording
            raise self._explained(action, job_id, conflict) from conflict
        except GraphUnavailable as error:  # timeout, dropped connection or 5xx: did it happen?
            return self._confirm(action, job_id, before, error)
        request_id = response.headers.get("request-id")
        client_request_id = response.request.headers["client-request-id"]
        body = _json(response) if response.content.strip() else {}
        if action == "cancel":
            job = _cancelled(before, body)
        elif body.get("id"):
            job = _model(MigrationJob, body, response)
        else:  # an answer without the job (e.g. 202/204): read it
            job = self.get_job(job_id)
        log.info(
            "%s %s accepted: %s (request-id %s, client-request-id %s)",
            action,
            job_id,
            job.status_label,
            request_id,
            client_request_id,
        )
        return ActionResult(job, request_id, client_request_id)

    def _explained(self, action: str, job_id: str, conflict: GraphConflict) -> GraphConflict:
        """The 409 with its reason decided from the job read back (or, if it can't be read, the error code)."""
        try:
            after: MigrationJob | None = self.get_job(job_id)
        except (GraphError, CredentialError) as reread:
            log.info("%s %s: 409, and reading the job back failed (%s)", action, job_id, reread)
            after = None
        reason = conflict_reason(action, after, conflict.code, datetime.now(UTC))
        log.info("%s %s: 409 %s (%s)", action, job_id, reason.value, after.status_label if after else "job unread")
        return GraphConflict(conflict.info, reason, after)

    def _confirm(self, action: str, job_id: str, before: MigrationJob, failure: GraphUnavailable) -> ActionResult:
        log.warning("%s %s: no clear answer (%s); reading the job back", action, job_id, failure)
        try:
            after = self.get_job(job_id)
        except (GraphError, CredentialError) as reread:
            raise GraphActionOutcomeUnknown(
                replace(
                    failure.info,
                    message=(
                        f"{failure.info.message} Reading the job back failed too ({reread}), so the outcome of the "
                        f"{action} is unknown. Check the job's status before retrying."
                    ),
                )
            ) from failure
        if took_effect(
            action,
            after,
            since=before.last_updated,
            came_from_elsewhere=before.status not in ACTION_EFFECTS[action],
        ):
            log.info("%s %s took effect (read back: %s)", action, job_id, after.status_label)
            return ActionResult(after, failure.request_id, failure.client_request_id or "", confirmed_by_reread=True)
        raise GraphUnavailable(
            replace(
                failure.info,
                message=(
                    f"{failure.info.message} The {action} did NOT take effect (the job is still {after.status_label}); "
                    "it is safe to retry."
                ),
            )
        ) from failure

    # HTTP
    def _job_url(self, job_id: str) -> str:
        return f"{self._base}{JOBS_PATH}/{job_id}"

    def _pages(self, url: str, max_pages: int | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        next_url: str | None = url
        while next_url and (max_pages is None or len(seen) < max_pages):
            if next_url in seen or len(seen) >= MAX_PAGES:
                raise GraphError(GraphErrorInfo(None, None, "Graph's paging did not end (a nextLink repeated)."))
            seen.add(next_url)
            response = self._get(next_url)
            body = _json(response)
            value = body.get("value")
            if not isinstance(value, list):
                raise _unreadable(response, "a collection without 'value'")
            items.extend(value)
            next_url = body.get("@odata.nextLink")
            if next_url is not None and _origin(next_url) != self._origin:
                raise GraphError(
                    GraphErrorInfo(
                        response.status_code, None, "Graph's nextLink points to another host; not following it."
                    )
                )
        return items

    def _get(self, url: str) -> httpx.Response:
        return self._read_retrying(self._request, "GET", url)

    def _retrying(self, retryable: Callable[[BaseException], bool]) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(self._max_attempts) | self._asks_too_long,
            wait=self._wait,
            retry=retry_if_exception(retryable),
            sleep=self._sleep,
            reraise=True,
        )

    def _wait(self, state: RetryCallState) -> float:
        retry_after = _retry_after_of(state.outcome.exception() if state.outcome else None)
        if retry_after is not None:
            return retry_after
        return self._backoff(state.attempt_number)

    def _backoff(self, attempt: int) -> float:
        """Capped exponential backoff with jitter after ``attempt`` failed tries."""
        ceiling = min(self._max_backoff, BACKOFF_BASE * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _asks_too_long(self, state: RetryCallState) -> bool:
        retry_after = _retry_after_of(state.outcome.exception() if state.outcome else None)
        return retry_after is not None and retry_after > self._max_backoff

    def _request(self, method: str, url: str, *, content: bytes | None = None) -> httpx.Response:
        """One request (two when Graph answers 401 with a claims challenge); non-2xx raise a GraphError.
        ``content``: a JSON body."""
        response = self._send(method, url, content=content)
        if response.status_code == 401:
            claims = _claims_challenge(response)
            if claims is not None:
                log.info("Graph asked for more claims; getting a new token and sending again")
                response = self._send(method, url, claims=claims, content=content)
        if response.is_success:
            if self._feedback is not None:
                self._feedback.graph_accepted()
            return response
        error = _error_for(response)
        if response.status_code == 401 and self._feedback is not None and isinstance(error, GraphAuthError):
            self._feedback.graph_refused(error)
        raise error

    def _send(
        self, method: str, url: str, *, claims: str | None = None, content: bytes | None = None
    ) -> httpx.Response:
        client_request_id = str(uuid.uuid4())
        token = self._tokens.token(claims_challenge=claims) if claims else self._tokens.token()
        headers = {
            "Authorization": f"Bearer {token}",
            "client-request-id": client_request_id,
            "Accept": "application/json",
        }
        if content is not None:
            headers["Content-Type"] = "application/json"
        path = urlsplit(url).path
        started = time.monotonic()
        outcome = "not_sent"
        try:
            response = self._http.request(method, url, headers=headers, content=content, timeout=self._timeout)
            outcome = str(response.status_code)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            log.info(
                "%s %s: not sent (%s), client-request-id %s", method, path, type(error).__name__, client_request_id
            )
            raise _NotSent(
                GraphErrorInfo(
                    None,
                    None,
                    f"Could not connect to Microsoft Graph ({type(error).__name__}).",
                    None,
                    client_request_id,
                )
            ) from error
        except httpx.TimeoutException as error:
            outcome = "timeout"
            log.info("%s %s: %s, client-request-id %s", method, path, type(error).__name__, client_request_id)
            raise GraphUnavailable(
                GraphErrorInfo(
                    None,
                    None,
                    f"Microsoft Graph did not answer in time ({type(error).__name__}).",
                    None,
                    client_request_id,
                )
            ) from error
        except httpx.TransportError as error:
            outcome = "transport_error"
            log.info("%s %s: %s, client-request-id %s", method, path, type(error).__name__, client_request_id)
            raise GraphUnavailable(
                GraphErrorInfo(
                    None,
                    None,
                    f"The connection to Microsoft Graph failed ({type(error).__name__}).",
                    None,
                    client_request_id,
                )
            ) from error
        finally:
            if self._observe is not None:
                self._observe(_operation(method, path, self._base_path), outcome, time.monotonic() - started)
        bind("graph_request_id", response.headers.get("request-id"))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s -> %s in %.0f ms (request-id %s, client-request-id %s)",
                method,
                path,
                response.status_code,
                (time.monotonic() - started) * 1000,
                response.headers.get("request-id"),
                client_request_id,
            )
        return response


# Helpers
def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _operation(method: str, path: str, base_path: str) -> str:
    """A request's operation for metrics (``get_job``, ``migrate``, ``get_user`` ...), never an id."""
    segments = [part for part in path[len(base_path) :].split("/") if part] if path.startswith(base_path) else []
    if segments == ["$batch"]:
        return "batch"
    if len(segments) == 2 and segments[0].lower() == "users":
        return "get_user"
    if [part.lower() for part in segments[:3]] != ["solutions", "migrations", "crosstenantmigrationjobs"]:
        return f"{method.lower()}_other"
    rest = [part.lower() for part in segments[3:]]
    if not rest:
        return "list_jobs" if method == "GET" else f"{method.lower()}_jobs"
    if len(rest) == 1:
        return "get_job" if method == "GET" else f"{method.lower()}_job"
    if rest[1] == "users":
        return "list_tasks" if len(rest) == 2 else "task"
    return rest[1] if rest[1] in ("validate", "migrate", "cancel") else f"{method.lower()}_other"


def _retryable_read(error: BaseException) -> bool:
    if isinstance(error, (GraphThrottled, _NotSent)):
        return True
    return isinstance(error, GraphUnavailable) and (error.status_code is None or error.status_code in _RETRIED_STATUSES)


def _retry_after_of(error: BaseException | None) -> float | None:
    return getattr(error, "retry_after", None)


def _cancelled(before: MigrationJob, body: dict[str, Any]) -> MigrationJob:
    status = str(body.get("status") or JobStatus.PENDING_CANCEL.value)
    return before.model_copy(
        update={"status": JobStatus.parse(status), "raw_status": status, "message": body.get("message", before.message)}
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise _unreadable(response, "a body that is not JSON") from None
    if not isinstance(body, dict):
        raise _unreadable(response, "a JSON body that is not an object")
    return body


def _model(model: type[_Model], data: Any, response: httpx.Response | None) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _unreadable(
            response, f"a {model.__name__} this client cannot read ({error.error_count()} problems)"
        ) from None


def _unreadable(response: httpx.Response | None, what: str) -> GraphError:
    request_id = response.headers.get("request-id") if response is not None else None
    client_request_id = response.request.headers.get("client-request-id") if response is not None else None
    status = response.status_code if response is not None else None
    return GraphError(GraphErrorInfo(status, None, f"Graph returned {what}.", request_id, client_request_id))


def _error_for(response: httpx.Response) -> GraphError:
    """The typed error for a non-2xx answer, with Graph's code, message and correlation ids."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return _error_from(
        response.status_code,
        response.headers,
        body,
        response.reason_phrase,
        response.request.headers.get("client-request-id"),
    )


def _batch_outcome(answer: dict[str, Any] | None, path: str) -> dict[str, Any] | GraphError:
    """One read's answer inside a batch: its JSON body, or the error of that answer alone."""
    what = path.split("?", 1)[0]
    if answer is None:
        return GraphError(GraphErrorInfo(None, None, f"Graph's batch answer left out {what}."))
    status = answer.get("status")
    body = answer.get("body")
    if not isinstance(status, int):
        return GraphError(GraphErrorInfo(None, None, f"Graph's batch answer for {what} has no status."))
    if 200 <= status < 300 and isinstance(body, dict):
        return body
    if 200 <= status < 300:
        return GraphError(GraphErrorInfo(status, None, f"Graph returned {what} without a body."))
    headers = httpx.Headers({str(k): str(v) for k, v in (answer.get("headers") or {}).items()})
    return _error_from(status, headers, body, _reason(status), None)


def _parsed(model: type[_Model], body: dict[str, Any] | GraphError) -> _Model | GraphError:
    """A read's body as ``model``, or its error (the read's own, or that the body is not one)."""
    if isinstance(body, GraphError):
        return body
    try:
        return _model(model, body, None)
    except GraphError as error:
        return error


def _user_path(user_id: str) -> str:
    return f"/users/{quote(user_id, safe='')}?$select={USER_SELECT}"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _error_from(
    status: int, headers: Mapping[str, str], body: Any, reason: str, sent_client_request_id: str | None
) -> GraphError:
    """The typed error for a non-2xx status, its headers (case-insensitive) and its JSON body."""
    code, message, inner = None, None, {}
    try:
        error = body.get("error") or {}
        code, message = error.get("code"), error.get("message")
        inner = error.get("innerError") or error.get("innererror") or {}
    except AttributeError:
        pass
    info = GraphErrorInfo(
        status_code=status,
        code=code if isinstance(code, str) else None,
        message=message if isinstance(message, str) and message else f"HTTP {status} {reason}",
        request_id=headers.get("request-id") or _inner(inner, "request-id"),
        client_request_id=(
            headers.get("client-request-id") or _inner(inner, "client-request-id") or sent_client_request_id
        ),
    )
    retry_after = _retry_after(headers)
    if status == 404:
        return GraphNotFound(info)
    if status == 409:
        return GraphConflict(info, _conflict_reason(info))
    if status in (401, 403):
        return GraphAuthError(info)
    if status == 429:
        return GraphThrottled(info, retry_after)
    if status >= 500:
        unavailable = GraphUnavailable(info)
        unavailable.retry_after = retry_after  # type: ignore[attr-defined]  # 503/504 may carry Retry-After too
        return unavailable
    if status >= 400:
        return GraphBadRequest(info)
    return GraphError(info)


def _inner(inner: Any, key: str) -> str | None:
    """``innerError[key]``, looking into nested innerError objects too."""
    while isinstance(inner, dict):
        if isinstance(inner.get(key), str):
            return inner[key]
        inner = inner.get("innerError") or inner.get("innererror")
    return None


def _conflict_reason(info: GraphErrorInfo) -> ConflictReason:
    """A 409 outside an action (no job to read back): only a code that names expiry says more than UNKNOWN."""
    return conflict_reason(None, None, info.code, datetime.now(UTC))


def conflict_reason(action: str | None, job: MigrationJob | None, code: str | None, now: datetime) -> ConflictReason:
    """Why ``action`` got a 409, from the job read back after it (``job``) and Graph's error ``code``; never from
    the message, whose wording is undocumented (reference section 5)."""
    if job is not None:
        status = job.status
        expired = (
            status is JobStatus.VALIDATE_PASSED
            and job.last_updated is not None
            and now - _as_utc(job.last_updated) >= VALIDATION_TTL
        )
        if action == "migrate" and status is JobStatus.VALIDATE_PASSED:
            return ConflictReason.VALIDATION_EXPIRED  # the only documented 409 from validatePassed
        if action == "validate" and expired:
            return ConflictReason.VALIDATION_EXPIRED
        if action == "migrate":
            allowed = status in MIGRATABLE
        elif action == "validate":
            allowed = status in VALIDATABLE
        else:  # cancel: the cancel page refuses it once the migration is in progress
            allowed = status not in NOT_CANCELLABLE and status is not JobStatus.IN_PROGRESS
        if not allowed:
            return ConflictReason.WRONG_STATUS
    if code and "expired" in code.lower():
        return ConflictReason.VALIDATION_EXPIRED
    return ConflictReason.UNKNOWN


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _claims_challenge(response: httpx.Response) -> str | None:
    """The decoded claims JSON of a ``WWW-Authenticate: ... error="insufficient_claims", claims="..."``."""
    header = response.headers.get("WWW-Authenticate", "")
    if "insufficient_claims" not in header:
        return None
    match = _CLAIMS_RE.search(header)
    if match is None:
        return None
    encoded = match.group(1)
    try:
        decoded = b64url_decode(encoded)
        claims = decoded.decode("utf-8")
        json.loads(claims)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        log.warning("Graph sent a claims challenge that is not base64 JSON; ignoring it")
        return None
    return claims
