//! HTTPRoute / GRPCRoute filters → Kong plugins (Kong 3.9 OSS; schemas in
//! `kong/plugins/<name>/schema.lua`, behaviour in their handlers).
//!
//! | filter | Kong plugin | fields |
//! |---|---|---|
//! | `RequestHeaderModifier` | `request-transformer` | `set` → `replace.headers` + `add.headers` (replace acts only on a present header, add only on an absent one), `add` → `append.headers`, `remove` → `remove.headers` |
//! | `ResponseHeaderModifier` | `response-transformer` | the same mapping |
//! | `URLRewrite` hostname | `request-transformer` | `replace.headers` `host:<name>` (Kong sets the upstream Host from it, also on balancer retries) |
//! | `URLRewrite` `ReplaceFullPath` | `request-transformer` | `replace.uri` (the query string is kept) |
//! | `URLRewrite` `ReplacePrefixMatch` | `request-transformer` | `replace.uri` = replacement + `$(uri_captures.kongress_rest)`; the match becomes a regex capturing what follows the prefix ([`super::expression::path_prefix_capturing`]) |
//! | `RequestRedirect` | `redirect` | when the Location is known but for the request's path and query (`keep_incoming_path`) |
//! | `RequestRedirect` | `pre-function` | when the Location needs the request's Host (route without one exact hostname) or a path modifier (the query string is kept, which the `redirect` plugin cannot do with a path of its own): a few lines of Lua building it from `kong.request` |
//! | `CORS` | `cors` | see [`cors`] |
//! | `RequestMirror`, `ExtensionRef`, filters on a backendRef | — | unsupported: the rule is left out and reported |
//!
//! request-transformer renders its values as Penlight templates (`$(expr)`), and both
//! transformers split `name:value` at the first run of colons, so a value holding `$(` or
//! starting with `:` is written through a template that yields the literal characters
//! ([`template_literal`]); this relies on Kong's default `untrusted_lua = sandbox`.
//! response-transformer has no templates, so there a value starting with `:` cannot be
//! expressed and the rule is reported. Kong's header name check (`^[a-zA-Z0-9-_]+$`,
//! `kong/tools/http.lua`) applies to request-transformer names.

use serde_json::{Value, json};

use super::expression::{REST_CAPTURE, escape_regex, normalized_prefix};
use super::kong;

type HttpFilter = gateway_api::httproutes::HttpRouteRulesFilters;
type GrpcFilter = gateway_api::grpcroutes::GrpcRouteRulesFilters;

/// Why a rule cannot be served as written.
pub type Problem = String;

/// What the filters of one rule ask of every Kong route made from it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleFilters {
    /// Plugins every Kong route of the rule carries, sorted by name.
    pub plugins: Vec<kong::Plugin>,
    /// The rule answers with a redirect; its plugin depends on each Kong route's listener and
    /// hostname ([`redirect_plugin`]).
    pub redirect: Option<Redirect>,
    /// `URLRewrite` `ReplacePrefixMatch`: the path match must capture the rest of the path.
    pub captures_prefix: bool,
}

/// `RequestRedirect`, with the spec's defaults not yet applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redirect {
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<u16>,
    pub path: Option<PathModifier>,
    pub status: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathModifier {
    Full(String),
    Prefix(String),
}

impl RuleFilters {
    /// Whether a path modifier replaces the matched prefix (the rule then needs exactly one
    /// `PathPrefix` match).
    pub fn replaces_prefix(&self) -> bool {
        self.captures_prefix
            || matches!(
                self.redirect.as_ref().and_then(|r| r.path.as_ref()),
                Some(PathModifier::Prefix(_))
            )
    }
}

/// Header edits of a `RequestHeaderModifier` / `ResponseHeaderModifier` of any route kind.
#[derive(Debug, Default)]
struct HeaderEdits<'a> {
    set: Vec<(&'a str, &'a str)>,
    add: Vec<(&'a str, &'a str)>,
    remove: Vec<&'a str>,
}

