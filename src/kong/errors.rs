//! Kong's answer to a config it refuses (400 from `POST /config?flatten_errors=1`), read
//! into plain data and blamed on the Kubernetes objects the entities came from.
//!
//! Two places carry entity errors (see the module doc of [`crate::kong`]): the
//! `flattened_errors` array, and what Kong could not flatten, left in `fields` keyed by
//! entity type and then by the entity's name, id or 1-based index.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::translate::KongConfig;
use crate::translate::tags::{self, TaggedSource};

/// Longest piece of an unreadable answer kept in a message.
const MAX_RAW_MESSAGE: usize = 512;

/// One entity Kong refused, as Kong described it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RejectedEntity {
    /// Singular: `service`, `route`, `plugin`, `upstream`, `target`, `certificate`, `sni`,
    /// `ca_certificate`.
    pub entity_type: String,
    pub name: Option<String>,
    pub id: Option<String>,
    /// 1-based position in the config's top-level array, for errors Kong kept by index.
    pub index: Option<usize>,
    pub tags: Vec<String>,
    /// `field: message` for field errors, the message alone for entity errors.
    pub messages: Vec<String>,
}

/// A refused config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejection {
    /// Kong's top-level `message` (or the start of an unreadable answer).
    pub message: String,
    pub entities: Vec<RejectedEntity>,
}

/// Reads a 400 answer of `POST /config`. Never fails: an answer that is not Kong's error
/// document becomes a rejection with its text as the message and no entity.
pub fn parse_rejection(body: &[u8]) -> Rejection {
    let Ok(Value::Object(document)) = serde_json::from_slice::<Value>(body) else {
        return Rejection {
            message: raw_message(body),
            entities: Vec::new(),
        };
    };
    let message = document
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| raw_message(body));
    let mut entities = Vec::new();
    // An empty Lua table may be encoded as `{}`: anything but an array holds no entries.
    if let Some(Value::Array(flattened)) = document.get("flattened_errors") {
        entities.extend(flattened.iter().filter_map(flattened_entry));
    }
    if let Some(Value::Object(fields)) = document.get("fields") {
        entities.extend(unflattened_entries(fields));
    }
    Rejection { message, entities }
}

fn raw_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(MAX_RAW_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_string()
}

fn flattened_entry(entry: &Value) -> Option<RejectedEntity> {
    let entry = entry.as_object()?;
    let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_string);
    let tags = entry
        .get("entity_tags")
        .and_then(Value::as_array)
        .map(|tags| tags.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let mut messages = Vec::new();
    for error in entry.get("errors").and_then(Value::as_array).into_iter().flatten() {
        let Some(message) = error.get("message").and_then(Value::as_str) else {
            continue;
        };
        match error.get("field").and_then(Value::as_str) {
            Some(field) if error.get("type").and_then(Value::as_str) == Some("field") => {
                messages.push(format!("{field}: {message}"));
            }
            _ => messages.push(message.to_string()),
        }
    }
    Some(RejectedEntity {
        entity_type: text("entity_type").unwrap_or_default(),
        name: text("entity_name"),
        id: text("entity_id"),
        index: None,
        tags,
        messages,
    })
}

/// Errors left in `fields`: `{<entity type, plural>: {<name | id | index>: errors}}`.
/// Anything else there (a top-level field error) is kept as an entity-less entry.
fn unflattened_entries(fields: &serde_json::Map<String, Value>) -> Vec<RejectedEntity> {
    let mut entries = Vec::new();
    for (section, errors) in fields {
        let Value::Object(by_key) = errors else {
            let mut messages = Vec::new();
            collect_messages(errors, section, &mut messages);
            entries.push(RejectedEntity {
                messages,
                ..RejectedEntity::default()
            });
            continue;
        };
        let entity_type = section.strip_suffix('s').unwrap_or(section).to_string();
        for (key, errors) in by_key {
            let mut messages = Vec::new();
            collect_messages(errors, "", &mut messages);
            let mut entry = RejectedEntity {
                entity_type: entity_type.clone(),
                messages,
                ..RejectedEntity::default()
            };
            if let Ok(index) = key.parse::<usize>() {
                entry.index = Some(index);
            } else if is_uuid(key) {
                entry.id = Some(key.clone());
            } else {
                entry.name = Some(key.clone());
            }
            entries.push(entry);
        }
    }
    entries
}

