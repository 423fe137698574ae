"""The simulator's HTTP face: Graph's paths under ``/beta``, a control API under ``/_sim/``, and
:class:`GraphSimulator`, the object tests, the demo and rehearsals hold."""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from bot.httpserver import WSGIServer
from bot.rehearsal.simulator.batch import BATCH_SEGMENT, inner_answer, parse_batch, refusal
from bot.rehearsal.simulator.odata import parse as parse_query
from bot.rehearsal.simulator.seed import seed_jobs
from bot.rehearsal.simulator.state import (
    SimClock,
    SimError,
    SimOptions,
    Simulation,
    Timings,
    graph_time,
    parse_graph_time,
)
from bot.rehearsal.simulator.tokens import FULL_RIGHTS, PRESETS, Caller, TokenIssuer, TokenRefused, authorize

GRAPH_PREFIX = "/beta"
#: Graph documents this API under both versions (reference section 0); the simulator serves the same on each.
GRAPH_PREFIXES = ("/beta", "/v1.0")
CONTROL_PREFIX = "/_sim"
JOBS_PATH = "/solutions/migrations/crossTenantMigrationJobs"
#: Names accepted by :meth:`GraphSimulator.deny` (one per Graph operation).
OPERATIONS = (
    "getRoot",
    "list",
    "create",
    "get",
    "update",
    "delete",
    "validate",
    "migrate",
    "cancel",
    "listTasks",
    "getTask",
    "cancelTask",
    "count",
    "countTasks",
    "getUser",
)
#: Fault kinds for :meth:`GraphSimulator.inject_fault`.
#: ``409``/``429``/``500``/``503``/``504`` answer that error and leave the state untouched (409: a refusal such as a
#: user's cutover beginning between a read and the call); ``slow`` applies the request,
#: then waits ``delay`` real seconds before answering; ``lost`` applies the request, then (after ``delay``, if
#: given) answers 504 (the caller can't tell whether it worked).
FAULT_KINDS = ("409", "429", "500", "503", "504", "slow", "lost")

_FAULT_ERRORS = {
    "409": (409, "conflict", "Cancel is not possible. Current status is finalizing"),
    "429": (429, "activityLimitReached", "The request has been throttled. Retry after the time in Retry-After."),
    "500": (500, "generalException", "An unexpected error occurred while processing the request."),
    "503": (503, "serviceNotAvailable", "The service is temporarily unavailable. Try again later."),
    "504": (504, "gatewayTimeout", "The gateway did not receive a timely response from the service."),
}
_BATCH_UNAVAILABLE = {
    404: ("itemNotFound", "Resource not found for the segment '$batch'."),
    405: ("notSupported", "The $batch endpoint does not allow this method."),
    501: ("notImplemented", "Batching is not implemented here."),
}
_WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)


@dataclass
class Fault:
    """One injected failure; ``count=None`` repeats until :meth:`GraphSimulator.clear_faults`."""

    kind: str
    count: int | None = 1
    path_contains: str | None = None
    method: str | None = None
    retry_after: float | None = None
    delay: float | None = None

    def matches(self, method: str, path: str) -> bool:
        return (
            (self.count is None or self.count > 0)
            and (self.method is None or self.method.upper() == method)
            and (self.path_contains is None or self.path_contains in path)
        )