macro_rules! header_edits {
    ($m:expr) => {
        HeaderEdits {
            set: $m
                .set
                .iter()
                .flatten()
                .map(|h| (h.name.as_str(), h.value.as_str()))
                .collect(),
            add: $m
                .add
                .iter()
                .flatten()
                .map(|h| (h.name.as_str(), h.value.as_str()))
                .collect(),
            remove: $m.remove.iter().flatten().map(String::as_str).collect(),
        }
    };
}

/// Builds request-transformer's config from header edits and rewrites.
#[derive(Debug, Default)]
struct RequestTransformer {
    remove: Vec<String>,
    replace: Vec<String>,
    add: Vec<String>,
    append: Vec<String>,
    uri: Option<String>,
}

impl RequestTransformer {
    fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.replace.is_empty()
            && self.add.is_empty()
            && self.append.is_empty()
            && self.uri.is_none()
    }

    fn edits(&mut self, edits: &HeaderEdits<'_>) -> Result<(), Problem> {
        for &(name, value) in &edits.set {
            let entry = request_header_entry(name, value)?;
            self.replace.push(entry.clone());
            self.add.push(entry);
        }
        for &(name, value) in &edits.add {
            self.append.push(request_header_entry(name, value)?);
        }
        for &name in &edits.remove {
            check_request_header_name(name)?;
            self.remove.push(name.to_string());
        }
        Ok(())
    }

    fn config(self) -> Value {
        let mut replace = json!({ "headers": self.replace });
        if let (Some(uri), Some(map)) = (self.uri, replace.as_object_mut()) {
            map.insert("uri".to_string(), Value::String(uri));
        }
        json!({
            "remove": { "headers": self.remove },
            "replace": replace,
            "add": { "headers": self.add },
            "append": { "headers": self.append },
        })
    }
}

/// Kong's `validate_header_name`.
fn check_request_header_name(name: &str) -> Result<(), Problem> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(format!(
            "header name {name:?}: Kong's request-transformer accepts only letters, digits, '-' and '_'"
        ))
    }
}

/// Header values go into HTTP as they are: a control character (other than a tab) would end
/// or corrupt the header line.
fn check_header_value(name: &str, value: &str) -> Result<(), Problem> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(format!("header {name:?}: the value has a control character"));
    }
    Ok(())
}

fn request_header_entry(name: &str, value: &str) -> Result<String, Problem> {
    check_request_header_name(name)?;
    check_header_value(name, value)?;
    Ok(format!("{name}:{}", template_literal(value)))
}

fn response_header_entry(name: &str, value: &str) -> Result<String, Problem> {
    if name.is_empty() || name.contains(':') {
        return Err(format!(
            "header name {name:?} cannot be written for response-transformer"
        ));
    }
    check_header_value(name, value)?;
    if value.starts_with(':') {
        return Err(format!(
            "header {name:?}: Kong's response-transformer drops the colons a value starts with"
        ));
    }
    Ok(format!("{name}:{value}"))
}

