//! What the stand-in refuses, the way Kong 3.9 refuses it (`kong/db/schema/others/
//! declarative_config.lua`, `kong/db/errors.lua`): a schema phase whose errors are
//! flattened per entity, and only when that passes, a references-and-uniqueness phase
//! whose errors Kong keys by array index (flattened onto the top-level array element of
//! that index, if there is one) or by entity name (left in `fields`).

use std::collections::{BTreeMap, BTreeSet};

use atc_router::ast::Type;
use atc_router::schema::Schema;
use atc_router::semantics::Validate;
use serde_json::{Map, Value, json};

/// Kong's limit on an expressions-route priority (2^46 - 1).
const MAX_PRIORITY: u64 = (1 << 46) - 1;
const SERVICE_PROTOCOLS: [&str; 10] = [
    "http",
    "https",
    "grpc",
    "grpcs",
    "tcp",
    "tls",
    "tls_passthrough",
    "udp",
    "ws",
    "wss",
];
const ROUTE_PROTOCOLS: [&str; 8] = ["http", "https", "grpc", "grpcs", "tcp", "tls", "tls_passthrough", "udp"];
const TOP_LEVEL: [&str; 5] = ["services", "routes", "upstreams", "certificates", "ca_certificates"];

/// The router schemas Kong validates expressions with (`kong/router/fields.lua`).
pub struct Schemas {
    http: Schema,
    stream: Schema,
}

impl Default for Schemas {
    fn default() -> Self {
        let mut http = Schema::default();
        let mut stream = Schema::default();
        for schema in [&mut http, &mut stream] {
            for field in ["net.protocol", "tls.sni"] {
                schema.add_field(field, Type::String);
            }
            for field in ["net.src.port", "net.dst.port"] {
                schema.add_field(field, Type::Int);
            }
            for field in ["net.src.ip", "net.dst.ip"] {
                schema.add_field(field, Type::IpAddr);
            }
        }
        for field in [
            "http.method",
            "http.host",
            "http.path",
            "http.path.segments.*",
            "http.headers.*",
            "http.queries.*",
        ] {
            http.add_field(field, Type::String);
        }
        http.add_field("http.path.segments.len", Type::Int);
        Self { http, stream }
    }
}

/// Rejections a test asked for: entity name → message (an entity-check error).
pub type Forced = BTreeMap<String, String>;

/// Checks a parsed config; `Err` is the whole 400 answer.
pub fn validate(config: &Value, schemas: &Schemas, forced: &Forced) -> Result<(), Value> {
    let Some(top) = config.as_object() else {
        return Err(answer(json!({"@entity": ["expected a record"]}), Vec::new()));
    };
    let mut fields = Map::new();
    match top.get("_format_version").and_then(Value::as_str) {
        Some("1.1" | "2.1" | "3.0") => {}
        Some(_) => {
            fields.insert("_format_version".into(), json!("expected one of: 1.1, 2.1, 3.0"));
        }
        None => {
            fields.insert("_format_version".into(), json!("required field missing"));
        }
    }
    for key in top.keys().filter(|k| !k.starts_with('_')) {
        if !TOP_LEVEL.contains(&key.as_str()) {
            fields.insert(key.clone(), json!("unknown field"));
        }
    }
    let mut flattened = Vec::new();
    let mut checker = Checker {
        schemas,
        forced,
        flattened: &mut flattened,
    };
    checker.schema_phase(top);
    if !fields.is_empty() || !flattened.is_empty() {
        return Err(answer(Value::Object(fields), flattened));
    }
    reference_phase(top, &mut fields, &mut flattened);
    if !fields.is_empty() || !flattened.is_empty() {
        return Err(answer(Value::Object(fields), flattened));
    }
    Ok(())
}

fn answer(fields: Value, flattened: Vec<Value>) -> Value {
    json!({
        "code": 14,
        "name": "invalid declarative configuration",
        "message": format!("declarative config is invalid: {fields}"),
        "fields": fields,
        // An empty Lua table: cjson writes it as an object.
        "flattened_errors": if flattened.is_empty() { json!({}) } else { Value::Array(flattened) },
    })
}

