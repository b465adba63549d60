//! Backends: backendRefs → Kong services, upstreams and targets.
//!
//! STUB: to be written.

use super::TranslateInput;
use super::kong;

/// Collects the services and upstreams the routes need, one per distinct backend set.
pub struct Backends<'a> {
    #[allow(dead_code)]
    input: &'a TranslateInput<'a>,
}

impl<'a> Backends<'a> {
    pub fn new(input: &'a TranslateInput<'a>) -> Self {
        Self { input }
    }

    /// The services and upstreams collected, sorted by name.
    pub fn finish(self) -> (Vec<kong::Service>, Vec<kong::Upstream>) {
        (Vec::new(), Vec::new())
    }
}
