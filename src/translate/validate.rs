//! Every expression is parsed by Kong's router engine (atc-router) before it goes out.
//!
//! Kong validates a route by parsing its expression against the schema of its protocols
//! (`kong/db/schema/entities/routes.lua` → `router.validate`, schema from `kong/router/atc.lua`
//! and the fields of `kong/router/fields.lua`). The same crate does the same here, so a route
//! Kong would refuse is left out and reported on its Kubernetes object instead of taking the
//! whole config down. A refused Kong route drops its whole rule: a rule is the unit Gateway
//! API accepts or reports (`PartiallyInvalid`), and serving a rule with some of its matches
//! missing would route differently from what it says.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use atc_router::ast::Type;
use atc_router::schema::Schema;
use atc_router::semantics::Validate;

use super::RuleOutcome;
use super::kong;
#[cfg(test)]
use super::routes::RouteView;
use crate::api::conditions::reasons;
use crate::plan::Verdict;

/// Kong's `HTTP_FIELDS`.
pub(super) fn http_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = Schema::default();
        for field in [
            "net.protocol",
            "tls.sni",
            "http.method",
            "http.host",
            "http.path",
            "http.path.segments.*",
            "http.headers.*",
            "http.queries.*",
        ] {
            schema.add_field(field, Type::String);
        }
        for field in ["net.src.port", "net.dst.port", "http.path.segments.len"] {
            schema.add_field(field, Type::Int);
        }
        for field in ["net.src.ip", "net.dst.ip"] {
            schema.add_field(field, Type::IpAddr);
        }
        schema
    })
}

/// Kong's `STREAM_FIELDS`.
fn stream_schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = Schema::default();
        for field in ["net.protocol", "tls.sni"] {
            schema.add_field(field, Type::String);
        }
        for field in ["net.src.port", "net.dst.port"] {
            schema.add_field(field, Type::Int);
        }
        for field in ["net.src.ip", "net.dst.ip"] {
            schema.add_field(field, Type::IpAddr);
        }
        schema
    })
}

/// The schema Kong picks from a route's first protocol.
pub fn schema_for(protocols: &[String]) -> &'static Schema {
    match protocols.first().map(String::as_str) {
        Some("tcp" | "udp" | "tls" | "tls_passthrough") => stream_schema(),
        _ => http_schema(),
    }
}

/// Kong's `utf8_name` rule: ASCII letters, digits, `.`, `-`, `_`, `~`, or UTF-8 beyond ASCII.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty Kong route name".to_string());
    }
    match name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~') || !c.is_ascii()))
    {
        Some(c) => Err(format!("Kong route name {name:?} has the character {c:?}")),
        None => Ok(()),
    }
}

/// Parses and validates an expression the way Kong does; `Err` carries atc-router's message.
pub fn check_expression(expression: &str, protocols: &[String]) -> Result<(), String> {
    let ast = atc_router::parser::parse(expression).map_err(|e| one_line(&e.variant.message()))?;
    ast.validate(schema_for(protocols)).map_err(|e| one_line(&e))
}

/// atc-router's answer for every expression checked so far, kept across translations: the
/// parse (and the regular expressions it compiles) dominates translation, and most
/// expressions come back unchanged, so each distinct expression is parsed once.
#[derive(Debug, Default)]
pub struct Checked {
    http: HashMap<Box<str>, Result<(), String>>,
    stream: HashMap<Box<str>, Result<(), String>>,
}

impl Checked {
    fn expression(&mut self, expression: &str, protocols: &[String]) -> Result<(), String> {
        let stream = std::ptr::eq(schema_for(protocols), stream_schema());
        let answers = if stream { &mut self.stream } else { &mut self.http };
        if let Some(answer) = answers.get(expression) {
            return answer.clone();
        }
        let answer = check_expression(expression, protocols);
        answers.insert(expression.into(), answer.clone());
        answer
    }

    pub fn len(&self) -> usize {
        self.http.len() + self.stream.len()
    }

    /// Forgets every expression `live` does not say is still in use.
    pub fn retain(&mut self, live: impl Fn(&str) -> bool) {
        self.http.retain(|expression, _| live(expression));
        self.stream.retain(|expression, _| live(expression));
    }

    fn check(&mut self, route: &kong::Route) -> Result<(), String> {
        check_name(&route.name)?;
        self.expression(&route.expression, &route.protocols)
    }
}