/// A Penlight template (request-transformer) that renders to `text` exactly: every `$(` is
/// written as `$("$")(` (the `$` comes out of an expression, so no expression starts there),
/// and a leading `:` as `$(":")`, which survives Kong's `name:*value` split.
pub fn template_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let rest = match text.strip_prefix(':') {
        Some(rest) => {
            out.push_str(r#"$(":")"#);
            rest
        }
        None => text,
    };
    let mut pieces = rest.split("$(");
    if let Some(first) = pieces.next() {
        out.push_str(first);
    }
    for piece in pieces {
        out.push_str(r#"$("$")("#);
        out.push_str(piece);
    }
    out
}

fn response_transformer(edits: &HeaderEdits<'_>) -> Result<Value, Problem> {
    let mut replace = Vec::new();
    let mut add = Vec::new();
    let mut append = Vec::new();
    let mut remove = Vec::new();
    for &(name, value) in &edits.set {
        let entry = response_header_entry(name, value)?;
        replace.push(entry.clone());
        add.push(entry);
    }
    for &(name, value) in &edits.add {
        append.push(response_header_entry(name, value)?);
    }
    for &name in &edits.remove {
        remove.push(name.to_string());
    }
    Ok(json!({
        "remove": { "headers": remove },
        "replace": { "headers": replace },
        "add": { "headers": add },
        "append": { "headers": append },
    }))
}

fn plugin(name: &str, config: Value, tags: &[String]) -> kong::Plugin {
    kong::Plugin {
        name: name.to_string(),
        config,
        tags: tags.to_vec(),
    }
}

/// The URI template for `ReplacePrefixMatch`: the replacement (its trailing `/` dropped)
/// followed by what followed the matched prefix; `/` when both are empty. This reproduces the
/// table in Gateway API's `HTTPPathModifier.ReplacePrefixMatch` doc.
fn prefix_rewrite_template(replacement: &str) -> String {
    let replacement = replacement.trim_end_matches('/');
    if replacement.is_empty() {
        format!(r#"$(uri_captures.{REST_CAPTURE} ~= "" and uri_captures.{REST_CAPTURE} or "/")"#)
    } else {
        format!("{}$(uri_captures.{REST_CAPTURE})", template_literal(replacement))
    }
}

fn missing(kind: &str) -> Problem {
    format!("{kind} filter without its configuration")
}

/// The filters of an HTTPRoute rule.
pub fn http_rule(filters: &[HttpFilter], tags: &[String]) -> Result<RuleFilters, Problem> {
    use gateway_api::httproutes::HttpRouteRulesFiltersType as T;
    let mut out = RuleFilters::default();
    let mut request = RequestTransformer::default();
    let mut response: Option<Value> = None;
    let mut cors_config: Option<Value> = None;
    for filter in filters {
        match filter.r#type {
            T::RequestHeaderModifier => {
                let m = filter
                    .request_header_modifier
                    .as_ref()
                    .ok_or_else(|| missing("RequestHeaderModifier"))?;
                request.edits(&header_edits!(m))?;
            }
            T::ResponseHeaderModifier => {
                let m = filter
                    .response_header_modifier
                    .as_ref()
                    .ok_or_else(|| missing("ResponseHeaderModifier"))?;
                response = Some(response_transformer(&header_edits!(m))?);
            }
            T::UrlRewrite => {
                use gateway_api::httproutes::HttpRouteRulesFiltersUrlRewritePathType as P;
                let rewrite = filter.url_rewrite.as_ref().ok_or_else(|| missing("URLRewrite"))?;
                if let Some(hostname) = &rewrite.hostname {
                    request.replace.push(request_header_entry("host", hostname)?);
                }
                if let Some(path) = &rewrite.path {
                    match path.r#type {
                        P::ReplaceFullPath => {
                            let full = path
                                .replace_full_path
                                .as_deref()
                                .ok_or_else(|| missing("URLRewrite ReplaceFullPath"))?;
                            check_path(full)?;
                            request.uri = Some(template_literal(full));
                        }
                        P::ReplacePrefixMatch => {
                            let prefix = path
                                .replace_prefix_match
                                .as_deref()
                                .ok_or_else(|| missing("URLRewrite ReplacePrefixMatch"))?;
                            check_path(prefix)?;
                            request.uri = Some(prefix_rewrite_template(prefix));
                            out.captures_prefix = true;
                        }
                    }
                }
            }
            T::RequestRedirect => {
                use gateway_api::httproutes::HttpRouteRulesFiltersRequestRedirectPathType as P;
                use gateway_api::httproutes::HttpRouteRulesFiltersRequestRedirectScheme as S;
                let r = filter
                    .request_redirect
                    .as_ref()
                    .ok_or_else(|| missing("RequestRedirect"))?;
                let path = match &r.path {
                    None => None,
                    Some(p) => Some(match p.r#type {
                        P::ReplaceFullPath => PathModifier::Full(
                            p.replace_full_path
                                .clone()
                                .ok_or_else(|| missing("RequestRedirect ReplaceFullPath"))?,
                        ),
                        P::ReplacePrefixMatch => PathModifier::Prefix(
                            p.replace_prefix_match
                                .clone()
                                .ok_or_else(|| missing("RequestRedirect ReplacePrefixMatch"))?,
                        ),
                    }),
                };
                if let Some(PathModifier::Full(p) | PathModifier::Prefix(p)) = &path {
                    check_path(p)?;
                }
                let status = r.status_code.unwrap_or(302);
                let status = u16::try_from(status)
                    .ok()
                    .filter(|s| matches!(s, 301 | 302 | 303 | 307 | 308))
                    .ok_or_else(|| format!("RequestRedirect status code {status} is not a redirect status"))?;
                let port = match r.port {
                    None => None,
                    Some(p) => Some(
                        u16::try_from(p)
                            .ok()
                            .filter(|&p| p > 0)
                            .ok_or_else(|| format!("RequestRedirect port {p}"))?,
                    ),
                };
                if let Some(hostname) = &r.hostname
                    && !hostname
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                {
                    return Err(format!("RequestRedirect hostname {hostname:?}"));
                }
                out.redirect = Some(Redirect {
                    scheme: r.scheme.as_ref().map(|s| match s {
                        S::Http => "http".to_string(),
                        S::Https => "https".to_string(),
                    }),
                    hostname: r.hostname.clone(),
                    port,
                    path,
                    status,
                });
            }
            T::Cors => {
                let c = filter.cors.as_ref().ok_or_else(|| missing("CORS"))?;
                cors_config = Some(cors(
                    c.allow_origins.as_deref().unwrap_or_default(),
                    c.allow_methods.as_deref().unwrap_or_default(),
                    c.allow_headers.as_deref().unwrap_or_default(),
                    c.expose_headers.as_deref().unwrap_or_default(),
                    c.allow_credentials.unwrap_or(false),
                    c.max_age.unwrap_or(5),
                )?);
            }
            T::RequestMirror => return Err("RequestMirror filter: Kong 3.9 OSS cannot mirror requests".to_string()),
            T::ExtensionRef => return Err("ExtensionRef filter: kongress defines no extension filters".to_string()),
        }
    }
    if let Some(config) = cors_config {
        out.plugins.push(plugin("cors", config, tags));
    }
    if !request.is_empty() {
        out.plugins.push(plugin("request-transformer", request.config(), tags));
    }
    if let Some(config) = response {
        out.plugins.push(plugin("response-transformer", config, tags));
    }
    Ok(out)
}

