//! A config made ready to send: its text, the request body and the hash Kong will report
//! once it runs it (see the module doc of [`crate::kong`] for how Kong computes it).

use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};
use serde::Serialize;

use crate::translate::KongConfig;
use crate::translate::tags::TaggedSource;

/// The hash Kong reports when its config has no entities (`DECLARATIVE_EMPTY_CONFIG_HASH`).
pub const EMPTY_CONFIG_HASH: &str = "00000000000000000000000000000000";

/// A config as it goes on the wire, prepared once and shared by every pod's push.
#[derive(Clone, Debug)]
pub struct PreparedConfig {
    /// Orders configs of one class: a pod is never sent a lower version than one it accepted.
    pub version: u64,
    pub config: Arc<KongConfig>,
    /// `{"config": "<config JSON text>"}`, the body of `POST /config`.
    pub body: Bytes,
    /// What `GET /status` reports as `configuration_hash` once Kong runs this config.
    pub hash: String,
    /// Sources left out of the decided config because Kong rejected them (a fallback).
    pub excluded: Vec<TaggedSource>,
}

#[derive(Serialize)]
struct ConfigBody<'a> {
    config: &'a str,
}

impl PreparedConfig {
    /// Serialises `config`; `excluded` names what a fallback left out.
    pub fn new(version: u64, config: Arc<KongConfig>, excluded: Vec<TaggedSource>) -> Result<Self, serde_json::Error> {
        let text = serde_json::to_string(config.as_ref())?;
        let hash = configuration_hash(&text);
        let body = serde_json::to_vec(&ConfigBody { config: &text })?;
        Ok(Self {
            version,
            config,
            body: Bytes::from(body),
            hash,
            excluded,
        })
    }
}

/// The `configuration_hash` Kong reports after loading `text`: the md5 of the text, or the
/// empty hash when the config declares no entity at all.
pub fn configuration_hash(text: &str) -> String {
    if declares_no_entity(text) {
        return EMPTY_CONFIG_HASH.to_string();
    }
    hex::encode(Md5::digest(text.as_bytes()))
}

/// True when the config has nothing but `_`-prefixed keys and empty collections. Only
/// short texts are parsed: any entity makes a config longer than this.
fn declares_no_entity(text: &str) -> bool {
    const LONGEST_EMPTY: usize = 256;
    if text.len() > LONGEST_EMPTY {
        return false;
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    map.iter().all(|(key, value)| {
        key.starts_with('_')
            || match value {
                serde_json::Value::Array(items) => items.is_empty(),
                serde_json::Value::Object(entries) => entries.is_empty(),
                serde_json::Value::Null => true,
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::kong::Upstream;

    #[test]
    fn hash_is_the_md5_of_the_config_text() {
        // md5("{}") computed independently: 99914b932bd37a50b983c5e7c90ae93b.
        assert_eq!(hex::encode(Md5::digest(b"{}")), "99914b932bd37a50b983c5e7c90ae93b");
        let mut config = KongConfig::empty();
        config.upstreams.push(Arc::new(Upstream {
            name: "placeholder".into(),
            ..Upstream::default()
        }));
        let prepared = PreparedConfig::new(1, Arc::new(config), vec![]).expect("serialises");
        let text: serde_json::Value = serde_json::from_slice(&prepared.body).expect("JSON body");
        let inner = text["config"].as_str().expect("config is a string");
        assert_eq!(prepared.hash, hex::encode(Md5::digest(inner.as_bytes())));
        assert_eq!(prepared.hash.len(), 32);
    }

    #[test]
    fn config_without_entities_reports_the_empty_hash() {
        let prepared = PreparedConfig::new(1, Arc::new(KongConfig::empty()), vec![]).expect("serialises");
        assert_eq!(prepared.hash, EMPTY_CONFIG_HASH);
        assert_eq!(
            configuration_hash(r#"{"_format_version":"3.0","services":[]}"#),
            EMPTY_CONFIG_HASH
        );
    }

    #[test]
    fn config_with_one_entity_is_not_empty() {
        let text = r#"{"_format_version":"3.0","upstreams":[{"name":"u","tags":[]}]}"#;
        assert_ne!(configuration_hash(text), EMPTY_CONFIG_HASH);
    }
}
