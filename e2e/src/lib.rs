//! Helpers for the e2e tests: a running local cluster and a running kongress.
