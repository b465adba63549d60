//! Status computation: planner verdicts and data plane state in, Gateway API
//! status out. Pure; the controller decides whether to write it.

mod class;
pub mod conditions;
mod gateway;
mod observe;

pub use class::{ClassVerdict, gateway_class_conditions};
pub use conditions::{
    ConditionChange, DesiredCondition, StatusEvent, changed_conditions, gateway_status_events, merge_conditions,
};
pub use gateway::{DataPlaneState, DeploymentState, ServiceAddress, gateway_status};
pub use observe::{deployment_state, service_addresses};