/// The filters of a GRPCRoute rule.
pub fn grpc_rule(filters: &[GrpcFilter], tags: &[String]) -> Result<RuleFilters, Problem> {
    use gateway_api::grpcroutes::GrpcRouteRulesFiltersType as T;
    let mut out = RuleFilters::default();
    let mut request = RequestTransformer::default();
    let mut response: Option<Value> = None;
    for filter in filters {
        match filter.r#type {
            T::RequestHeaderModifier => {
                let m = filter
                    .request_header_modifier
                    .as_ref()
                    .ok_or_else(|| missing("RequestHeaderModifier"))?;
                request.edits(&header_edits!(m))?;
            }
            T::ResponseHeaderModifier => {
                let m = filter
                    .response_header_modifier
                    .as_ref()
                    .ok_or_else(|| missing("ResponseHeaderModifier"))?;
                response = Some(response_transformer(&header_edits!(m))?);
            }
            T::RequestMirror => return Err("RequestMirror filter: Kong 3.9 OSS cannot mirror requests".to_string()),
            T::ExtensionRef => return Err("ExtensionRef filter: kongress defines no extension filters".to_string()),
        }
    }
    if !request.is_empty() {
        out.plugins.push(plugin("request-transformer", request.config(), tags));
    }
    if let Some(config) = response {
        out.plugins.push(plugin("response-transformer", config, tags));
    }
    Ok(out)
}

/// Paths written into a URI or a Location: Gateway API restricts them to URL path characters;
/// a control character (which the standard CRD does not rule out) would break the request.
fn check_path(path: &str) -> Result<(), Problem> {
    if path.chars().any(char::is_control) {
        return Err(format!("path {path:?} has a control character"));
    }
    Ok(())
}

