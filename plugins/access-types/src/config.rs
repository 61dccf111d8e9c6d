//! [`RbacConfig`]: the RBAC policy's configuration, a list of [`Grant`]s, with its JSON form and
//! its validation. The decision over it is in `decide.rs`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::{Role, op};

/// The RBAC policy's configuration: who may do what. A caller may do what any grant naming it
/// (or `*`) allows; everything else is denied.
///
/// The strings are `String`s; [`RbacConfig::from_json_borrowed`] gives a configuration of `&str`s
/// borrowed from the JSON, which decides the same and costs a policy far less to parse per call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbacConfig<S = String> {
    /// The grants, judged in order (the order matters only for the wording of a denial).
    pub grants: Vec<Grant<S>>,
}

/// One role given to one peer (or to every caller), optionally narrowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant<S = String> {
    /// A label for messages; unnamed grants are called `grant #N` (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<S>,
    /// The peer's endpoint id (64 hex characters, as `iroh-raft whoami` prints it; compared
    /// case-insensitively), or `*` for every caller.
    pub peer: S,
    /// The role given.
    pub role: Role,
    /// Narrows the role: only these of its operations (`None`: all of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<S>>,
    /// `data.read` only on keys under one of these prefixes (`None`: every key). The prefixes are
    /// the UTF-8 bytes of the strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_prefixes: Option<Vec<S>>,
    /// `data.write` only on keys under one of these prefixes (`None`: every key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_prefixes: Option<Vec<S>>,
}

/// The `peer` of a grant that applies to every caller.
pub(crate) const EVERY_PEER: &str = "*";

/// How a grant is called in messages: its name, or `grant #N`.
pub(crate) struct Label<'a, S> {
    pub(crate) grant: &'a Grant<S>,
    /// The grant's 0-based place in the list.
    pub(crate) index: usize,
}

impl<S: AsRef<str>> fmt::Display for Label<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.grant.name {
            Some(name) => write!(f, "grant {:?}", name.as_ref()),
            None => write!(f, "grant \"grant #{}\"", self.index + 1),
        }
    }
}

impl RbacConfig {
    /// Parses and validates a configuration: every peer is an endpoint id or `*`, and every
    /// operation listed is one of the grant's role. The error names the grant and the field.
    pub fn from_json(json: &[u8]) -> Result<Self, String> {
        parse(json)
    }

    /// The configuration as pretty-printed JSON, which [`RbacConfig::from_json`] reads back.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, options and unit variants only: serializing cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// A configuration that makes each `(name, peer)` an admin.
    pub fn admins(peers: impl IntoIterator<Item = (String, String)>) -> Self {
        let grants = peers
            .into_iter()
            .map(|(name, peer)| Grant {
                name: Some(name),
                peer,
                role: Role::Admin,
                operations: None,
                read_prefixes: None,
                write_prefixes: None,
            })
            .collect();
        RbacConfig { grants }
    }
}

impl<'a> RbacConfig<&'a str> {
    /// Parses and validates a configuration as [`RbacConfig::from_json`] does, borrowing its
    /// strings from `json`. Fails also when a string holds a JSON escape (`\"`, `\u00e9`), which
    /// cannot be borrowed: fall back to [`RbacConfig::from_json`] then.
    pub fn from_json_borrowed(json: &'a [u8]) -> Result<Self, String> {
        parse(json)
    }
}

fn parse<'a, S: Deserialize<'a> + AsRef<str>>(json: &'a [u8]) -> Result<RbacConfig<S>, String> {
    let config: RbacConfig<S> = serde_json::from_slice(json).map_err(|error| {
        format!(
            "the rbac configuration is not valid ({error}); it is a JSON object \
             {{\"grants\": [{{\"peer\": \"<endpoint id>\", \"role\": \"admin\"}}, …]}}"
        )
    })?;
    config.validate()?;
    Ok(config)
}

