//! Trace export settings, from the standard OpenTelemetry environment variables only.
//!
//! The OTLP exporter and the SDK read most of these variables themselves (endpoint,
//! headers, protocol, timeout and compression by the exporter; `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES` by the SDK's resource detectors; `OTEL_BSP_*` by the batch
//! processor). kongress reads what it must decide before building them:
//!
//! - whether to trace at all: only when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and neither `OTEL_SDK_DISABLED=true` nor
//!   `OTEL_TRACES_EXPORTER=none` says otherwise);
//! - the transport, from `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`;
//! - whether the endpoint needs TLS, from its scheme;
//! - the sampler, from `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`: the SDK would
//!   fall back to its default on a value it does not know, kongress refuses to start;
//! - the request timeout of its own HTTP client;
//! - whether the environment names the service, else it is called `kongress`.
//!
//! Empty values count as unset, as the specification asks.

use std::fmt;
use std::time::Duration;

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        })
    }
}

/// Which traces are recorded (the specification's `OTEL_TRACES_SAMPLER` values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SamplerSetting {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

impl SamplerSetting {
    pub fn sampler(self) -> opentelemetry_sdk::trace::Sampler {
        use opentelemetry_sdk::trace::Sampler;
        match self {
            SamplerSetting::AlwaysOn => Sampler::AlwaysOn,
            SamplerSetting::AlwaysOff => Sampler::AlwaysOff,
            SamplerSetting::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio),
            SamplerSetting::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerSetting::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            SamplerSetting::ParentBasedTraceIdRatio(ratio) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
            }
        }
    }
}

/// How traces are exported; exists only when an endpoint is configured.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSettings {
    /// The endpoint as configured, and the variable it came from.
    pub endpoint: String,
    pub endpoint_variable: &'static str,
    pub protocol: Protocol,
    /// The endpoint's scheme is `https`.
    pub tls: bool,
    pub sampler: SamplerSetting,
    /// How long one export request may take.
    pub timeout: Duration,
    /// Neither `OTEL_SERVICE_NAME` nor `service.name` in `OTEL_RESOURCE_ATTRIBUTES` is set.
    pub default_service_name: bool,
}

/// A variable kongress cannot use, with why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?}: {reason}")]
pub struct SettingsError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

/// The spec's default when the environment names no sampler.
const DEFAULT_SAMPLER: SamplerSetting = SamplerSetting::ParentBasedAlwaysOn;
/// The spec's default export timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the settings through `env` (the process environment, or a table in tests).
/// `Ok(None)`: no endpoint is configured (or tracing is switched off), so nothing is
/// exported and no OpenTelemetry layer is installed.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<TraceSettings>, SettingsError> {
    let get = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    if let Some(value) = get("OTEL_SDK_DISABLED") {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => return Ok(None),
            "false" => {}
            _ => return Err(invalid("OTEL_SDK_DISABLED", value, "expected true or false")),
        }
    }
    if let Some(value) = get("OTEL_TRACES_EXPORTER") {
        match value.trim() {
            "none" => return Ok(None),
            "otlp" => {}
            _ => {
                return Err(invalid(
                    "OTEL_TRACES_EXPORTER",
                    value,
                    "kongress exports traces over OTLP only: expected otlp or none",
                ));
            }
        }
    }
    let (endpoint_variable, endpoint) = match (
        get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(endpoint), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
        (None, Some(endpoint)) => ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        (None, None) => return Ok(None),
    };
    let endpoint = endpoint.trim().to_string();
    let tls = endpoint_tls(&endpoint).map_err(|reason| invalid(endpoint_variable, endpoint.clone(), reason))?;
    let protocol = protocol(&get)?;
    let sampler = sampler(&get)?;
    let timeout = timeout(&get)?;
    let default_service_name = get("OTEL_SERVICE_NAME").is_none()
        && !get("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|attributes| names_service(&attributes));
    Ok(Some(TraceSettings {
        endpoint,
        endpoint_variable,
        protocol,
        tls,
        sampler,
        timeout,
        default_service_name,
    }))
}

fn invalid(variable: &'static str, value: String, reason: impl Into<String>) -> SettingsError {
    SettingsError {
        variable,
        value,
        reason: reason.into(),
    }
}