/// `CORS` → Kong's `cors` plugin.
///
/// - `allowOrigins`: `*` alone → `*`; an origin of plain characters stays a string (Kong compares
///   it with the request's origin, default ports dropped on both sides); one with `*` in its
///   host becomes a regex where `*` spans any labels (`[A-Za-z0-9.-]*`), anchored (Kong anchors
///   the start itself). No origin at all → a regex that matches nothing, since Kong would
///   otherwise allow every origin.
/// - `allowMethods`: `*` → Kong's default (every method, listed); none → the CORS-safelisted
///   `GET`, `HEAD`, `POST` (Kong would otherwise list all).
/// - `allowHeaders`: `*` → unset, so Kong echoes `Access-Control-Request-Headers` (never a
///   literal `*`, right for credentialed requests too); none → the CORS-safelisted request
///   headers (Kong would otherwise echo any).
/// - `exposeHeaders` → `exposed_headers`; `allowCredentials` → `credentials` (with `*` origins
///   Kong then echoes the request's origin, as the spec demands); `maxAge` → `max_age`.
pub fn cors(
    origins: &[String],
    methods: &[String],
    headers: &[String],
    expose: &[String],
    credentials: bool,
    max_age: i32,
) -> Result<Value, Problem> {
    let mut config = serde_json::Map::new();
    let origins: Vec<String> = if origins.is_empty() {
        vec!["(?!)".to_string()]
    } else if origins.iter().any(|o| o == "*") {
        vec!["*".to_string()]
    } else {
        origins.iter().map(|o| cors_origin(o)).collect::<Result<_, _>>()?
    };
    config.insert("origins".to_string(), json!(origins));
    const KONG_METHODS: [&str; 9] = [
        "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ];
    if methods.is_empty() {
        config.insert("methods".to_string(), json!(["GET", "HEAD", "POST"]));
    } else if !methods.iter().any(|m| m == "*") {
        if let Some(m) = methods.iter().find(|m| !KONG_METHODS.contains(&m.as_str())) {
            return Err(format!("CORS method {m:?} is not one Kong's cors plugin knows"));
        }
        config.insert("methods".to_string(), json!(methods));
    }
    if headers.is_empty() {
        config.insert(
            "headers".to_string(),
            json!(["Accept", "Accept-Language", "Content-Language", "Content-Type"]),
        );
    } else if !headers.iter().any(|h| h == "*") {
        config.insert("headers".to_string(), json!(headers));
    }
    if !expose.is_empty() {
        config.insert("exposed_headers".to_string(), json!(expose));
    }
    config.insert("credentials".to_string(), json!(credentials));
    config.insert("max_age".to_string(), json!(max_age));
    config.insert("preflight_continue".to_string(), json!(false));
    Ok(Value::Object(config))
}

fn cors_origin(origin: &str) -> Result<String, Problem> {
    if origin.chars().any(char::is_control) {
        return Err(format!("CORS origin {origin:?} has a control character"));
    }
    // Kong treats anything beyond these characters as a regular expression.
    if origin
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/' | b'-'))
    {
        return Ok(origin.to_string());
    }
    let mut regex = String::with_capacity(origin.len() + 24);
    for (i, piece) in origin.split('*').enumerate() {
        if i > 0 {
            regex.push_str("[A-Za-z0-9.-]*");
        }
        regex.push_str(&escape_regex(piece));
    }
    regex.push('$');
    Ok(regex)
}

/// Where a Kong route of a redirecting rule listens, and what it knows of the request.
#[derive(Clone, Copy, Debug)]
pub struct RedirectContext<'a> {
    /// `http` or `https`: the listener's protocol.
    pub listener_scheme: &'a str,
    pub listener_port: u16,
    /// The one non-wildcard hostname the Kong route matches, if that is all it matches.
    pub host: Option<&'a str>,
    /// The `PathPrefix` of the match (for `ReplacePrefixMatch`).
    pub prefix: Option<&'a str>,
}

