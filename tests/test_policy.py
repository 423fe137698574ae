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
    refreshes = []  # background refreshes, run by the test when it chooses (no race with a thread)

    class Client(WebClient):
        def usergroups_users_list(self, **kwargs):
            calls.append(kwargs)
            if len(calls) == 2:
                raise SlackApiError("ratelimited", {"ok": False, "error": "ratelimited"})
            return {"ok": True, "users": ["UG"] if len(calls) < 3 else ["UG", "UNEW"]}

    groups = UsergroupMembers(Client(token="xoxb-test"), ttl=60, clock=lambda: now[0], background=refreshes.append)
    assert groups.members("S1") == {"UG"} and len(calls) == 1  # the first lookup waits for Slack
    assert groups.members("S1") == {"UG"} and len(calls) == 1 and refreshes == []  # cached
    now[0] = 61
    assert groups.members("S1") == {"UG"} and len(calls) == 1  # stale: served at once, a refresh is queued
    assert groups.members("S1") == {"UG"} and len(refreshes) == 1  # one refresh at a time
    refreshes.pop()()
    assert len(calls) == 2  # ... which failed (429): the last known members stay
    assert groups.members("S1") == {"UG"} and len(refreshes) == 1  # still stale: refreshed again
    refreshes.pop()()
    assert groups.members("S1") == {"UG", "UNEW"} and len(calls) == 3 and refreshes == []


def test_group_refresh_runs_in_a_background_thread_by_default():
    release = threading.Event()
    calls = []
    now = [0.0]

    class Client(WebClient):
        def usergroups_users_list(self, **kwargs):
            calls.append(threading.current_thread().name)
            if len(calls) > 1:
                release.wait(5)
            return {"ok": True, "users": ["UG"] if len(calls) < 2 else ["UNEW"]}

    groups = UsergroupMembers(Client(token="xoxb-test"), ttl=60, clock=lambda: now[0])
    assert groups.members("S1") == {"UG"}
    now[0] = 61
    assert groups.members("S1") == {"UG"}  # answered while the refresh is blocked in Slack
    release.set()
    deadline = time.monotonic() + 5
    while groups.members("S1") != {"UNEW"} and time.monotonic() < deadline:
        time.sleep(0.01)
    assert groups.members("S1") == {"UNEW"} and calls[1] != threading.main_thread().name
