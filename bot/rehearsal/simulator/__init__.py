"""A Graph cross-tenant migration simulator: admins rehearse runbooks against it; the demo, tests and benchmarks use it.

It serves the same paths as Graph under ``/beta`` and ``/v1.0`` (reference section 0: Learn documents both;
``GRAPH_BASE_URL=http://127.0.0.1:N/beta`` or ``.../v1.0``), follows the lifecycle of section 3 of
``shared/reference/graph-cross-tenant-migration.md`` on a simulated clock, and has a control API (Python, and HTTP
under ``/_sim/``) for outcomes, faults, denied operations, options, tokens and recorded requests.

Where the documents contradict each other (the reference's section 7) the default is the **strict** reading, the one
that refuses more, and a :class:`SimOptions` switch (``migrate-bot simulator --lax ...``,
:meth:`GraphSimulator.set_options`) gives the other:

1. Lifecycle: the current model only (create, then the bound ``validate``/``migrate``/``cancel``). The legacy
   collection-bound ``POST .../crossTenantMigrationJobs/validate`` is not offered (it answers 405), nor is the
   ``displayName='...'`` alternate key.
2. Create leaves the job ``submitted`` (API reference); ``SimOptions.auto_validate_on_create`` starts validation.
3. At most 2,000 users per job (API reference); ``SimOptions.max_users_per_job`` sets 100 (admin guide).
4. Delete: ``pendingDelete`` for ``Timings.delete`` simulated seconds, ``deleted`` as long again, then 404.
   Allowed from completed, completedWithErrors, failed and cancelled (``SimOptions.delete_untouched`` adds
   submitted, validatePassed and validateFailed).
5. A past ``completeAfterDateTime`` on create or PATCH is a 400 (the overview: it can't be in the past);
   ``reject_past_complete_after=False`` follows the update page (accepted; cutover then starts at once).
   PATCH is 409 once cutover began, on ended jobs, and in processing/inProgress once the date has passed.
6. Cancel is 409 once the job is ``inProgress`` (the cancel page: "when a migration is already in progress");
   ``cancel_in_progress=True`` follows the admin table (accepted in inProgress until ``completeAfterDateTime``).
   Always accepted in processing and before (admin table, cancel page agree), 409 from cuttingOver, ended and
   pending jobs. Task cancel (``.../users/{id}/cancel``) follows the same rule.
7. Validate only from ``submitted`` or ``validateFailed`` (the validate page): an expired ``validatePassed``
   (lastUpdatedDateTime older than 7 days) has no way out; ``revalidate_expired=True`` accepts validating it.
8. Permissions (section 4, :mod:`~bot.rehearsal.simulator.tokens`): tokens are checked. A missing, malformed,
   forged or expired token is 401 ``InvalidAuthenticationToken``; signed test tokens (HS256 JWTs from
   :meth:`GraphSimulator.mint_token`, ``POST /_sim/tokens``, or printed one per role by ``migrate-bot
   simulator``) carry ``scp`` or ``roles`` and, when delegated, ``wids``. ``Read.All`` is enough for list, get and
   ``$count``; everything else needs ``ReadWrite.All``; a delegated caller needs Microsoft 365 Migration
   Administrator or Global Administrator; otherwise 403 ``accessDenied`` in Graph's error shape. App-only tokens
   get 403 on validate and migrate (their pages: "not supported"); ``app_only_actions=True`` follows the overview.
   The static ``token=`` (``--token``) is a full-rights delegated admin; ``trust_opaque_tokens`` accepts any other
   bearer (for tests whose tokens come from a fake authority). :meth:`GraphSimulator.deny` still forces a 403.
9. ``approved`` and ``adminActionRequired`` are never entered on their own; set them with ``set_status``
   (every action then gets 409). ``taskType`` is not returned.
10. Cancel responses carry ``id`` and ``displayName`` besides ``status`` and ``message`` (the example's shape).
11. Casing: statuses come back as stored (``set_status(id, "Canceled")`` is returned as ``Canceled``);
    ``resourceType`` is ``users``; workloads are normalised to ``Exchange``, ``ODSP``, ``Teams``, ``Meeting``.
12. ``Meeting`` is accepted as a workload.
13. ``GET /users/{id}`` (Graph's *Get user*, honouring ``$select``) answers for the users of its jobs (and for ids
    given a name with ``state.name_user``) with ``userPrincipalName`` ``user-<first 8 of the id>@target.example``
    unless named; other ids are 404 ``Request_ResourceNotFound``. It needs ``User.ReadBasic.All`` (delegated) or
    ``User.Read.All`` (application) in the token; ``deny("getUser")`` plays a missing permission.
14. 409s: code ``conflict`` (the reference's codes are guesses), messages worded unlike the documented examples
    ("Request rejected by the migration service: ..."): section 5 says to branch on status and code, never on the
    message, and the bot reads the job back instead.
15. OData on the list endpoints (:mod:`~bot.rehearsal.simulator.odata`): ``$top`` (page size), ``$select``,
    ``$filter`` on ``status``, ``$orderby``, ``$count=true``, ``$skiptoken`` (nextLinks keep the other options),
    and the ``$count`` segment (text/plain, as the SDK calls it); any other ``$`` option is Graph's 400.
    Get takes ``$select``.
16. JSON batching (``POST /beta/$batch`` or ``/v1.0/$batch``, ``simulator/batch.py``): up to 20 requests, each run
    as if sent alone (its own token check, fault, status, headers and body), answered in reverse order (Graph
    guarantees none); ``dependsOn`` is accepted and ignored (requests run in the order given); the latency knob
    applies once per batch (``batch_latency`` can differ); ``batch_unavailable`` (404/405/501) plays a Graph or
    proxy without batching.

Other simplifications: the state machine is deterministic (no random failures; outcomes come from
``set_outcome``); under completedWithErrors every third user (or the only one) fails ODSP and Meeting
(MIGR-003/MIGR-002); under failed every workload fails (EXCH-07 for Exchange); validateFailed marks the first
``invalid_users`` users' first workload invalid (EXCH-08/MIGR-001). The error codes and per-user messages are
plausible, not documented (the reference says the same). Per-workload statuses follow table 3.3 with one choice
per cell: inProgress = Exchange ``syncing``/others ``synced``; cuttingOver = Exchange ``finalizing``/others
``inProgress``. A migrate retry keeps workloads already ``completed``.
"""

from bot.rehearsal.simulator.state import SimClock, SimOptions, Timings
from bot.rehearsal.simulator.wsgi import FAULT_KINDS, OPERATIONS, GraphSimulator

__all__ = ["FAULT_KINDS", "OPERATIONS", "GraphSimulator", "SimClock", "SimOptions", "Timings"]