/// The plugin answering a redirect on one Kong route.
///
/// Location per Gateway API: scheme from the filter, else the listener's; host from the filter,
/// else the request's; port from the filter, else the scheme's well-known port when the filter
/// sets a scheme, else the listener's, and left out when it is the scheme's default; path as
/// the filter says. The query string is always kept: a path modifier replaces the path, and
/// in Gateway API the path never includes the query (as for `URLRewrite`, and as Envoy-based
/// implementations redirect).
pub fn redirect_plugin(redirect: &Redirect, context: RedirectContext<'_>, tags: &[String]) -> kong::Plugin {
    let scheme = redirect.scheme.as_deref().unwrap_or(context.listener_scheme);
    let port = match (redirect.port, redirect.scheme.as_deref()) {
        (Some(port), _) => port,
        (None, Some("https")) => 443,
        (None, Some(_)) => 80,
        (None, None) => context.listener_port,
    };
    let port_suffix = match (scheme, port) {
        ("http", 80) | ("https", 443) => String::new(),
        (_, port) => format!(":{port}"),
    };
    let host = redirect.hostname.as_deref().or(context.host);
    match (host, &redirect.path) {
        (Some(host), None) => plugin(
            "redirect",
            json!({
                "status_code": redirect.status,
                "location": format!("{scheme}://{host}{port_suffix}/"),
                "keep_incoming_path": true,
            }),
            tags,
        ),
        (host, path) => plugin(
            "pre-function",
            json!({ "access": [redirect_lua(redirect.status, scheme, host, &port_suffix, path.as_ref(), context.prefix)] }),
            tags,
        ),
    }
}

/// Lua for `pre-function` (whose sandbox exposes `kong`) that answers the redirect. Every
/// value from the route is a Lua string literal written with decimal escapes.
fn redirect_lua(
    status: u16,
    scheme: &str,
    host: Option<&str>,
    port_suffix: &str,
    path: Option<&PathModifier>,
    prefix: Option<&str>,
) -> String {
    let host = match host {
        Some(h) => lua_string(h),
        None => "kong.request.get_host()".to_string(),
    };
    let mut lua = String::from("return function()\n");
    match path {
        None => lua.push_str("  local path = kong.request.get_path()\n"),
        Some(PathModifier::Full(full)) => lua.push_str(&format!("  local path = {}\n", lua_string(full))),
        Some(PathModifier::Prefix(replacement)) => {
            // The route matched the prefix element-wise, so what follows it is empty or starts with '/'.
            let skip = prefix.and_then(normalized_prefix).map_or(0, str::len);
            lua.push_str(&format!(
                "  local path = {} .. string.sub(kong.request.get_path(), {})\n  if path == \"\" then path = \"/\" end\n",
                lua_string(replacement.trim_end_matches('/')),
                skip + 1
            ));
        }
    }
    lua.push_str(&format!(
        "  local location = {} .. {} .. {} .. path\n",
        lua_string(&format!("{scheme}://")),
        host,
        lua_string(port_suffix)
    ));
    lua.push_str("  local query = kong.request.get_raw_query()\n  if query ~= \"\" then location = location .. \"?\" .. query end\n");
    lua.push_str(&format!(
        "  return kong.response.exit({status}, nil, {{ [\"Location\"] = location }})\nend\n"
    ));
    lua
}

/// A Lua string literal: safe characters as they are, every other byte as `\ddd`.
fn lua_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for b in text.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'.' | b'-' | b'_' | b'~' | b':' | b'@' | b'%' | b'+' | b',' | b'='
            )
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\{b:03}"));
        }
    }
    out.push('"');
    out
}

