//! Building ATC expressions (Kong expressions router) safely.
//!
//! STUB: to be written.
