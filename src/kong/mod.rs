//! Talking to Kong: the admin API client, the configuration hash, Kong's rejections and
//! the pure decisions of the config push (which pod gets which config, what to report).
//!
//! # Kong 3.9 facts this module relies on
//!
//! Read in Kong's source at tag 3.9.3 (`git show 3.9.3:<path>` in github.com/Kong/kong).
//!
//! - **`POST /config`** (`kong/api/routes/config.lua`). `check_hash` is on only for the
//!   exact string `1`; `flatten_errors` for any truthy value (`1`, `true`, `on`, `yes`).
//!   When the request has no top-level `_format_version` parameter, the config text is
//!   taken from the `config` parameter, else from the raw body; a JSON body sent as
//!   `application/json` is decoded into parameters first (`kong/api/api_helpers.lua`,
//!   `parse_params`), so kongress sends `{"config": "<config JSON text>"}`, the
//!   documented form, and the text inside is what Kong hashes.
//!   Answers: **201** with the loaded entities when the config was loaded; **304** with no
//!   body when `check_hash=1` and the text's hash equals the running one; **400** with
//!   `{code: 14, name: "invalid declarative configuration", message, fields,
//!   flattened_errors}` when the config does not validate; 400 `"expected a declarative
//!   configuration"` without a body; **429** `"Currently loading previous configuration"`
//!   with `Retry-After`; **504** on a load timeout; **503** while exiting; **413** when
//!   the config does not fit LMDB; **500** otherwise. The admin API answers 415 to a
//!   content type other than JSON, form, multipart or YAML (`before_filter`).
//! - **The hash** (`kong/db/declarative/init.lua`, `unserialize`): `ngx.md5` of the config
//!   text, lower-case hex (32 characters). Only a config posted as a table (a JSON body
//!   carrying `_format_version` at the top) is hashed differently, as
//!   `md5(cjson_encode({entities, meta}))`, which nobody can reproduce outside Kong;
//!   and then `check_hash` never matches. `kong/db/declarative/import.lua`,
//!   `load_into_cache`: when the config has no entities at all (only the default
//!   workspace that parsing adds, `config_is_empty`) the stored hash is
//!   `DECLARATIVE_EMPTY_CONFIG_HASH`, 32 zeros (`kong/constants.lua`), whatever the text.
//! - **`GET /status`** (`kong/api/routes/health.lua`): in DB-less mode the answer carries
//!   `configuration_hash` (the stored hash; `database` is dropped). A fresh DB-less Kong
//!   without a declarative config loads an empty one at start (`kong/init.lua`,
//!   `parse_declarative_config` → `parse_table({ _format_version = "3.0" })`), so it
//!   reports 32 zeros. The prefix (and its LMDB) lives on an emptyDir, so a restarted
//!   container comes back with its last config ("found persisted lmdb config").
//! - **Readiness** (`kong/status/ready.lua`): `/status/ready` is 503 while the hash is
//!   unset or the empty hash ("no configuration available (empty configuration
//!   present)"), so a class needs at least one entity in its config for its pods to be
//!   ready.
//! - **Flattened errors** (`kong/db/errors.lua`, `declarative_config_flattened`): each entry
//!   is `{entity_type, entity_name?, entity_id?, entity_tags?, entity, errors}`;
//!   `entity_type` is the config key with one trailing `s` removed (`service`, `route`,
//!   `plugin`, `upstream`, `target`, `certificate`, `sni`, `ca_certificate`); name, id
//!   (a valid UUID only) and tags are left out when invalid; `errors` holds
//!   `{type: "entity", message}` (entity checks, e.g. `Router Expression failed
//!   validation: ...` from `kong/db/schema/entities/routes.lua`) and `{type: "field",
//!   field: "a.b", message}`. Nested entities (routes in services, targets in upstreams)
//!   get entries of their own. Errors Kong could not pin on an array element stay in
//!   `fields` and are not flattened: reference and uniqueness errors found after schema
//!   validation are keyed by the entity's *name* (or id) rather than its index
//!   (`kong/db/schema/others/declarative_config.lua`, `populate_references` and
//!   `validate_references`: `"invalid reference 'client_certificate: {...}' (no such
//!   entry in 'certificates')"`, `"uniqueness violation: 'services' entity with name set
//!   to 'x' already declared"`), so kongress reads both.
//! - **Expressions** (`kong/router/atc.lua`, `kong/router/fields.lua`): a route is
//!   validated against the HTTP schema when its first protocol is http/https/grpc/grpcs,
//!   else the stream schema (`net.protocol`, `tls.sni` strings; `net.src.port`,
//!   `net.dst.port` ints; `net.src.ip`, `net.dst.ip` addresses; plus `http.method`,
//!   `http.host`, `http.path`, `http.path.segments.*`, `http.headers.*`,
//!   `http.queries.*` strings and `http.path.segments.len` for HTTP).

pub mod admin;
pub mod errors;
pub mod fallback;
pub mod hash;
pub mod push;

pub use admin::{AdminError, AdminTarget, ClientTls, PodAdmin, PostOutcome, Timeouts};
pub use errors::{RejectedEntity, Rejection, parse_rejection};
pub use fallback::without_sources;
pub use hash::{EMPTY_CONFIG_HASH, PreparedConfig};
pub use push::{
    ClassPush, PLACEHOLDER_UPSTREAM, PodAction, PodKey, PodPushState, PodResult, PodSpec, PushSettings, PushState,
    RejectedObject, Serving, loadable,
};
