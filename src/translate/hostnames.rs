//! Hostname matching and intersection (listener × route).
//!
//! STUB: to be written.
