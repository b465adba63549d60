//! What a GatewayClass's `parametersRef` resolves to.

use std::sync::Arc;

use crate::api::{GatewayClass, KongProxy, KongProxySpec, ObjectKey};

/// The data plane parameters of a class and where its data plane lives.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassParameters {
    pub proxy: KongProxySpec,
    pub namespace: String,
    /// Why the `parametersRef` cannot be used (the class is then not accepted).
    pub problem: Option<String>,
}

/// The KongProxy the class names, or why the reference cannot name one.
pub fn parameters_target(class: &GatewayClass) -> Option<Result<ObjectKey, String>> {
    let reference = class.spec.parameters_ref.as_ref()?;
    if reference.group != "kongress.dev" || reference.kind != "KongProxy" {
        return Some(Err(format!(
            "parametersRef must name a kongress.dev KongProxy, not {}/{}",
            reference.group, reference.kind
        )));
    }
    Some(match &reference.namespace {
        Some(namespace) => Ok(ObjectKey::new(namespace, &reference.name)),
        None => Err(format!(
            "parametersRef to KongProxy {} lacks a namespace; KongProxy is namespaced",
            reference.name
        )),
    })
}

/// Resolves the class's parameters; without a usable KongProxy the defaults apply in the
/// operator's namespace (or the named one, so a missing KongProxy does not move the data plane).
pub fn resolve_parameters(
    class: &GatewayClass,
    operator_namespace: &str,
    proxies: &dyn Fn(&ObjectKey) -> Option<Arc<KongProxy>>,
) -> ClassParameters {
    let defaults = |namespace: &str, problem| ClassParameters {
        proxy: KongProxySpec::default(),
        namespace: namespace.to_string(),
        problem,
    };
    match parameters_target(class) {
        None => defaults(operator_namespace, None),
        Some(Err(problem)) => defaults(operator_namespace, Some(problem)),
        Some(Ok(key)) => match proxies(&key) {
            Some(proxy) => ClassParameters {
                proxy: proxy.spec.clone(),
                namespace: key.namespace,
                problem: None,
            },
            None => defaults(&key.namespace, Some(format!("KongProxy {key} does not exist"))),
        },
    }
}