/// atc-router (and the regex crate inside it) answer on several lines; a condition message
/// reads better on one, and is bounded.
fn one_line(message: &str) -> String {
    const MAX: usize = 300;
    let mut line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > MAX {
        let mut cut = MAX;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

/// [`keep_valid_with`] with nothing checked before.
#[cfg(test)]
pub fn keep_valid(_view: &RouteView, outcome: RuleOutcome) -> RuleOutcome {
    keep_valid_with(&mut Checked::default(), outcome)
}

/// Drops the Kong routes whose expression Kong would refuse, and says so on the route.
pub fn keep_valid_with(checked: &mut Checked, mut outcome: RuleOutcome) -> RuleOutcome {
    let mut refused: BTreeMap<u32, String> = BTreeMap::new();
    for pending in &outcome.routes {
        let rule = pending.precedence.rule;
        if refused.contains_key(&rule) {
            continue;
        }
        if let Err(message) = checked.check(&pending.route) {
            refused.insert(rule, format!("Rule {rule}: Kong's router refuses it: {message}"));
        }
    }
    if refused.is_empty() {
        return outcome;
    }
    outcome.routes.retain(|r| !refused.contains_key(&r.precedence.rule));
    let problems: Vec<String> = refused.into_values().collect();
    report_dropped(&mut outcome, &problems);
    outcome
}

/// Gateway API: a `PartiallyInvalid` message of the drop-rules approach "MUST start with the
/// prefix \"Dropped Rule\""; problems are written `Rule <index>: why`, so this prefix completes it.
const DROPPED: &str = "Dropped ";

/// Prefix of the `Accepted=False` message when no rule is left.
const NOT_SERVED: &str = "No rule can be served: ";

/// Records rules left out: `PartiallyInvalid` while other rules remain, else the route is not
/// accepted (`UnsupportedValue`) with every reason. Problems read `Rule <index>: why`. Called
/// again (validation after the kind translator), it adds to the earlier problems under one prefix.
pub fn report_dropped(outcome: &mut RuleOutcome, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    let mut messages: Vec<String> = Vec::new();
    if let Some(earlier) = outcome.partially_invalid.take() {
        messages.push(earlier.strip_prefix(DROPPED).unwrap_or(&earlier).to_string());
    }
    if let Some(earlier) = outcome.accepted_problem.take() {
        let message = earlier.message;
        messages.push(message.strip_prefix(NOT_SERVED).unwrap_or(&message).to_string());
    }
    messages.extend(problems.iter().cloned());
    let message = messages.join("; ");
    if outcome.routes.is_empty() {
        outcome.accepted_problem = Some(Verdict::fail(
            reasons::UNSUPPORTED_VALUE,
            format!("{NOT_SERVED}{message}"),
        ));
    } else {
        outcome.partially_invalid = Some(format!("{DROPPED}{message}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> Vec<String> {
        vec!["http".to_string(), "https".to_string()]
    }

    #[test]
    fn kong_field_names_parse_and_unknown_fields_do_not() {
        let ok = r#"net.dst.port == 80 && lower(http.host) =^ ".example.com" && http.headers.x_a == "1" && any(http.queries.q) ~ "^(?:a)$""#;
        assert_eq!(check_expression(ok, &http()), Ok(()));
        assert!(check_expression(r#"http.bogus == "x""#, &http()).is_err());
        assert!(check_expression(r#"http.headers.x.y == "x""#, &http()).is_err());
        assert!(check_expression(r#"http.path == "/a"#, &http()).is_err());
    }

    #[test]
    fn stream_routes_are_checked_against_the_stream_fields() {
        let tcp = vec!["tcp".to_string()];
        assert_eq!(check_expression("net.dst.port == 9000", &tcp), Ok(()));
        assert!(check_expression(r#"http.path == "/""#, &tcp).is_err());
    }

    #[test]
    fn a_bad_regex_is_reported_on_one_line() {
        let message = check_expression(r#"http.path ~ "^(?:[a-)$""#, &http()).expect_err("bad regex");
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("regex parse error"), "{message}");
    }

    #[test]
    fn kong_route_names_allow_only_its_characters() {
        assert_eq!(check_name("httproute.ns.a-b.0.0.0"), Ok(()));
        assert!(check_name("a b").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("").is_err());
    }
}
