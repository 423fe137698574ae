"""Microsoft Graph: the cross-tenant migration client, the job and task models, and what each status allows."""
