//! GrpcRoute rules → Kong routes.
//!
//! STUB: to be written.

use std::sync::Arc;

use super::RuleOutcome;
use super::attach::Attachment;
use super::backends::Backends;
use super::routes::{GrpcRoute, RouteView};

pub fn translate(
    _view: &RouteView,
    _route: &Arc<GrpcRoute>,
    _attachments: &[&Attachment],
    _backends: &mut Backends<'_>,
) -> RuleOutcome {
    RuleOutcome::default()
}