fn collect_messages(errors: &Value, path: &str, out: &mut Vec<String>) {
    match errors {
        Value::String(message) if path.is_empty() || path == "@entity" => out.push(message.clone()),
        Value::String(message) => out.push(format!("{path}: {message}")),
        Value::Array(items) => items.iter().for_each(|item| collect_messages(item, path, out)),
        Value::Object(map) => {
            for (key, value) in map {
                let nested = match (path.is_empty(), key.as_str()) {
                    (_, "@entity") => path.to_string(),
                    (true, _) => key.clone(),
                    (false, _) => format!("{path}.{key}"),
                };
                collect_messages(value, &nested, out);
            }
        }
        _ => {}
    }
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A rejection blamed on Kubernetes objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Blame {
    /// Kong's messages per source object, sorted and without duplicates.
    pub by_source: BTreeMap<TaggedSource, Vec<String>>,
    /// Messages no source object could be found for.
    pub unattributed: Vec<String>,
}

/// Finds the source object of every rejected entity: its tags when Kong returned them,
/// else the tags of the entity with that type and name, id or position in `config`.
pub fn blame(rejection: &Rejection, config: &KongConfig) -> Blame {
    let mut by_source: BTreeMap<TaggedSource, BTreeSet<String>> = BTreeMap::new();
    let mut unattributed = BTreeSet::new();
    for entity in &rejection.entities {
        let own = tags::parse(&entity.tags).or_else(|| find_source(config, entity));
        for message in &entity.messages {
            // Kong pins a duplicate name on an array index, which for nested entities is
            // the wrong entity (or none): the name in the message is what counts.
            let sources = match uniqueness_violation(message) {
                Some((plural, name)) => sources_named(config, plural.strip_suffix('s').unwrap_or(plural), name),
                None => own.iter().cloned().collect(),
            };
            if sources.is_empty() {
                let what = describe(entity);
                unattributed.insert(if what.is_empty() {
                    message.clone()
                } else {
                    format!("{what}: {message}")
                });
            }
            for source in sources {
                by_source.entry(source).or_default().insert(message.clone());
            }
        }
    }
    if by_source.is_empty() && unattributed.is_empty() {
        unattributed.insert(rejection.message.clone());
    }
    Blame {
        by_source: by_source
            .into_iter()
            .map(|(s, m)| (s, m.into_iter().collect()))
            .collect(),
        unattributed: unattributed.into_iter().collect(),
    }
}

/// `(plural entity type, name)` of Kong's "uniqueness violation: 'routes' entity with name
/// set to 'x' already declared".
fn uniqueness_violation(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix("uniqueness violation: '")?;
    let (plural, rest) = rest.split_once("' entity with name set to '")?;
    Some((plural, rest.strip_suffix("' already declared")?))
}

/// The sources of every entity of `entity_type` named `name`.
fn sources_named(config: &KongConfig, entity_type: &str, name: &str) -> BTreeSet<TaggedSource> {
    let mut sources = BTreeSet::new();
    visit(config, &mut |seen: &Seen<'_>| {
        if seen.entity_type == entity_type
            && seen.name == Some(name)
            && let Some(source) = tags::parse(seen.tags)
        {
            sources.insert(source);
        }
    });
    sources
}

fn describe(entity: &RejectedEntity) -> String {
    let key = entity
        .name
        .as_deref()
        .or(entity.id.as_deref())
        .map(str::to_string)
        .or_else(|| entity.index.map(|i| format!("#{i}")));
    match key {
        Some(key) => format!("{} {key}", entity.entity_type),
        None => entity.entity_type.clone(),
    }
}

/// The source of the entity of `config` that `entity` names.
fn find_source(config: &KongConfig, entity: &RejectedEntity) -> Option<TaggedSource> {
    let mut found = None;
    visit(config, &mut |seen: &Seen<'_>| {
        if found.is_some() || seen.entity_type != entity.entity_type {
            return;
        }
        let matches = entity.name.as_deref().is_some_and(|n| seen.name == Some(n))
            || entity.id.as_deref().is_some_and(|i| seen.id == Some(i))
            || entity.index.is_some_and(|i| seen.top_level_index == Some(i));
        if matches {
            found = tags::parse(seen.tags);
        }
    });
    found
}

