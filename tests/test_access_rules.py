"""The checkpoint's rules as a unit: an Enterprise Grid installation, and the audit record of each decision."""

from __future__ import annotations

from slack_sdk import WebClient

from bot.change_store import ChangeStore
from bot.store import ACCESS_GRANTED, ACCESS_REFUSED, AuditQuery, Store
from bot.workflow.access import Act, Ask, Checkpoint
from tests.test_policy import policy


def checkpoint(tmp_path, **installed) -> Checkpoint:
    store = Store.from_url(f"sqlite:///{tmp_path / 'access.db'}")
    rules = policy(allowed_users=frozenset({"U1"}))
    return Checkpoint(
        policy=rules, store=store, changes=ChangeStore(store), slack=WebClient(token="xoxb-unused"), **installed
    )


def test_enterprise_installation_admits_its_own_organisation_only(tmp_path):
    gate = checkpoint(tmp_path, team_id="T1", enterprise_id="E1")
    ask = Ask(who="U1", what=Act.LIST, team_id="T1", user_team_id="T1", channel_id="C1")
    assert gate.decide(ask).allowed
    assert gate.decide(Ask(**{**ask.__dict__, "enterprise_id": "E1"})).allowed
    refused = gate.decide(Ask(**{**ask.__dict__, "enterprise_id": "E2"}))
    assert not refused.allowed and "another Slack organisation" in refused.reason


def test_a_workspace_outside_grid_refuses_payloads_from_an_organisation(tmp_path):
    gate = checkpoint(tmp_path, team_id="T1")
    ask = Ask(who="U1", what=Act.WHOAMI, team_id="T1", enterprise_id="E9", channel_id="C1")
    assert "another Slack organisation" in gate.decide(ask).reason


def test_each_decision_is_recorded_with_where_it_came_from(tmp_path):
    gate = checkpoint(tmp_path, team_id="T1")
    gate.decide(Ask(who="U1", what=Act.STATUS, team_id="T1", channel_id="C1", job_id="J1"))
    gate.decide(Ask(who="UX", what=Act.MIGRATE, team_id="T1", channel_id="C1", job_id="J1"))
    rows = [e.as_dict() for e in gate.store.audit_events(AuditQuery(access=True))]
    assert [(r["event"], r["actor"], r["detail"]["what"], r["job_id"]) for r in rows] == [
        (ACCESS_GRANTED, "U1", "status", "J1"),
        (ACCESS_REFUSED, "UX", "migrate", "J1"),
    ]
    assert rows[1]["detail"]["channel_id"] == "C1" and "not on the list" in rows[1]["detail"]["reason"]
    assert gate.store.audit_events() == []  # the default export leaves them out (see --access)


def test_approve_of_an_unknown_request_is_refused(tmp_path):
    gate = checkpoint(tmp_path, team_id="T1")
    decision = gate.decide(Ask(who="U1", what=Act.APPROVE, team_id="T1", channel_id="C1", run_id=99, message_ts="1.2"))
    assert not decision.allowed and "no longer exists" in decision.reason