struct Checker<'a> {
    schemas: &'a Schemas,
    forced: &'a Forced,
    flattened: &'a mut Vec<Value>,
}

fn entities<'v>(holder: &'v Map<String, Value>, key: &str) -> impl Iterator<Item = &'v Map<String, Value>> {
    holder
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn text<'v>(entity: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    entity.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl Checker<'_> {
    fn schema_phase(&mut self, top: &Map<String, Value>) {
        for service in entities(top, "services") {
            let mut errors = Vec::new();
            if text(service, "host").is_none() {
                errors.push(field("host", "required field missing"));
            }
            match text(service, "protocol") {
                Some(p) if SERVICE_PROTOCOLS.contains(&p) => {}
                Some(_) => errors.push(field(
                    "protocol",
                    "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp, ws, wss",
                )),
                None => {}
            }
            if let Some(port) = service.get("port")
                && port.as_u64().is_none_or(|p| p > 65535)
            {
                errors.push(field("port", "value should be between 0 and 65535"));
            }
            self.entity("service", service, errors);
            for route in entities(service, "routes") {
                self.route(route);
            }
            self.plugins(service);
        }
        for route in entities(top, "routes") {
            self.route(route);
        }
        for upstream in entities(top, "upstreams") {
            let mut errors = Vec::new();
            if text(upstream, "name").is_none() {
                errors.push(field("name", "required field missing"));
            }
            self.entity("upstream", upstream, errors);
            for target in entities(upstream, "targets") {
                let mut errors = Vec::new();
                if text(target, "target").is_none() {
                    errors.push(field("target", "required field missing"));
                }
                self.entity("target", target, errors);
            }
        }
        for certificate in entities(top, "certificates") {
            let mut errors = Vec::new();
            for key in ["cert", "key"] {
                if text(certificate, key).is_none() {
                    errors.push(field(key, "required field missing"));
                }
            }
            self.entity("certificate", certificate, errors);
            for sni in entities(certificate, "snis") {
                self.entity("sni", sni, Vec::new());
            }
        }
        for ca in entities(top, "ca_certificates") {
            let errors = if text(ca, "cert").is_none() {
                vec![field("cert", "required field missing")]
            } else {
                Vec::new()
            };
            self.entity("ca_certificate", ca, errors);
        }
    }

    fn route(&mut self, route: &Map<String, Value>) {
        let mut errors = Vec::new();
        let protocols: Vec<&str> = route
            .get("protocols")
            .and_then(Value::as_array)
            .map(|p| p.iter().filter_map(Value::as_str).collect())
            .unwrap_or_else(|| vec!["http", "https"]);
        if protocols.iter().any(|p| !ROUTE_PROTOCOLS.contains(p)) {
            errors.push(field(
                "protocols",
                "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp",
            ));
        }
        if let Some(priority) = route.get("priority")
            && priority.as_u64().is_none_or(|p| p > MAX_PRIORITY)
        {
            errors.push(field(
                "priority",
                &format!("value should be between 0 and {MAX_PRIORITY}"),
            ));
        }
        if let Some(expression) = text(route, "expression") {
            let schema = match protocols.first() {
                Some(&("http" | "https" | "grpc" | "grpcs")) | None => &self.schemas.http,
                Some(_) => &self.schemas.stream,
            };
            let checked = atc_router::parser::parse(expression)
                .map_err(|e| e.to_string())
                .and_then(|ast| ast.validate(schema));
            if let Err(error) = checked {
                errors.push(entity_error(&format!("Router Expression failed validation: {error}")));
            }
        }
        self.entity("route", route, errors);
        self.plugins(route);
    }

    fn plugins(&mut self, holder: &Map<String, Value>) {
        for plugin in entities(holder, "plugins") {
            let errors = if text(plugin, "name").is_none() {
                vec![field("name", "required field missing")]
            } else {
                Vec::new()
            };
            self.entity("plugin", plugin, errors);
        }
    }

    /// Adds the entity's flattened entry when it has errors (or a test forced one).
    fn entity(&mut self, entity_type: &str, entity: &Map<String, Value>, mut errors: Vec<Value>) {
        if let Some(message) = text(entity, "name").and_then(|name| self.forced.get(name)) {
            errors.push(entity_error(message));
        }
        if errors.is_empty() {
            return;
        }
        self.flattened.push(flattened_entry(entity_type, entity, errors));
    }
}

