"""Microsoft Graph: the cross-tenant migration client, the job and task models (status sets, whether an action
took effect), and what each status allows (eligibility)."""
