//! Status computation: planner verdicts and data plane state in, Gateway API
//! status out. Pure; the controller decides whether to write it.

mod class;
pub mod conditions;
mod gateway;
mod observe;
mod route;

pub use class::{
    ClassVerdict, InstalledCrd, SUPPORTED_FEATURES, VersionVerdict, crd_versions, gateway_class_conditions,
    is_gateway_api_crd,
};
pub use conditions::{
    ConditionChange, ConditionStatus, DesiredCondition, StatusEvent, changed_conditions, drop_condition,
    gateway_status_events, merge_conditions,
};
pub use gateway::{ConfigState, DataPlaneState, DeploymentState, ServiceAddress, gateway_status};
pub use observe::{deployment_state, service_addresses};
pub use route::{RouteParentStatus, RouteStatus, route_parents, route_status};
