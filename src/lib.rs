//! kongress: turns Gateway API objects into running Kong gateways.
//!
//! The core modules (`plan`, `render`, `status`, `pki`) are pure functions over
//! plain data; `controller` is the thin shell that reads caches, calls the core
//! and writes to the API server.

pub mod api;
pub mod controller;
pub mod decide;
pub mod kong;
pub mod leader;
pub mod metrics;
pub mod objects;
pub mod pki;
pub mod plan;
pub mod render;
pub mod status;
pub mod telemetry;
pub mod translate;
