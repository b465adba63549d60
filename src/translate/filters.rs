//! HTTPRoute / GRPCRoute filters → Kong plugins.
//!
//! STUB: to be written.
