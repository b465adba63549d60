//! TLSRoute, TCPRoute and UDPRoute rules → Kong stream routes.
//!
//! STUB: to be written.

use super::RuleOutcome;
use super::attach::Attachment;
use super::backends::Backends;
use super::routes::RouteView;

pub fn translate(_view: &RouteView, _attachments: &[&Attachment], _backends: &mut Backends<'_>) -> RuleOutcome {
    RuleOutcome::default()
}
