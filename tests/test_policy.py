"""Authorization rules, with user groups resolved through a real Slack Web API client."""

import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.workflow.policy import Policy, UsergroupMembers


class FakeGroups(UsergroupMembers):
    """Unit seam: group members without Slack (the e2e tests use the Slack stand-in)."""

    def __init__(self, groups):
        self.groups = groups
        self.lookups = 0

    def members(self, group_id):
        self.lookups += 1
        return frozenset(self.groups.get(group_id, ()))


def policy(**kw):
    return Policy(groups=FakeGroups({"S1": ["UG"], "SA": ["UA"]}), team_id="T1", **kw)


def test_place_checks():
    p = policy(allowed_channels=frozenset({"C1"}))
    assert p.check_place("T1", "C1").allowed
    assert "another Slack workspace" in p.check_place("T2", "C1").reason
    assert "this channel" in p.check_place("T1", "C2").reason
    assert policy().check_place("T1", "C9").allowed


def test_migrators_by_id_or_group():
    p = policy(allowed_users=frozenset({"U1"}), migrators_group="S1")
    assert p.may_migrate("U1").allowed and p.may_migrate("UG").allowed
    assert not p.may_migrate("UX").allowed
    assert "ALLOWED_SLACK_USERS" in policy().may_migrate("U1").reason


def test_approvers_and_self_approval():
    p = policy(approvers=frozenset({"U1", "U2"}), approvers_group="SA")
    assert p.may_approve("U2", requester_id="U1").allowed
    assert p.may_approve("UA", requester_id="U1").allowed
    assert "own request" in p.may_approve("U1", requester_id="U1").reason
    assert not p.may_approve("UX", requester_id="U1").allowed
    relaxed = policy(approvers=frozenset({"U1"}), allow_self_approval=True)
    assert relaxed.may_approve("U1", requester_id="U1").allowed
    assert p.approver_mentions() == "<!subteam^SA> <@U1> <@U2>"


def test_group_members_are_cached_and_refreshed_in_the_background():
    calls = []
    now = [0.0]
    answered = threading.Event()

    class Client(WebClient):
        def usergroups_users_list(self, **kwargs):
            calls.append(kwargs)
            try:
                if len(calls) == 2:
                    raise SlackApiError("ratelimited", {"ok": False, "error": "ratelimited"})
                return {"ok": True, "users": ["UG"] if len(calls) < 3 else ["UG", "UNEW"]}
            finally:
                answered.set()

    groups = UsergroupMembers(Client(token="xoxb-test"), ttl=60, clock=lambda: now[0])
    assert groups.members("S1") == {"UG"} and len(calls) == 1  # the first lookup waits for Slack
    assert groups.members("S1") == {"UG"} and len(calls) == 1  # cached
    now[0] = 61
    answered.clear()
    assert groups.members("S1") == {"UG"}  # stale: served at once, refreshed in the background
    assert answered.wait(5) and len(calls) == 2  # ... which failed (429): the last known members stay
    # The failed refresh lets go of its "refreshing" mark just after Slack answered: ask until a new one starts.
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        assert groups.members("S1") == {"UG"}
        time.sleep(0.01)
    deadline = time.monotonic() + 5
    while groups.members("S1") != {"UG", "UNEW"} and time.monotonic() < deadline:
        time.sleep(0.01)
    assert groups.members("S1") == {"UG", "UNEW"} and len(calls) == 3