/// `request-termination` for a rule none of whose backendRefs resolves: HTTPRoute demands 500;
/// GRPCRoute demands `UNAVAILABLE`, which gRPC clients read from HTTP 503.
pub fn no_backend(status: u16, tags: &[String]) -> kong::Plugin {
    plugin(
        "request-termination",
        json!({ "status_code": status, "message": "No backend of this route rule is available" }),
        tags,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Result<RuleFilters, Problem> {
        let filters: Vec<HttpFilter> = serde_yaml_ng::from_str(yaml).expect("filters yaml");
        http_rule(&filters, &["k8s-name:r".to_string()])
    }

    fn config<'a>(filters: &'a RuleFilters, name: &str) -> &'a Value {
        &filters.plugins.iter().find(|p| p.name == name).expect("plugin").config
    }

    #[test]
    fn request_header_set_is_replace_plus_add_and_add_is_append() {
        let f = rule(
            r#"
- type: RequestHeaderModifier
  requestHeaderModifier:
    set: [{name: X-Set, value: one}]
    add: [{name: X-Add, value: two}]
    remove: [X-Gone]
"#,
        )
        .expect("supported");
        assert_eq!(
            config(&f, "request-transformer"),
            &json!({
                "remove": {"headers": ["X-Gone"]},
                "replace": {"headers": ["X-Set:one"]},
                "add": {"headers": ["X-Set:one"]},
                "append": {"headers": ["X-Add:two"]},
            })
        );
        assert_eq!(f.plugins[0].tags, ["k8s-name:r"]);
    }

    #[test]
    fn response_header_modifier_uses_response_transformer() {
        let f = rule(
            r#"
- type: ResponseHeaderModifier
  responseHeaderModifier:
    set: [{name: Cache-Control, value: no-store}]
"#,
        )
        .expect("supported");
        assert_eq!(
            config(&f, "response-transformer")["replace"]["headers"],
            json!(["Cache-Control:no-store"])
        );
        assert_eq!(
            config(&f, "response-transformer")["add"]["headers"],
            json!(["Cache-Control:no-store"])
        );
    }

    #[test]
    fn template_characters_in_request_values_come_out_literally() {
        assert_eq!(template_literal("plain"), "plain");
        assert_eq!(template_literal("a$(b)c"), r#"a$("$")(b)c"#);
        assert_eq!(template_literal("$($("), r#"$("$")($("$")("#);
        assert_eq!(template_literal("::x"), r#"$(":"):x"#);
        assert_eq!(template_literal("$"), "$");
    }

    #[test]
    fn names_and_values_kong_cannot_carry_drop_the_rule() {
        for yaml in [
            "- type: RequestHeaderModifier\n  requestHeaderModifier:\n    set: [{name: 'x.y', value: a}]",
            "- type: RequestHeaderModifier\n  requestHeaderModifier:\n    set: [{name: x, value: \"a\\nb\"}]",
            "- type: ResponseHeaderModifier\n  responseHeaderModifier:\n    add: [{name: x, value: ':a'}]",
            "- type: RequestMirror\n  requestMirror: {backendRef: {name: m, port: 80}}",
            "- type: ExtensionRef\n  extensionRef: {group: g, kind: K, name: n}",
        ] {
            assert!(rule(yaml).is_err(), "{yaml}");
        }
    }

    #[test]
    fn url_rewrite_sets_host_and_path() {
        let f = rule(
            r#"
- type: URLRewrite
  urlRewrite:
    hostname: internal.example.com
    path: {type: ReplaceFullPath, replaceFullPath: /v2/$(x)}
"#,
        )
        .expect("supported");
        let c = config(&f, "request-transformer");
        assert_eq!(c["replace"]["headers"], json!(["host:internal.example.com"]));
        assert_eq!(c["replace"]["uri"], json!(r#"/v2/$("$")(x)"#));
        assert!(!f.captures_prefix);
    }

    #[test]
    fn url_rewrite_prefix_appends_the_captured_rest_to_the_replacement() {
        assert_eq!(prefix_rewrite_template("/xyz/"), "/xyz$(uri_captures.kongress_rest)");
        assert_eq!(
            prefix_rewrite_template("/"),
            r#"$(uri_captures.kongress_rest ~= "" and uri_captures.kongress_rest or "/")"#
        );
        let f =
            rule("- type: URLRewrite\n  urlRewrite:\n    path: {type: ReplacePrefixMatch, replacePrefixMatch: /xyz}")
                .expect("supported");
        assert!(f.captures_prefix && f.replaces_prefix());
    }

    #[test]
    fn a_redirect_with_a_known_host_uses_the_redirect_plugin() {
        let f =
            rule("- type: RequestRedirect\n  requestRedirect: {scheme: https, statusCode: 301}").expect("supported");
        let r = f.redirect.as_ref().expect("redirect");
        let p = redirect_plugin(
            r,
            RedirectContext {
                listener_scheme: "http",
                listener_port: 8080,
                host: Some("a.example.com"),
                prefix: None,
            },
            &[],
        );
        assert_eq!(p.name, "redirect");
        assert_eq!(
            p.config,
            json!({"status_code": 301, "location": "https://a.example.com/", "keep_incoming_path": true})
        );
    }

    #[test]
    fn redirect_port_follows_the_spec_defaults() {
        let ctx = |port| RedirectContext {
            listener_scheme: "http",
            listener_port: port,
            host: Some("h"),
            prefix: None,
        };
        let location = |r: &Redirect, port| redirect_plugin(r, ctx(port), &[]).config["location"].clone();
        let base = Redirect {
            status: 302,
            ..Redirect::default()
        };
        // No scheme, no port: the listener's port, omitted when it is the default.
        assert_eq!(location(&base, 80), json!("http://h/"));
        assert_eq!(location(&base, 8080), json!("http://h:8080/"));
        // A scheme: its well-known port.
        let https = Redirect {
            scheme: Some("https".into()),
            ..base.clone()
        };
        assert_eq!(location(&https, 8080), json!("https://h/"));
        // An explicit port wins.
        let port = Redirect {
            scheme: Some("https".into()),
            port: Some(8443),
            ..base.clone()
        };
        assert_eq!(location(&port, 80), json!("https://h:8443/"));
    }

    #[test]
    fn a_full_path_redirect_keeps_the_query_string_because_the_path_excludes_it() {
        let r = Redirect {
            path: Some(PathModifier::Full("/new".into())),
            status: 302,
            ..Redirect::default()
        };
        let p = redirect_plugin(
            &r,
            RedirectContext {
                listener_scheme: "http",
                listener_port: 80,
                host: Some("h"),
                prefix: None,
            },
            &[],
        );
        assert_eq!(p.name, "pre-function");
        let lua = p.config["access"][0].as_str().expect("lua");
        assert!(lua.contains(r#"local path = "/new""#), "{lua}");
        assert!(
            lua.contains(r#"local location = "http://" .. "h" .. "" .. path"#),
            "{lua}"
        );
        assert!(lua.contains("get_raw_query"), "{lua}");
    }

    #[test]
    fn a_redirect_needing_the_request_host_or_a_prefix_uses_lua() {
        let r = Redirect {
            path: Some(PathModifier::Prefix("/new/".into())),
            status: 302,
            ..Redirect::default()
        };
        let p = redirect_plugin(
            &r,
            RedirectContext {
                listener_scheme: "https",
                listener_port: 443,
                host: None,
                prefix: Some("/old/"),
            },
            &[],
        );
        assert_eq!(p.name, "pre-function");
        let lua = p.config["access"][0].as_str().expect("lua");
        assert!(
            lua.contains(r#"local path = "/new" .. string.sub(kong.request.get_path(), 5)"#),
            "{lua}"
        );
        assert!(
            lua.contains(r#"local location = "https://" .. kong.request.get_host() .. "" .. path"#),
            "{lua}"
        );
        assert!(lua.contains("kong.response.exit(302"), "{lua}");
        assert!(lua.contains("get_raw_query"), "{lua}");
    }

    #[test]
    fn lua_strings_escape_everything_but_plain_url_characters() {
        assert_eq!(lua_string("/a b\"]]"), r#""/a\032b\034\093\093""#);
    }

    #[test]
    fn cors_maps_wildcards_and_spec_defaults() {
        let c = cors(
            &["https://*.example.com".into(), "http://a.example.com:8080".into()],
            &["*".into()],
            &["*".into()],
            &["X-Total".into()],
            true,
            10,
        )
        .expect("supported");
        assert_eq!(
            c,
            json!({
                "origins": [r"https://[A-Za-z0-9.-]*\.example\.com$", "http://a.example.com:8080"],
                "exposed_headers": ["X-Total"],
                "credentials": true,
                "max_age": 10,
                "preflight_continue": false,
            })
        );
        let none = cors(&[], &[], &[], &[], false, 5).expect("supported");
        assert_eq!(none["origins"], json!(["(?!)"]));
        assert_eq!(none["methods"], json!(["GET", "HEAD", "POST"]));
        assert_eq!(
            cors(&["*".into()], &[], &[], &[], false, 5).expect("ok")["origins"],
            json!(["*"])
        );
    }
}
