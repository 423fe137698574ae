"""A Graph cross-tenant migration simulator: admins rehearse runbooks against it; the demo, tests and benchmarks use it.

It serves the same paths as Graph beta under ``/beta`` (``GRAPH_BASE_URL=http://127.0.0.1:N/beta``), follows the
lifecycle of section 3 of ``shared/reference/graph-cross-tenant-migration.md`` on a simulated clock, and has a
control API (Python, and HTTP under ``/_sim/``) for outcomes, faults, denied operations and recorded requests.

Where it simplifies, or picks a side where the reference contradicts itself (its section 7):

1. Lifecycle: the current model only (create, then the bound ``validate``/``migrate``/``cancel``). The legacy
   collection-bound ``POST .../crossTenantMigrationJobs/validate`` is not offered (it answers 405), nor are the
   ``displayName='...'`` alternate key and ``$count`` (404), nor ``$filter``/``$top``/``$select`` (ignored).
2. Create leaves the job ``submitted`` (API reference); ``SimOptions.auto_validate_on_create`` starts validation.
3. At most 2,000 users per job (API reference); ``SimOptions.max_users_per_job`` sets 100 (admin guide).
4. Delete: ``pendingDelete`` for ``Timings.delete`` simulated seconds, ``deleted`` as long again, then 404.
   Allowed from completed, completedWithErrors, failed and cancelled (``SimOptions.delete_untouched`` adds
   submitted, validatePassed and validateFailed).
5. A past ``completeAfterDateTime`` on create or PATCH is a 400 (``SimOptions.reject_past_complete_after``).
   PATCH is 409 once cutover began, on ended jobs, and in processing/inProgress once the date has passed.
6. Cancel is accepted in processing, and in inProgress only before ``completeAfterDateTime`` (admin table);
   409 from cuttingOver, ended and pending jobs. The 409 message reads "Cancel is not possible. Current status
   is <status>". Task cancel (``.../users/{id}/cancel``) follows the same rule.
7. An expired ``validatePassed`` (lastUpdatedDateTime older than 7 days) can be validated again
   (``SimOptions.revalidate_expired``, default on), otherwise there is no way out of it.
8. Permissions: any non-empty bearer token is accepted (or exactly ``token=`` when given); 403 only through
   :meth:`GraphSimulator.deny`. Tokens are not parsed, so no claims challenge is ever sent.
9. ``approved`` and ``adminActionRequired`` are never entered on their own; set them with ``set_status``
   (every action then gets 409). ``taskType`` is not returned.
10. Cancel responses carry ``id`` and ``displayName`` besides ``status`` and ``message`` (the example's shape).
11. Casing: statuses come back as stored (``set_status(id, "Canceled")`` is returned as ``Canceled``);
    ``resourceType`` is ``users``; workloads are normalised to ``Exchange``, ``ODSP``, ``Teams``, ``Meeting``.
12. ``Meeting`` is accepted as a workload.
13. JSON batching (``POST /beta/$batch``, ``simulator/batch.py``): up to 20 requests, each run as if sent alone
    (its own fault, status, headers and body), answered in reverse order (Graph guarantees none); ``dependsOn``
    is accepted and ignored (requests run in the order given); the latency knob applies once per batch
    (``batch_latency`` can differ); ``batch_unavailable`` (404/405/501) plays a Graph or proxy without batching.

Other simplifications: the state machine is deterministic (no random failures; outcomes come from
``set_outcome``); under completedWithErrors every third user (or the only one) fails ODSP and Meeting
(MIGR-003/MIGR-002); under failed every workload fails (EXCH-07 for Exchange); validateFailed marks the first
``invalid_users`` users' first workload invalid (EXCH-08/MIGR-001). The error codes and per-user messages are
plausible, not documented (the reference says the same). Per-workload statuses follow table 3.3 with one choice
per cell: inProgress = Exchange ``syncing``/others ``synced``; cuttingOver = Exchange ``finalizing``/others
``inProgress``. A migrate retry keeps workloads already ``completed``. The 409 codes are ``conflict`` (wrong
status) and ``validationExpired``; the messages say "current status is X" and "Validation results expired".
"""

from bot.rehearsal.simulator.state import SimClock, SimOptions, Timings
from bot.rehearsal.simulator.wsgi import FAULT_KINDS, OPERATIONS, GraphSimulator

__all__ = ["FAULT_KINDS", "OPERATIONS", "GraphSimulator", "SimClock", "SimOptions", "Timings"]
