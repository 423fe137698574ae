"""GraphClient's per-user and cutover calls (task get/cancel, PATCH completeAfterDateTime) against the simulator,
and the Slack stand-in's App Home methods."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import GraphBadRequest, GraphConflict, GraphNotFound
from bot.rehearsal.simulator.seed import SEED_COMPLETED, SEED_IN_PROGRESS
from bot.rehearsal.simulator.state import parse_graph_time
from bot.rehearsal.slack_standin import SlackStandIn
from tests.support.graph import client, sim, sleeps  # noqa: F401


def test_update_job_patches_only_complete_after(sim, client):
    later = sim.clock.now().replace(microsecond=0) + timedelta(days=4)
    client.update_job(SEED_IN_PROGRESS, complete_after=later)
    [patch] = [r for r in sim.requests if r.method == "PATCH"]
    assert json.loads(patch.body) == {"completeAfterDateTime": later.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert patch.headers["content-type"].startswith("application/json")
    assert parse_graph_time(sim.job(SEED_IN_PROGRESS)["completeAfterDateTime"]) == later


def test_update_job_refusals(sim, client):
    with pytest.raises(GraphBadRequest):  # the strict reading: no date in the past
        client.update_job(SEED_IN_PROGRESS, complete_after=sim.clock.now() - timedelta(hours=1))
    with pytest.raises(GraphConflict):
        client.update_job(SEED_COMPLETED, complete_after=sim.clock.now() + timedelta(days=1))
    sim.set_status(SEED_IN_PROGRESS, "cuttingOver")
    with pytest.raises(GraphConflict):
        client.update_job(SEED_IN_PROGRESS, complete_after=sim.clock.now() + timedelta(days=1))


def test_get_and_cancel_one_task(sim, client):
    task_id = client.list_tasks(SEED_IN_PROGRESS)[0].id
    assert client.get_task(SEED_IN_PROGRESS, task_id).id == task_id
    answer = client.cancel_task(SEED_IN_PROGRESS, task_id)
    assert answer["status"] == "Accepted" and task_id in answer["message"]
    assert sim.count("POST", f"/users/{task_id}/cancel") == 1
    with pytest.raises(GraphNotFound):  # taken out of the batch
        client.get_task(SEED_IN_PROGRESS, task_id)
    other = client.list_tasks(SEED_IN_PROGRESS)[0].id
    sim.set_status(SEED_IN_PROGRESS, "cuttingOver")
    with pytest.raises(GraphConflict) as refused:
        client.cancel_task(SEED_IN_PROGRESS, other)
    assert "Cancel is not possible" not in str(refused.value)  # the simulator words its 409s unlike the docs
    assert refused.value.info.status_code == 409 and refused.value.info.code == "conflict"
    assert sim.count("POST", f"/users/{other}/cancel") == 1  # a refusal is not retried


def test_views_publish_rules():
    with SlackStandIn() as standin:
        standin.add_user("UALICE", "alice")
        slack = WebClient(token=standin.bot_token, base_url=standin.api_url)
        home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
        first = slack.views_publish(user_id="UALICE", view=home)["view"]
        assert first["type"] == "home" and standin.home("UALICE")["id"] == first["id"]
        again = slack.views_publish(user_id="UALICE", view=home, hash=first["hash"])["view"]
        assert again["id"] == first["id"] and len(standin.home_versions("UALICE")) == 2
        for kwargs, error in (
            ({"user_id": "UALICE", "view": home, "hash": first["hash"]}, "hash_conflict"),
            ({"user_id": "UNOBODY", "view": home}, "user_not_found"),
            ({"user_id": "UALICE", "view": {**home, "type": "modal"}}, "invalid_arguments"),
            (
                {"user_id": "UALICE", "view": {"type": "home", "blocks": [{"type": "divider"}] * 101}},
                "invalid_arguments",
            ),
        ):
            with pytest.raises(SlackApiError) as caught:
                slack.views_publish(**kwargs)
            assert caught.value.response["error"] == error
