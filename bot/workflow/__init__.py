"""The migration workflow, free of Bolt: the /migrate flow, approvals, the poller, reports, policy, workers."""
