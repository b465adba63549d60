//! Attachment: which listeners each `parentRefs` entry of a route attaches to.
//!
//! STUB: to be written.

use super::TranslateInput;
use super::routes::{ParentRef, RouteView};
use crate::plan::{ListenerKey, ListenerProtocol, Verdict};

/// Lookups the attachment rules need, built once per translation.
pub struct Context<'a> {
    pub input: &'a TranslateInput<'a>,
}

impl<'a> Context<'a> {
    pub fn new(input: &'a TranslateInput<'a>) -> Self {
        Self { input }
    }
}

/// The hostnames a route may match on one listener: the intersection of the listener's
/// hostname and the route's hostnames (lower-case; wildcards as `*.example.com`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hostnames {
    /// No hostname restriction on either side.
    Any,
    /// Only these (never empty).
    Only(Vec<String>),
}

/// A route attached to one listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub listener: ListenerKey,
    /// The listener port, which Kong sees as `net.dst.port`.
    pub port: u16,
    pub protocol: ListenerProtocol,
    pub hostnames: Hostnames,
}

/// One `parentRefs` entry that names a Gateway of this class.
#[derive(Clone, Debug)]
pub struct ParentAttachment {
    pub parent_ref: ParentRef,
    /// `Accepted` for this parent (before rule problems are considered).
    pub accepted: Verdict,
    /// The listeners it attached to; empty when not accepted.
    pub attachments: Vec<Attachment>,
}

/// The parentRefs of `route` that name Gateways of this class, in spec order.
pub fn attach(_context: &Context<'_>, _route: &RouteView) -> Vec<ParentAttachment> {
    Vec::new()
}
