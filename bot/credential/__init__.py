"""The admin's credential: where Graph tokens come from (delegated, application, static), its MSAL transport and errors, the encrypted token cache, and its health."""
