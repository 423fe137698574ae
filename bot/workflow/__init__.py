"""The migration workflow, free of Bolt: the authorization checkpoint (access), the /migrate flow, approvals,
the poller and the root post, reports, policy, whoami, worker pools."""