@dataclass
class RecordedRequest:
    """A request that reached ``/beta`` (the Authorization value is redacted)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: str
    time: float
    sim_time: datetime
    status: int | None = None
    operation: str | None = None
    #: For a request inside a ``POST /$batch``: the batch's request-id (it was not an HTTP request of its own).
    batch_id: str | None = None


@dataclass
class _Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    origin: str

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> _Request:
        headers = {
            key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
        return cls(
            environ.get("REQUEST_METHOD", "GET").upper(),
            environ.get("PATH_INFO") or "/",
            environ.get("QUERY_STRING", ""),
            headers,
            body,
            f"{environ.get('wsgi.url_scheme', 'http')}://{host}",
        )

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise SimError(400, "invalidRequest", "The request body is not valid JSON.") from None

    def param(self, name: str) -> str | None:
        values = parse_qs(self.query, keep_blank_values=True).get(name)
        return values[0] if values else None


@dataclass
class _Response:
    status: int
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    text: str | None = None  # a text/plain body ($count) instead of JSON


def _version(path: str) -> str | None:
    """The Graph version prefix ``path`` starts with (``/beta`` or ``/v1.0``), or None."""
    return next((p for p in GRAPH_PREFIXES if path == p or path.startswith(p + "/")), None)


def _error(
    status: int,
    code: str,
    message: str,
    request_id: str,
    client_request_id: str,
    now: datetime,
    headers: Iterable[tuple[str, str]] = (),
) -> _Response:
    inner = {"date": graph_time(now)[:19], "request-id": request_id, "client-request-id": client_request_id}
    return _Response(status, {"error": {"code": code, "message": message, "innerError": inner}}, list(headers))


class GraphSimulator:
    """A stand-in for Graph's cross-tenant migration API, served over real HTTP.

    ``GraphSimulator(clock=SimClock(speed=0), seed=False).start()`` then point a client at ``.base_url``.
    The Python control API (create_job, set_status, set_outcome, delete_job, inject_fault, deny, requests,
    count) and the HTTP one under ``/_sim/`` act on the same state under one lock.
    """

    def __init__(
        self,
        clock: SimClock | None = None,
        seed: bool = True,
        token: str | None = None,
        *,
        timings: Timings | None = None,
        options: SimOptions | None = None,
    ) -> None:
        self.clock = clock or SimClock()
        self.state = Simulation(self.clock, timings, options)
        self.token = token
        #: Signs and checks test tokens (:meth:`mint_token`); the static ``token`` is a full-rights delegated admin.
        self.issuer = TokenIssuer(self.state.target_tenant_id)
        #: Accept any other non-empty bearer as a full-rights admin (off: only ``token`` and signed tokens pass).
        #: For tests whose tokens come from a fake authority that can't sign the simulator's tokens.
        self.trust_opaque_tokens = False
        #: Real seconds added to every Graph HTTP request (benchmarks): once per ``$batch``, not per request in it.
        self.latency = 0.0
        #: When set, the seconds added to each ``$batch`` instead of :attr:`latency`.
        self.batch_latency: float | None = None
        #: When set (404, 405 or 501), ``/$batch`` answers that status: a Graph or proxy without batching.
        self.batch_unavailable: int | None = None
        self._lock = self.state.lock
        self._faults: list[Fault] = []
        self._denied: set[str] = set()
        self._requests: list[RecordedRequest] = []
        self._server: WSGIServer | None = None
        if seed:
            seed_jobs(self)

    # Serving
    def start(self, host: str = "127.0.0.1", port: int = 0, *, threads: int = 16) -> GraphSimulator:
        """Serve on ``host:port`` (0: a free port) on a background thread, ``threads`` requests at once."""
        self._server = WSGIServer(self, host, port, threads=threads).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> GraphSimulator:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return self._server.url

    @property
    def base_url(self) -> str:
        """What ``GRAPH_BASE_URL`` should be: ``http://host:port/beta``."""
        return self.url + GRAPH_PREFIX

    @property
    def v1_url(self) -> str:
        """The same API under ``/v1.0``."""
        return self.url + "/v1.0"

    def set_options(self, **changes: Any) -> SimOptions:
        """Switch readings while running, e.g. ``set_options(cancel_in_progress=True)``; returns the new options."""
        with self._lock:
            self.state.options = replace(self.state.options, **changes)
            return self.state.options

    # Tokens
    def mint_token(self, preset: str | None = None, **claims: Any) -> str:
        """A signed test token: a named :data:`~bot.rehearsal.simulator.tokens.PRESETS` entry, or the keywords of
        :meth:`~bot.rehearsal.simulator.tokens.TokenIssuer.mint` (delegated, permissions, directory_roles,
        expires_in, name)."""
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"preset must be one of {sorted(PRESETS)}, not {preset!r}")
            return self.issuer.mint_preset(preset)
        return self.issuer.mint(**claims)

    # Jobs
    def create_job(
        self,
        display_name: str,
        status: str = "submitted",
        users: int | Iterable[str] = 3,
        workloads: Iterable[str] | None = None,
        completed_after: datetime | None = None,
        validated_at: datetime | None = None,
        **fields: Any,
    ) -> str:
        """Put a job straight into any ``status``; returns its id.

        ``users``: a count (ids are derived from the job id) or the user ids. ``completed_after``: its
        completeAfterDateTime (default: 14 days ahead). ``validated_at``: when it entered ``status``
        (its lastUpdatedDateTime, e.g. 8 days ago for an expired validation). Keywords ``job_id``,
        ``outcome``, ``message``, ``created``, ``invalid_users`` and Graph field names (``createdBy``,
        ``sourceTenantId``, ``exchangeSettings``, anything else is returned as an extra field) are accepted.
        """
        return self.state.add_job(
            display_name,
            status=status,
            users=users,
            workloads=workloads,
            complete_after=completed_after or fields.pop("complete_after", None),
            validated_at=validated_at,
            **fields,
        )

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as Graph would return it now."""
        return self.state.job(job_id)

    def set_status(self, job_id: str, status: str, message: str | None = None) -> None:
        """Move a job to ``status`` now; any text is accepted and returned as is ("quantumEntangled",
        "Canceled"). A status inside a chain (e.g. validateSubmitted, inProgress) then advances as usual."""
        self.state.set_status(job_id, status, message)

    def set_outcome(self, job_id: str, outcome: str) -> None:
        """How the job's next run ends: ``completed`` (default), ``completedWithErrors`` or ``failed`` for a
        migration (with per-user errors), ``validatePassed`` (default) or ``validateFailed`` for a validation."""
        self.state.set_outcome(job_id, outcome)

    def delete_job(self, job_id: str) -> None:
        """The job vanishes now: every later call about it gets 404."""
        self.state.remove(job_id)

    # Faults, permissions, records
    def inject_fault(
        self,
        kind: str,
        *,
        count: int | None = 1,
        path_contains: str | None = None,
        method: str | None = None,
        retry_after: float | None = None,
        delay: float | None = None,
    ) -> Fault:
        """Fail the next ``count`` matching Graph requests (see :data:`FAULT_KINDS`).

        429 always carries ``Retry-After`` (``retry_after``, default 1 s); 503/504/500 only when given.
        ``slow`` and ``lost`` apply the request first, so they model "it worked but the answer did not arrive".
        Requests inside a ``POST /$batch`` are matched one by one (an error fault answers that request alone
        inside the batch's 200); the batch itself matches as ``POST .../$batch``.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {kind!r}")
        if kind == "slow" and not delay:
            raise ValueError("a slow fault needs delay (real seconds)")
        fault = Fault(kind, count, path_contains, method.upper() if method else None, retry_after, delay)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def deny(self, operation: str, denied: bool = True) -> None:
        """Answer ``operation`` (one of :data:`OPERATIONS`) with 403 accessDenied until allowed again."""
        if operation not in OPERATIONS:
            raise ValueError(f"operation must be one of {OPERATIONS}, not {operation!r}")
        with self._lock:
            (self._denied.add if denied else self._denied.discard)(operation)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every Graph request received so far (control calls are not recorded)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def count(self, method: str, path_suffix: str = "") -> int:
        """How many ``method`` requests had a path ending with ``path_suffix`` (requests inside a ``$batch`` count
        too: they are reads of that path; ``RecordedRequest.batch_id`` tells them apart)."""
        return sum(1 for r in self.requests if r.method == method.upper() and r.path.endswith(path_suffix))

    # WSGI
    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = _Request.from_environ(environ)
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
            response = self._control(request, request_id, client_request_id)
        elif _version(request.path) is not None:
            response = self._graph(request, request_id, client_request_id)
        else:
            response = _error(
                404,
                "itemNotFound",
                f"No resource at {request.path}; Graph lives under /beta and /v1.0.",
                request_id,
                client_request_id,
                self.clock.now(),
            )
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        headers = [("request-id", request_id), ("client-request-id", client_request_id), *response.headers]
        if response.text is not None:
            payload = response.text.encode()
            headers.append(("Content-Type", "text/plain; charset=utf-8"))
        elif response.body is not None:
            headers.append(("Content-Type", "application/json; odata.metadata=minimal; charset=utf-8"))
        headers.append(("Content-Length", str(len(payload))))
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
        return [payload]

    def _graph(self, request: _Request, request_id: str, client_request_id: str) -> _Response:
        record = self._record(request)
        batch = request.path[len(_version(request.path) or "") :].strip("/") == BATCH_SEGMENT
        with self._lock:
            fault = self._take_fault(request.method, request.path)
            latency = self.batch_latency if batch and self.batch_latency is not None else self.latency
        if latency:
            time.sleep(latency)
        handler = self._batch if batch else self._dispatch
        return self._serve(request, record, fault, request_id, client_request_id, handler)

    def _record(self, request: _Request, batch_id: str | None = None) -> RecordedRequest:
        record = RecordedRequest(
            request.method,
            request.path,
            request.query,
            _redacted(request.headers),
            request.body.decode("utf-8", "replace"),
            time.time(),
            self.clock.now(),
            batch_id=batch_id,
        )
        with self._lock:
            self._requests.append(record)
        return record

    def _take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counted as used (call with the lock held)."""
        fault = next((f for f in self._faults if f.matches(method, path)), None)
        if fault is not None and fault.count is not None:
            fault.count -= 1
        return fault

    def _serve(
        self,
        request: _Request,
        record: RecordedRequest,
        fault: Fault | None,
        request_id: str,
        client_request_id: str,
        handler: Callable[[_Request, RecordedRequest, str, str], _Response],
    ) -> _Response:
        """Answer one request (an HTTP request, or one request of a batch) with ``handler``, or with its fault."""
        if fault is not None and fault.kind in _FAULT_ERRORS:
            status, code, message = _FAULT_ERRORS[fault.kind]
            retry_after = fault.retry_after if fault.retry_after is not None else (1 if status == 429 else None)
            headers = [("Retry-After", _seconds(retry_after))] if retry_after is not None else []
            response = _error(status, code, message, request_id, client_request_id, self.clock.now(), headers)
        else:
            response = handler(request, record, request_id, client_request_id)
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay or 0)
            elif fault is not None and fault.kind == "lost":
                time.sleep(fault.delay or 0)
                status, code, message = _FAULT_ERRORS["504"]
                response = _error(status, code, message, request_id, client_request_id, self.clock.now())
        record.status = response.status
        return response

    def _batch(self, request: _Request, record: RecordedRequest, request_id: str, client_request_id: str) -> _Response:
        """``POST /$batch``: each inner request runs in turn as if sent alone (its own fault, status, headers and
        body), and the answers come back in the reverse order (Graph guarantees no order)."""
        record.operation = "batch"
        now = self.clock.now()
        failure = self._authenticate(request)
        if failure is not None:
            return _error(
                401,
                "InvalidAuthenticationToken",
                failure,
                request_id,
                client_request_id,
                now,
                [("WWW-Authenticate", _WWW_AUTHENTICATE)],
            )
        with self._lock:
            unavailable = self.batch_unavailable
        if unavailable is not None:
            code, message = _BATCH_UNAVAILABLE.get(unavailable, ("notSupported", "Batching is not available."))
            headers = [("Allow", "")] if unavailable == 405 else []
            return _error(unavailable, code, message, request_id, client_request_id, now, headers)
        if request.method != "POST":
            return _error(
                405,
                "notSupported",
                f"{request.method} is not supported on $batch.",
                request_id,
                client_request_id,
                now,
                [("Allow", "POST")],
            )
        try:
            inner = parse_batch(request.json())
        except SimError as error:
            return _error(error.status, error.code, error.message, request_id, client_request_id, now)
        answers = []
        for item in inner:
            one = _Request(
                item.method,
                (_version(request.path) or GRAPH_PREFIX) + item.path,
                item.query,
                {"authorization": request.headers.get("authorization", ""), **item.headers},
                item.body,
                request.origin,
            )
            one_id = str(uuid.uuid4())
            one_client_id = item.headers.get("client-request-id") or str(uuid.uuid4())
            one_record = self._record(one, batch_id=request_id)
            refused = refusal(item)
            if refused is not None:
                response = _error(*refused, one_id, one_client_id, self.clock.now())
                one_record.status = response.status
            else:
                with self._lock:
                    fault = self._take_fault(one.method, one.path)
                response = self._serve(one, one_record, fault, one_id, one_client_id, self._dispatch)
            headers = [("request-id", one_id), ("client-request-id", one_client_id), *response.headers]
            answers.append(inner_answer(item.id, response.status, headers, response.body))
        return _Response(200, {"responses": answers[::-1]})

    def _dispatch(
        self, request: _Request, record: RecordedRequest, request_id: str, client_request_id: str
    ) -> _Response:
        now = self.clock.now()
        try:
            caller = self._caller(request)
        except TokenRefused as refused:
            return _error(
                401,
                refused.code,
                refused.message,
                request_id,
                client_request_id,
                now,
                [("WWW-Authenticate", _WWW_AUTHENTICATE)],
            )
        route = _route(request.path[len(_version(request.path) or "") :])
        if route is None:
            return _error(
                400,
                "BadRequest",
                f"Resource not found for the segment in '{request.path}'.",
                request_id,
                client_request_id,
                now,
            )
        methods, args = route
        if request.method not in methods:
            return _error(
                405,
                "notSupported",
                f"{request.method} is not supported on this resource.",
                request_id,
                client_request_id,
                now,
                [("Allow", ", ".join(sorted(methods)))],
            )
        operation = methods[request.method]
        record.operation = operation
        try:
            authorize(caller, operation, app_only_actions=self.state.options.app_only_actions)
        except TokenRefused as refused:
            return _error(refused.status, refused.code, refused.message, request_id, client_request_id, now)
        with self._lock:
            denied = operation in self._denied
        if denied:
            return _error(
                403,
                "accessDenied",
                "Insufficient privileges to complete the operation. The caller needs "
                "CrossTenantContentMigration.ReadWrite.All and, when delegated, the Microsoft 365 "
                "Migration Administrator or Global Administrator role.",
                request_id,
                client_request_id,
                now,
            )
        try:
            return getattr(self, f"_op_{operation}")(request, *args)
        except SimError as error:
            return _error(error.status, error.code, error.message, request_id, client_request_id, self.clock.now())

    def _caller(self, request: _Request) -> Caller:
        """Who the bearer token speaks for; :class:`TokenRefused` (401) when it is missing, malformed, forged or
        expired."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenRefused(401, "InvalidAuthenticationToken", "Access token is empty.")
        if self.token is not None and token == self.token:
            return FULL_RIGHTS
        if token.count(".") == 2:
            return self.issuer.caller(token)
        if self.trust_opaque_tokens:
            return FULL_RIGHTS
        raise TokenRefused(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")

    def _authenticate(self, request: _Request) -> str | None:
        try:
            self._caller(request)
        except TokenRefused as refused:
            return refused.message
        return None

    # Graph operations
    def _op_getRoot(self, request: _Request) -> _Response:
        parse_query(request.query, "jobs", set(), allowed=frozenset())
        return _Response(
            200, {"@odata.context": f"{_metadata(request)}#solutions/migrations/$entity", "id": "migrations"}
        )

    def _op_list(self, request: _Request) -> _Response:
        return self._page(
            request,
            self.state.list_jobs(),
            f"{_metadata(request)}#solutions/migrations/crossTenantMigrationJobs",
            "jobs",
        )

    def _op_count(self, request: _Request) -> _Response:
        query = parse_query(request.query, "jobs", set(), allowed=frozenset({"$filter"}))
        return _Response(200, text=str(len(query.apply(self.state.list_jobs()))))

    def _op_countTasks(self, request: _Request, job_id: str) -> _Response:
        parse_query(request.query, "tasks", set(), allowed=frozenset())
        return _Response(200, text=str(len(self.state.tasks(job_id))))

    def _op_create(self, request: _Request) -> _Response:
        job = self.state.create(request.json())
        location = f"{request.origin}{_version(request.path)}{JOBS_PATH}/{job['id']}"
        return _Response(201, _entity(request, job), [("Location", location)])

    def _op_get(self, request: _Request, job_id: str) -> _Response:
        job = self.state.job(job_id)
        query = parse_query(request.query, "jobs", set(job), allowed=frozenset({"$select"}))
        return _Response(200, _entity(request, query.shape(job)))

    def _op_update(self, request: _Request, job_id: str) -> _Response:
        self.state.update(job_id, request.json())
        return _Response(204)

    def _op_delete(self, request: _Request, job_id: str) -> _Response:
        self.state.delete(job_id)
        return _Response(202)

    def _op_validate(self, request: _Request, job_id: str) -> _Response:
        return _Response(200, _entity(request, self.state.validate(job_id)))

    def _op_migrate(self, request: _Request, job_id: str) -> _Response:
        return _Response(200, _entity(request, self.state.migrate(job_id)))

    def _op_cancel(self, request: _Request, job_id: str) -> _Response:
        body = self.state.cancel(job_id)
        context = f"{_metadata(request)}#microsoft.graph.crossTenantMigrationCancelResponse"
        return _Response(202, {"@odata.context": context, **body})

    def _op_listTasks(self, request: _Request, job_id: str) -> _Response:
        context = f"{_metadata(request)}#solutions/migrations/crossTenantMigrationJobs('{job_id.lower()}')/users"
        return self._page(request, self.state.tasks(job_id), context, "tasks")

    def _op_getTask(self, request: _Request, job_id: str, task_id: str) -> _Response:
        context = (
            f"{_metadata(request)}#solutions/migrations/crossTenantMigrationJobs('{job_id.lower()}')/users/$entity"
        )
        return _Response(200, {"@odata.context": context, **self.state.task(job_id, task_id)})

    def _op_cancelTask(self, request: _Request, job_id: str, task_id: str) -> _Response:
        context = f"{_metadata(request)}#microsoft.graph.crossTenantMigrationCancelResponse"
        return _Response(202, {"@odata.context": context, **self.state.cancel_task(job_id, task_id)})

    def _op_getUser(self, request: _Request, user_id: str) -> _Response:
        user = self.state.user(user_id)
        select = [name.strip() for name in (request.param("$select") or "").split(",") if name.strip()]
        if select:
            user = {name: value for name, value in user.items() if name == "id" or name in select}
        return _Response(200, {"@odata.context": f"{_metadata(request)}#users/$entity", **user})

    def _page(self, request: _Request, items: list[dict[str, Any]], context: str, kind: str) -> _Response:
        properties = set(items[0]) if items else set(_PROPERTIES[kind])
        query = parse_query(request.query, kind, properties | set(_PROPERTIES[kind]))
        items = query.apply(items)
        size = query.top or self.state.options.page_size
        offset = _read_skiptoken(request.param("$skiptoken"))
        body: dict[str, Any] = {"@odata.context": context}
        if query.count:
            body["@odata.count"] = len(items)
        body["value"] = [query.shape(item) for item in items[offset : offset + size]]
        if offset + size < len(items):
            body["@odata.nextLink"] = f"{request.origin}{request.path}?{query.next_query(_skiptoken(offset + size))}"
        return _Response(200, body)

    # Control API
    def _control(self, request: _Request, request_id: str, client_request_id: str) -> _Response:
        now = self.clock.now()
        failure = self._authenticate(request) if self.token is not None else None
        if failure is not None:
            return _error(401, "InvalidAuthenticationToken", failure, request_id, client_request_id, now)
        parts = [part for part in request.path[len(CONTROL_PREFIX) :].split("/") if part]
        try:
            body = request.json() or {}
            if not isinstance(body, dict):
                raise SimError(400, "invalidRequest", "The body must be a JSON object.")
            result = self._control_route(request.method, parts, body)
        except SimError as error:
            return _error(error.status, error.code, error.message, request_id, client_request_id, now)
        except (TypeError, ValueError) as error:
            return _error(400, "invalidRequest", str(error), request_id, client_request_id, now)
        return result

    def _control_route(self, method: str, parts: list[str], body: dict[str, Any]) -> _Response:
        match method, parts:
            case "GET", ["jobs"]:
                return _Response(
                    200,
                    {
                        "value": [
                            {"id": job["id"], "displayName": job["displayName"], "status": job["status"]}
                            for job in self.state.list_jobs()
                        ]
                    },
                )
            case "POST", ["jobs"]:
                name = body.pop("displayName", None) or body.pop("display_name", None)
                if not name:
                    raise ValueError("displayName is required")
                for key in ("completed_after", "validated_at", "created"):
                    if body.get(key):
                        body[key] = parse_graph_time(body[key])
                return _Response(201, {"id": self.create_job(name, **body)})
            case "GET", ["jobs", job_id]:
                return _Response(200, self.job(job_id))
            case "DELETE", ["jobs", job_id]:
                self.delete_job(job_id)
                return _Response(204)
            case "POST", ["jobs", job_id, "status"]:
                self.set_status(job_id, body["status"], body.get("message"))
                return _Response(200, self.job(job_id))
            case "POST", ["jobs", job_id, "outcome"]:
                self.job(job_id)  # 404 for an unknown job
                self.set_outcome(job_id, body["outcome"])
                return _Response(204)
            case "POST", ["faults"]:
                return _Response(201, asdict(self.inject_fault(**body)))
            case "DELETE", ["faults"]:
                self.clear_faults()
                return _Response(204)
            case "POST", ["deny"]:
                self.deny(body["operation"], bool(body.get("denied", True)))
                return _Response(204)
            case "POST", ["options"]:
                return _Response(200, {k: str(v) for k, v in asdict(self.set_options(**body)).items()})
            case "POST", ["tokens"]:
                preset = body.pop("preset", None)
                return _Response(201, {"access_token": self.mint_token(preset, **body), "token_type": "Bearer"})
            case "POST", ["latency"]:
                self.latency = float(body["seconds"])
                batch = body.get("batch_seconds")
                self.batch_latency = None if batch is None else float(batch)
                return _Response(204)
            case "POST", ["batch"]:
                unavailable = body.get("unavailable")
                if unavailable is not None and int(unavailable) not in _BATCH_UNAVAILABLE:
                    raise ValueError(f"unavailable must be one of {sorted(_BATCH_UNAVAILABLE)} or null")
                self.batch_unavailable = None if unavailable is None else int(unavailable)
                return _Response(204)
            case "GET", ["clock"]:
                return _Response(200, {"now": graph_time(self.clock.now()), "speed": self.clock.speed})
            case "POST", ["clock", "advance"]:
                return _Response(200, {"now": graph_time(self.clock.advance(float(body["seconds"])))})
            case "GET", ["requests"]:
                return _Response(
                    200, {"value": [{**asdict(r), "sim_time": graph_time(r.sim_time)} for r in self.requests]}
                )
            case "DELETE", ["requests"]:
                self.clear_requests()
                return _Response(204)
        raise SimError(404, "itemNotFound", f"No control endpoint {method} /_sim/{'/'.join(parts)}.")


_PROPERTIES = {
    "jobs": (
        "id",
        "displayName",
        "jobType",
        "status",
        "message",
        "completeAfterDateTime",
        "sourceTenantId",
        "targetTenantId",
        "resourceType",
        "resources",
        "workloads",
        "createdBy",
        "createdDateTime",
        "lastUpdatedDateTime",
        "exchangeSettings",
    ),
    "tasks": ("id", "lastUpdatedDateTime", "currentStatus"),
}

# Routing: (path segments after /beta or /v1.0, lower-cased) -> {method: operation}; "*" captures an id.
_ROUTES: list[tuple[tuple[str, ...], dict[str, str]]] = [
    (("solutions", "migrations"), {"GET": "getRoot"}),
    (("solutions", "migrations", "crosstenantmigrationjobs"), {"GET": "list", "POST": "create"}),
    (("solutions", "migrations", "crosstenantmigrationjobs", "$count"), {"GET": "count"}),
    (("solutions", "migrations", "crosstenantmigrationjobs", "*", "users", "$count"), {"GET": "countTasks"}),
    (
        ("solutions", "migrations", "crosstenantmigrationjobs", "*"),
        {"GET": "get", "PATCH": "update", "DELETE": "delete"},
    ),
    (("solutions", "migrations", "crosstenantmigrationjobs", "*", "validate"), {"POST": "validate"}),
    (("solutions", "migrations", "crosstenantmigrationjobs", "*", "migrate"), {"POST": "migrate"}),
    (("solutions", "migrations", "crosstenantmigrationjobs", "*", "cancel"), {"POST": "cancel"}),
    (("solutions", "migrations", "crosstenantmigrationjobs", "*", "users"), {"GET": "listTasks"}),
    (("solutions", "migrations", "crosstenantmigrationjobs", "*", "users", "*"), {"GET": "getTask"}),
    (("solutions", "migrations", "crosstenantmigrationjobs", "*", "users", "*", "cancel"), {"POST": "cancelTask"}),
    (("users", "*"), {"GET": "getUser"}),
]


def _route(path: str) -> tuple[dict[str, str], list[str]] | None:
    segments = [segment for segment in path.split("/") if segment]
    for pattern, methods in _ROUTES:
        if len(pattern) != len(segments):
            continue
        args = []
        for expected, actual in zip(pattern, segments):
            if expected == "*":
                args.append(actual)
            elif expected != actual.lower():
                break
        else:
            return methods, args
    return None


def _metadata(request: _Request) -> str:
    return f"{request.origin}{_version(request.path) or GRAPH_PREFIX}/$metadata"


def _entity(request: _Request, job: dict[str, Any]) -> dict[str, Any]:
    context = f"{_metadata(request)}#solutions/migrations/crossTenantMigrationJobs/$entity"
    return {"@odata.context": context, **job}


def _skiptoken(offset: int) -> str:
    raw = json.dumps({"skip": offset, "v": 1}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_skiptoken(token: str | None) -> int:
    if token is None:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = int(data["skip"])
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise SimError(400, "invalidRequest", "The $skiptoken is not valid.") from None
    if offset < 0:
        raise SimError(400, "invalidRequest", "The $skiptoken is not valid.")
    return offset


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _redacted(headers: dict[str, str]) -> dict[str, str]:
    if "authorization" not in headers:
        return dict(headers)
    scheme, _, token = headers["authorization"].partition(" ")
    return {**headers, "authorization": f"{scheme} <redacted, {len(token)} chars>"}