/// The first of `names` that is set, with its name.
fn first_set(get: &dyn Fn(&str) -> Option<String>, names: [&'static str; 2]) -> Option<(&'static str, String)> {
    names.into_iter().find_map(|name| get(name).map(|value| (name, value)))
}

/// Whether the endpoint needs TLS; an endpoint must name its scheme.
fn endpoint_tls(endpoint: &str) -> Result<bool, String> {
    let lower = endpoint.to_ascii_lowercase();
    let (tls, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err("expected a URL starting with http:// or https://".into());
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err("the URL names no host".into());
    }
    Ok(tls)
}

fn protocol(get: &dyn Fn(&str) -> Option<String>) -> Result<Protocol, SettingsError> {
    let Some((variable, value)) = first_set(
        get,
        ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"],
    ) else {
        // The specification's default.
        return Ok(Protocol::HttpProtobuf);
    };
    match value.trim() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Err(invalid(
            variable,
            value,
            "kongress does not export http/json: use grpc or http/protobuf",
        )),
        _ => Err(invalid(variable, value, "expected grpc or http/protobuf")),
    }
}

fn sampler(get: &dyn Fn(&str) -> Option<String>) -> Result<SamplerSetting, SettingsError> {
    let Some(name) = get("OTEL_TRACES_SAMPLER") else {
        return Ok(DEFAULT_SAMPLER);
    };
    let ratio = || -> Result<f64, SettingsError> {
        // The specification's default ratio when the argument is missing.
        let Some(argument) = get("OTEL_TRACES_SAMPLER_ARG") else {
            return Ok(1.0);
        };
        match argument.trim().parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
            _ => Err(invalid(
                "OTEL_TRACES_SAMPLER_ARG",
                argument,
                "expected a sampling ratio from 0 to 1",
            )),
        }
    };
    match name.trim() {
        "always_on" => Ok(SamplerSetting::AlwaysOn),
        "always_off" => Ok(SamplerSetting::AlwaysOff),
        "traceidratio" => Ok(SamplerSetting::TraceIdRatio(ratio()?)),
        "parentbased_always_on" => Ok(SamplerSetting::ParentBasedAlwaysOn),
        "parentbased_always_off" => Ok(SamplerSetting::ParentBasedAlwaysOff),
        "parentbased_traceidratio" => Ok(SamplerSetting::ParentBasedTraceIdRatio(ratio()?)),
        _ => Err(invalid(
            "OTEL_TRACES_SAMPLER",
            name,
            "expected always_on, always_off, traceidratio, parentbased_always_on, \
             parentbased_always_off or parentbased_traceidratio",
        )),
    }
}

fn timeout(get: &dyn Fn(&str) -> Option<String>) -> Result<Duration, SettingsError> {
    let Some((variable, value)) = first_set(get, ["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"])
    else {
        return Ok(DEFAULT_TIMEOUT);
    };
    match value.trim().parse::<u64>() {
        Ok(milliseconds) if milliseconds > 0 => Ok(Duration::from_millis(milliseconds)),
        _ => Err(invalid(variable, value, "expected a positive number of milliseconds")),
    }
}