fn field(name: &str, message: &str) -> Value {
    json!({"type": "field", "field": name, "message": message})
}

fn entity_error(message: &str) -> Value {
    json!({"type": "entity", "message": message})
}

fn flattened_entry(entity_type: &str, entity: &Map<String, Value>, errors: Vec<Value>) -> Value {
    let mut entry = Map::new();
    if let Some(name) = text(entity, "name") {
        entry.insert("entity_name".into(), json!(name));
    }
    if let Some(id) = text(entity, "id").filter(|id| is_uuid(id)) {
        entry.insert("entity_id".into(), json!(id));
    }
    if let Some(tags) = entity
        .get("tags")
        .filter(|t| t.as_array().is_some_and(|a| a.iter().all(Value::is_string)))
    {
        entry.insert("entity_tags".into(), tags.clone());
    }
    entry.insert("entity_type".into(), json!(entity_type));
    // Nested children are hoisted out of the entity, as Kong does.
    let mut stripped = entity.clone();
    for nested in ["routes", "plugins", "targets", "snis"] {
        stripped.remove(nested);
    }
    entry.insert("entity".into(), Value::Object(stripped));
    entry.insert("errors".into(), Value::Array(errors));
    Value::Object(entry)
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Uniqueness of names and references, after the schema passed. Errors of an entity at
/// index `i` of its array land on index `i` of the *top-level* array of that type, as in
/// Kong: flattened onto that element when it exists, else left in `fields` by index.
/// Broken references are keyed by the referring entity's name and never flattened.
fn reference_phase(top: &Map<String, Value>, fields: &mut Map<String, Value>, flattened: &mut Vec<Value>) {
    let mut by_index: BTreeMap<(&str, usize), String> = BTreeMap::new();
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut check = |plural: &'static str, list: &Map<String, Value>, key: &str| {
        for (i, entity) in entities(list, key).enumerate() {
            if let Some(name) = text(entity, "name")
                && !seen.entry(plural).or_default().insert(name.to_string())
            {
                by_index.insert(
                    (plural, i + 1),
                    format!("uniqueness violation: '{plural}' entity with name set to '{name}' already declared"),
                );
            }
        }
    };
    check("services", top, "services");
    for service in entities(top, "services") {
        check("routes", service, "routes");
    }
    check("routes", top, "routes");
    check("upstreams", top, "upstreams");
    for certificate in entities(top, "certificates") {
        check("snis", certificate, "snis");
    }
    for ((plural, index), message) in by_index {
        let singular = plural.strip_suffix('s').unwrap_or(plural);
        match top
            .get(plural)
            .and_then(Value::as_array)
            .and_then(|a| a.get(index - 1))
            .and_then(Value::as_object)
        {
            Some(entity) => flattened.push(flattened_entry(singular, entity, vec![entity_error(&message)])),
            None => {
                let section = fields.entry(plural).or_insert_with(|| json!({}));
                if let Some(section) = section.as_object_mut() {
                    section.insert(index.to_string(), json!(message));
                }
            }
        }
    }

    let certificate_ids: BTreeSet<&str> = entities(top, "certificates").filter_map(|c| text(c, "id")).collect();
    for service in entities(top, "services") {
        let Some(reference) = service.get("client_certificate") else {
            continue;
        };
        // Kong's declarative schema makes every foreign key a string field (the id).
        let problem = match reference.as_str() {
            Some(id) if certificate_ids.contains(id) => None,
            Some(id) => Some(format!(
                "invalid reference 'client_certificate: {id}' (no such entry in 'certificates')"
            )),
            None => Some("client_certificate: expected a string".to_string()),
        };
        if let Some(message) = problem {
            let key = text(service, "name").unwrap_or("?").to_string();
            let section = fields.entry("services").or_insert_with(|| json!({}));
            if let Some(section) = section.as_object_mut() {
                section.insert(key, json!([message]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(config: Value) -> Result<(), Value> {
        validate(&config, &Schemas::default(), &Forced::new())
    }

    fn route(name: &str, expression: &str) -> Value {
        json!({"name": name, "protocols": ["http"], "expression": expression, "priority": 1, "tags": ["k8s-name:r"]})
    }

    #[test]
    fn a_valid_config_passes() {
        let config = json!({"_format_version": "3.0", "services": [{
            "name": "s", "host": "u", "port": 80, "protocol": "http",
            "routes": [route("r", "http.path ^= \"/\" && net.dst.port == 80")]
        }], "upstreams": [{"name": "u", "targets": [{"target": "10.0.0.1:80", "weight": 1}]}]});
        assert_eq!(check(config), Ok(()));
    }

    #[test]
    fn an_unparseable_expression_is_an_entity_error_with_the_route_tags() {
        let config = json!({"_format_version": "3.0", "services": [{
            "name": "s", "host": "u", "routes": [route("r", "http.path ^= ")]
        }]});
        let answer = check(config).expect_err("rejected");
        let entry = &answer["flattened_errors"][0];
        assert_eq!(entry["entity_type"], "route");
        assert_eq!(entry["entity_tags"], json!(["k8s-name:r"]));
        assert!(
            entry["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Router Expression failed validation: "))
        );
    }

    #[test]
    fn an_http_field_in_a_stream_route_is_refused() {
        let config = json!({"_format_version": "3.0", "routes": [
            {"name": "t", "protocols": ["tcp"], "expression": "http.path == \"/\""}
        ]});
        assert!(check(config).is_err());
    }

    #[test]
    fn duplicate_nested_route_names_are_left_in_fields_by_index() {
        let config = json!({"_format_version": "3.0", "services": [
            {"name": "a", "host": "u", "routes": [route("r", "http.path == \"/\"")]},
            {"name": "b", "host": "u", "routes": [route("r", "http.path == \"/\"")]}
        ]});
        let answer = check(config).expect_err("rejected");
        assert_eq!(answer["flattened_errors"], json!({}));
        assert!(
            answer["fields"]["routes"]["1"]
                .as_str()
                .is_some_and(|m| m.contains("name set to 'r'"))
        );
    }

    #[test]
    fn a_broken_client_certificate_reference_is_keyed_by_service_name() {
        let config = json!({"_format_version": "3.0", "services": [
            {"name": "a", "host": "u", "client_certificate": "4f0b8a2e-6a53-4b1b-9a83-36b0d4b6e0a1"}
        ]});
        let answer = check(config).expect_err("rejected");
        assert!(
            answer["fields"]["services"]["a"][0]
                .as_str()
                .is_some_and(|m| m.starts_with("invalid reference"))
        );
    }

    #[test]
    fn a_client_certificate_given_as_an_object_is_refused_like_kong_does() {
        let config = json!({"_format_version": "3.0",
            "certificates": [{"id": "4f0b8a2e-6a53-4b1b-9a83-36b0d4b6e0a1", "cert": "c", "key": "k"}],
            "services": [{"name": "a", "host": "u", "client_certificate": {"id": "4f0b8a2e-6a53-4b1b-9a83-36b0d4b6e0a1"}}]
        });
        let answer = check(config).expect_err("rejected");
        assert_eq!(
            answer["fields"]["services"]["a"][0],
            "client_certificate: expected a string"
        );
    }

    #[test]
    fn a_client_certificate_naming_a_certificate_of_the_config_is_accepted() {
        let config = json!({"_format_version": "3.0",
            "certificates": [{"id": "4f0b8a2e-6a53-4b1b-9a83-36b0d4b6e0a1", "cert": "c", "key": "k"}],
            "services": [{"name": "a", "host": "u", "client_certificate": "4f0b8a2e-6a53-4b1b-9a83-36b0d4b6e0a1"}]
        });
        assert!(check(config).is_ok());
    }

    #[test]
    fn a_forced_rejection_names_the_entity() {
        let config = json!({"_format_version": "3.0", "upstreams": [{"name": "u"}]});
        let forced = Forced::from([("u".to_string(), "rejected by the test".to_string())]);
        let answer = validate(&config, &Schemas::default(), &forced).expect_err("rejected");
        assert_eq!(answer["flattened_errors"][0]["entity_name"], "u");
    }
}