impl<S: AsRef<str>> RbacConfig<S> {
    fn validate(&self) -> Result<(), String> {
        for (index, grant) in self.grants.iter().enumerate() {
            let label = Label { grant, index };
            if !is_peer(grant.peer.as_ref()) {
                return Err(format!(
                    "{label}: peer {:?} is neither an endpoint id (64 hex characters, as \
                     `iroh-raft whoami` prints it) nor \"*\" (every caller)",
                    grant.peer.as_ref()
                ));
            }
            for operation in grant.operations.iter().flatten().map(AsRef::as_ref) {
                if !op::is_known(operation) {
                    return Err(format!(
                        "{label}: operations lists {operation:?}, which is not an operation; \
                         the operations are {}",
                        op::ALL.join(", ")
                    ));
                }
                if !grant.role.allows(operation) {
                    return Err(format!(
                        "{label}: operations lists {operation:?}, which role {} does not allow \
                         (it allows {}); give the grant a role that does",
                        grant.role,
                        grant.role.operations().join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

impl<S: AsRef<str>> Grant<S> {
    /// Whether this grant names `peer`.
    pub fn applies_to(&self, peer: &str) -> bool {
        let own = self.peer.as_ref();
        own == EVERY_PEER || own.eq_ignore_ascii_case(peer)
    }
}

fn is_peer(peer: &str) -> bool {
    peer == EVERY_PEER || (peer.len() == 64 && peer.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    const PEER: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(json: &str) -> Result<RbacConfig, String> {
        RbacConfig::from_json(json.as_bytes())
    }

    #[test]
    fn a_full_grant_and_a_minimal_one_parse() {
        let config = parse(&alloc::format!(
            r#"{{"grants": [
                {{"name": "app", "peer": "{}", "role": "admin", "operations": ["data.write"],
                  "read_prefixes": ["app/"], "write_prefixes": ["app/", "tmp/"]}},
                {{"peer": "*", "role": "monitor"}}
            ]}}"#,
            PEER.to_uppercase()
        ))
        .unwrap();
        assert_eq!(config.grants.len(), 2);
        let app = &config.grants[0];
        assert_eq!(app.name.as_deref(), Some("app"));
        assert_eq!(app.role, Role::Admin);
        assert_eq!(app.operations, Some(vec!["data.write".to_string()]));
        assert_eq!(app.write_prefixes.as_ref().map(Vec::len), Some(2));
        assert!(app.applies_to(PEER), "peers compare case-insensitively");
        let every = &config.grants[1];
        assert_eq!(
            (every.name.as_ref(), every.operations.as_ref()),
            (None, None)
        );
        assert!(every.applies_to("anyone"));
    }

    #[test]
    fn to_json_round_trips_and_omits_what_is_unset() {
        let config = RbacConfig::admins([("ops".to_string(), PEER.to_string())]);
        let json = String::from_utf8(config.to_json()).unwrap();
        assert!(json.contains('\n'), "pretty: {json}");
        assert!(
            !json.contains("operations") && !json.contains("null"),
            "{json}"
        );
        assert_eq!(parse(&json), Ok(config));
    }

    #[test]
    fn invalid_configurations_say_which_grant_and_field() {
        let cases: &[(&str, &str)] = &[
            ("", "not valid"),
            ("[]", "not valid"),
            (r#"{"grant": []}"#, "unknown field `grant`"),
            (r#"{"grants": [{"peer": "*"}]}"#, "missing field `role`"),
            (
                r#"{"grants": [{"peer": "*", "role": "root"}]}"#,
                "unknown variant `root`",
            ),
            (
                r#"{"grants": [{"peer": "*", "role": "admin", "prefixes": []}]}"#,
                "unknown field `prefixes`",
            ),
            (
                r#"{"grants": [{"peer": "*", "role": "admin"}, {"peer": "abc", "role": "admin"}]}"#,
                r#"grant "grant #2": peer "abc" is neither an endpoint id"#,
            ),
            (
                r#"{"grants": [{"name": "x", "peer": "*", "role": "admin", "operations": ["data.delete"]}]}"#,
                r#"grant "x": operations lists "data.delete", which is not an operation"#,
            ),
            (
                r#"{"grants": [{"name": "x", "peer": "*", "role": "monitor", "operations": ["data.write"]}]}"#,
                r#"grant "x": operations lists "data.write", which role monitor does not allow"#,
            ),
        ];
        for (json, expected) in cases {
            let error = parse(json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
        let not_hex = PEER.replace('0', "g");
        let error = parse(&alloc::format!(
            r#"{{"grants": [{{"peer": "{not_hex}", "role": "admin"}}]}}"#
        ))
        .unwrap_err();
        assert!(error.contains("64 hex characters"), "{error}");
    }
}