/// Whether `OTEL_RESOURCE_ATTRIBUTES` (`key=value,key=value`) sets `service.name`.
fn names_service(attributes: &str) -> bool {
    attributes.split(',').any(|pair| {
        pair.split_once('=')
            .is_some_and(|(key, value)| key.trim() == "service.name" && !value.trim().is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(vars: &[(&str, &str)]) -> Result<Option<TraceSettings>, SettingsError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        from_env(&|name: &str| vars.get(name).cloned())
    }

    fn settings(vars: &[(&str, &str)]) -> TraceSettings {
        read(vars).expect("valid settings").expect("tracing on")
    }

    fn error_variable(vars: &[(&str, &str)]) -> &'static str {
        read(vars).expect_err("invalid settings").variable
    }

    const ENDPOINT: (&str, &str) = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");

    #[test]
    fn without_an_endpoint_nothing_is_exported() {
        assert_eq!(read(&[]), Ok(None));
        assert_eq!(read(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]), Ok(None));
        // Settings that only matter with an endpoint do not switch tracing on.
        assert_eq!(
            read(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_SERVICE_NAME", "x")]),
            Ok(None)
        );
    }

    #[test]
    fn the_traces_endpoint_wins_over_the_generic_one() {
        let s = settings(&[
            ENDPOINT,
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://traces.example:443/v1/traces",
            ),
        ]);
        assert_eq!(s.endpoint, "https://traces.example:443/v1/traces");
        assert_eq!(s.endpoint_variable, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        assert!(s.tls);
        let s = settings(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", " ")]);
        assert_eq!(s.endpoint_variable, "OTEL_EXPORTER_OTLP_ENDPOINT");
        assert!(!s.tls);
    }

    #[test]
    fn an_endpoint_must_be_an_http_or_https_url_with_a_host() {
        for bad in [
            "collector:4317",
            "grpc://collector:4317",
            "http://",
            "https:///v1/traces",
        ] {
            assert_eq!(
                error_variable(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]),
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "{bad}"
            );
        }
        assert!(settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "HTTPS://Collector")]).tls);
    }

    #[test]
    fn protocol_defaults_to_http_protobuf_and_the_traces_variable_wins() {
        assert_eq!(settings(&[ENDPOINT]).protocol, Protocol::HttpProtobuf);
        assert_eq!(
            settings(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).protocol,
            Protocol::Grpc
        );
        assert_eq!(
            settings(&[
                ENDPOINT,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ])
            .protocol,
            Protocol::HttpProtobuf
        );
    }

    #[test]
    fn unknown_or_unsupported_protocols_are_refused() {
        assert_eq!(
            error_variable(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]),
            "OTEL_EXPORTER_OTLP_PROTOCOL"
        );
        assert_eq!(
            error_variable(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "GRPC")]),
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
        );
    }

    #[test]
    fn sampler_defaults_to_parent_based_always_on() {
        assert_eq!(settings(&[ENDPOINT]).sampler, SamplerSetting::ParentBasedAlwaysOn);
    }

    #[test]
    fn ratio_samplers_take_their_argument_or_sample_everything_without_one() {
        let sampler = |vars: &[(&str, &str)]| settings(&[&[ENDPOINT], vars].concat()).sampler;
        assert_eq!(
            sampler(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25")
            ]),
            SamplerSetting::TraceIdRatio(0.25)
        );
        assert_eq!(
            sampler(&[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")]),
            SamplerSetting::ParentBasedTraceIdRatio(1.0)
        );
        // The argument means nothing to the other samplers.
        assert_eq!(
            sampler(&[("OTEL_TRACES_SAMPLER", "always_off"), ("OTEL_TRACES_SAMPLER_ARG", "x")]),
            SamplerSetting::AlwaysOff
        );
        assert_eq!(
            sampler(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]),
            SamplerSetting::ParentBasedAlwaysOff
        );
        assert_eq!(
            sampler(&[("OTEL_TRACES_SAMPLER", "always_on")]),
            SamplerSetting::AlwaysOn
        );
    }

    #[test]
    fn bad_sampler_names_and_ratios_are_refused() {
        assert_eq!(
            error_variable(&[ENDPOINT, ("OTEL_TRACES_SAMPLER", "jaeger_remote")]),
            "OTEL_TRACES_SAMPLER"
        );
        for ratio in ["1.5", "-0.1", "half", "NaN"] {
            assert_eq!(
                error_variable(&[
                    ENDPOINT,
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", ratio)
                ]),
                "OTEL_TRACES_SAMPLER_ARG",
                "{ratio}"
            );
        }
    }

    #[test]
    fn timeout_is_in_milliseconds_and_the_traces_variable_wins() {
        assert_eq!(settings(&[ENDPOINT]).timeout, Duration::from_secs(10));
        assert_eq!(
            settings(&[
                ENDPOINT,
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "250")
            ])
            .timeout,
            Duration::from_millis(250)
        );
        assert_eq!(
            error_variable(&[ENDPOINT, ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")]),
            "OTEL_EXPORTER_OTLP_TIMEOUT"
        );
    }

    #[test]
    fn the_service_is_called_kongress_unless_the_environment_names_it() {
        assert!(settings(&[ENDPOINT]).default_service_name);
        assert!(!settings(&[ENDPOINT, ("OTEL_SERVICE_NAME", "gateways")]).default_service_name);
        assert!(
            !settings(&[
                ENDPOINT,
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=prod, service.name=gw"
                )
            ])
            .default_service_name
        );
        assert!(settings(&[ENDPOINT, ("OTEL_RESOURCE_ATTRIBUTES", "service.namespace=gw")]).default_service_name);
    }

    #[test]
    fn tracing_can_be_switched_off_despite_an_endpoint() {
        assert_eq!(read(&[ENDPOINT, ("OTEL_SDK_DISABLED", "true")]), Ok(None));
        assert_eq!(read(&[ENDPOINT, ("OTEL_TRACES_EXPORTER", "none")]), Ok(None));
        assert!(read(&[ENDPOINT, ("OTEL_SDK_DISABLED", "false")]).is_ok_and(|s| s.is_some()));
        assert_eq!(
            error_variable(&[ENDPOINT, ("OTEL_TRACES_EXPORTER", "zipkin")]),
            "OTEL_TRACES_EXPORTER"
        );
    }
}