/// An entity of a config as [`visit`] shows it.
struct Seen<'a> {
    entity_type: &'static str,
    name: Option<&'a str>,
    id: Option<&'a str>,
    /// 1-based position in a top-level array.
    top_level_index: Option<usize>,
    tags: &'a [String],
}

fn visit<'a>(config: &'a KongConfig, f: &mut dyn FnMut(&Seen<'a>)) {
    let seen = |entity_type, name, id, top_level_index, tags| Seen {
        entity_type,
        name,
        id,
        top_level_index,
        tags,
    };
    let plugins = |plugins: &'a [crate::translate::kong::Plugin], f: &mut dyn FnMut(&Seen<'a>)| {
        for plugin in plugins {
            f(&seen("plugin", Some(plugin.name.as_str()), None, None, &plugin.tags));
        }
    };
    for (i, service) in config.services.iter().enumerate() {
        f(&seen("service", Some(&service.name), None, Some(i + 1), &service.tags));
        plugins(&service.plugins, f);
        for route in &service.routes {
            f(&seen("route", Some(&route.name), None, None, &route.tags));
            plugins(&route.plugins, f);
        }
    }
    // Routes also nest in services, so an index Kong reports for routes may be either:
    // top-level routes are never found by index.
    for route in &config.routes {
        f(&seen("route", Some(&route.name), None, None, &route.tags));
        plugins(&route.plugins, f);
    }
    for (i, upstream) in config.upstreams.iter().enumerate() {
        f(&seen(
            "upstream",
            Some(&upstream.name),
            None,
            Some(i + 1),
            &upstream.tags,
        ));
        for target in &upstream.targets {
            f(&seen("target", None, None, None, &target.tags));
        }
    }
    for (i, certificate) in config.certificates.iter().enumerate() {
        f(&seen(
            "certificate",
            None,
            Some(&certificate.id),
            Some(i + 1),
            &certificate.tags,
        ));
        for sni in &certificate.snis {
            f(&seen("sni", Some(&sni.name), None, None, &sni.tags));
        }
    }
    for (i, ca) in config.ca_certificates.iter().enumerate() {
        f(&seen("ca_certificate", None, Some(&ca.id), Some(i + 1), &ca.tags));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::api::ObjectKey;
    use crate::translate::kong::{Route, RouteEntry, Service};
    use crate::translate::tags::Source;

    fn route_tags(name: &str) -> Vec<String> {
        tags::of(&Source {
            group: "gateway.networking.k8s.io",
            version: "v1",
            kind: "HTTPRoute",
            key: &ObjectKey::new("shop", name),
        })
    }

    fn source(kind: &str, name: &str) -> TaggedSource {
        TaggedSource {
            group: if kind == "Service" {
                String::new()
            } else {
                "gateway.networking.k8s.io".into()
            },
            kind: kind.into(),
            key: ObjectKey::new("shop", name),
        }
    }

    fn config() -> KongConfig {
        let service_tags = tags::of(&Source {
            group: "",
            version: "v1",
            kind: "Service",
            key: &ObjectKey::new("shop", "cart"),
        });
        KongConfig {
            services: vec![Arc::new(Service {
                name: "shop.cart.80".into(),
                tags: service_tags,
                routes: vec![RouteEntry::new(
                    Route {
                        name: "shop.cart.0.0".into(),
                        tags: route_tags("cart"),
                        ..Route::default()
                    },
                    1,
                )],
                ..Service::default()
            })],
            ..KongConfig::empty()
        }
    }

    #[test]
    fn flattened_errors_with_tags_are_blamed_on_the_tagged_object() {
        let body = serde_json::json!({
            "code": 14, "name": "invalid declarative configuration",
            "message": "declarative config is invalid: {}",
            "fields": {},
            "flattened_errors": [{
                "entity_type": "route", "entity_name": "shop.cart.0.0",
                "entity_tags": route_tags("cart"),
                "entity": {"name": "shop.cart.0.0"},
                "errors": [
                    {"type": "entity", "message": "Router Expression failed validation: syntax"},
                    {"type": "field", "field": "priority", "message": "value should be between 0 and 70368744177663"}
                ]
            }]
        });
        let rejection = parse_rejection(body.to_string().as_bytes());
        assert_eq!(rejection.entities.len(), 1);
        let blame = blame(&rejection, &config());
        assert_eq!(
            blame.by_source.get(&source("HTTPRoute", "cart")),
            Some(&vec![
                "Router Expression failed validation: syntax".to_string(),
                "priority: value should be between 0 and 70368744177663".to_string()
            ])
        );
        assert!(blame.unattributed.is_empty());
    }

    #[test]
    fn entity_without_tags_is_found_by_type_and_name_in_the_config() {
        let body = serde_json::json!({
            "message": "declarative config is invalid",
            "flattened_errors": [{
                "entity_type": "service", "entity_name": "shop.cart.80",
                "errors": [{"type": "field", "field": "host", "message": "required field missing"}]
            }]
        });
        let blame = blame(&parse_rejection(body.to_string().as_bytes()), &config());
        assert_eq!(
            blame.by_source.get(&source("Service", "cart")),
            Some(&vec!["host: required field missing".to_string()])
        );
    }

    #[test]
    fn errors_kong_kept_in_fields_by_name_are_blamed_too() {
        // What validate_references leaves unflattened: keyed by the service's name.
        let body = serde_json::json!({
            "message": "declarative config is invalid: {services={[\"shop.cart.80\"]={...}}}",
            "fields": {"services": {"shop.cart.80": [
                "invalid reference 'client_certificate: 0b0c' (no such entry in 'certificates')"
            ]}},
            "flattened_errors": {}
        });
        let blame = blame(&parse_rejection(body.to_string().as_bytes()), &config());
        assert_eq!(blame.by_source.len(), 1);
        assert!(blame.by_source[&source("Service", "cart")][0].starts_with("invalid reference"));
    }

    #[test]
    fn errors_kept_by_index_find_the_top_level_entity() {
        let body = serde_json::json!({
            "message": "x",
            "fields": {"services": {"1": "uniqueness violation: 'services' entity with name set to 'shop.cart.80' already declared"}}
        });
        let blame = blame(&parse_rejection(body.to_string().as_bytes()), &config());
        assert!(blame.by_source.contains_key(&source("Service", "cart")));
    }

    #[test]
    fn unknown_entities_and_top_level_errors_are_unattributed() {
        let body = serde_json::json!({
            "message": "declarative config is invalid",
            "fields": {"_format_version": "expected a string"},
            "flattened_errors": [{"entity_type": "upstream", "entity_name": "ghost",
                                  "errors": [{"type": "entity", "message": "bad"}]}]
        });
        let blame = blame(&parse_rejection(body.to_string().as_bytes()), &config());
        assert!(blame.by_source.is_empty());
        assert_eq!(
            blame.unattributed,
            ["_format_version: expected a string", "upstream ghost: bad"]
        );
    }

    #[test]
    fn garbage_answer_is_a_rejection_with_its_text_and_no_entity() {
        let rejection = parse_rejection(b"<html>bad gateway</html>");
        assert_eq!(rejection.message, "<html>bad gateway</html>");
        assert!(rejection.entities.is_empty());
        let blame = blame(&rejection, &config());
        assert_eq!(blame.unattributed, ["<html>bad gateway</html>"]);
    }

    #[test]
    fn duplicate_names_are_blamed_on_every_entity_with_that_name() {
        let mut config = config();
        let mut twin = Service::clone(&config.services[0]);
        twin.name = "shop.other.80".into();
        twin.routes[0] = RouteEntry::new(
            Route {
                tags: route_tags("other"),
                ..Route::clone(&twin.routes[0])
            },
            1,
        );
        config.services.push(Arc::new(twin));
        // What Kong leaves for a nested duplicate: keyed by its index in its service.
        let body = serde_json::json!({
            "message": "x",
            "fields": {"routes": {"1": "uniqueness violation: 'routes' entity with name set to 'shop.cart.0.0' already declared"}}
        });
        let blame = blame(&parse_rejection(body.to_string().as_bytes()), &config);
        assert_eq!(
            blame.by_source.keys().cloned().collect::<Vec<_>>(),
            [source("HTTPRoute", "cart"), source("HTTPRoute", "other")]
        );
        assert!(blame.unattributed.is_empty());
    }

    #[test]
    fn uuids_are_recognised_as_ids() {
        assert!(is_uuid("d2e33f63-1424-408f-be55-d9d16cd2a382"));
        assert!(!is_uuid("shop.cart.80"));
        assert!(!is_uuid("d2e33f63-1424-408f-be55-d9d16cd2a38"));
    }
}
