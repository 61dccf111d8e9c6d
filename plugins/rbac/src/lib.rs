//! The bundled role-based access policy: its configuration grants fixed roles to peers, optionally
//! narrowed to some operations and, for data requests, to key prefixes. A caller may do what any
//! grant naming it (or `*`) allows; everything else is denied, and every denial names the rule.
//!
//! # Configuration
//!
//! Deploy it with a JSON file: `iroh-raft plugin deploy --kind policy rbac.wasm --config
//! rbac.json` (build `rbac.wasm` with `cargo build --target wasm32-wasip2 --profile plugin -p
//! iroh-raft-plugin-rbac`). The configuration is read once per instance, on the first decision
//! (the host makes a new instance for every policy version). Each grant has:
//!
//! | field | | meaning |
//! |---|---|---|
//! | `peer` | required | the caller's endpoint id (64 hex characters, as `iroh-raft whoami` prints it), or `"*"` for every caller |
//! | `role` | required | `admin` (everything), `observer` (status, health, metrics, data reads, config reads, events, backup list), `member-manager` (member add/remove/role, status, health) or `monitor` (metrics, health) |
//! | `name` | optional | a label for denial messages (default `grant #N`) |
//! | `operations` | optional | only these of the role's operations, e.g. `["data.read", "data.write"]` |
//! | `read_prefixes` | optional | `data.read` only on keys under one of these prefixes |
//! | `write_prefixes` | optional | `data.write` only on keys under one of these prefixes |
//!
//! ```json
//! {
//!   "grants": [
//!     { "name": "ops", "peer": "<64 hex characters>", "role": "admin" },
//!     {
//!       "name": "app",
//!       "peer": "<64 hex characters>",
//!       "role": "admin",
//!       "operations": ["data.read", "data.write"],
//!       "read_prefixes": ["app/", "shared/"],
//!       "write_prefixes": ["app/"]
//!     },
//!     { "name": "dashboards", "peer": "*", "role": "monitor" }
//!   ]
//! }
//! ```
//!
//! A prefix rule judges a data request by the resources the state machine names for it
//! (`key/app/x`, `prefix/app/`); a state machine that does not name them (resource
//! `state-machine`) passes only grants without a prefix rule for that operation. An empty or
//! invalid configuration denies everything, saying why. The configuration and the decision live in
//! `iroh-raft-access-types` (`RbacConfig`), so they can be built and tested natively.
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use iroh_raft_access_types::{self as access, RbacConfig};
use iroh_raft_plugin_api::{Decision, PreparedPolicy, Request};

struct Rbac;

// SAFETY: the configuration is plain data parsed once in `prepare`; `authorize` only reads it.
unsafe impl PreparedPolicy for Rbac {
    /// The grants, or why the configuration denies everything.
    type Config = Result<RbacConfig, String>;

    fn prepare(config: &[u8]) -> Self::Config {
        RbacConfig::from_json(config).map_err(|error| unusable(config, &error))
    }

    fn authorize(config: &Self::Config, request: &Request) -> Decision {
        let rbac = match config {
            Ok(rbac) => rbac,
            Err(reason) => return Decision::Deny(reason.clone()),
        };
        match rbac.decide(&request.peer, &request.operation, &request.resource) {
            access::Decision::Allow => Decision::Allow,
            access::Decision::Deny(reason) => Decision::Deny(reason),
        }
    }
}

/// Why a configuration that does not parse denies everything, and how to fix it.
fn unusable(config: &[u8], error: &str) -> String {
    if config.iter().all(u8::is_ascii_whitespace) {
        String::from(
            "rbac: this policy was deployed without a configuration, so it denies everything; \
             deploy it again with `--config FILE`, a JSON file of grants (see the \
             iroh-raft-plugin-rbac docs)",
        )
    } else {
        format!(
            "rbac: the configuration is invalid, so this policy denies everything: {error}; fix \
             it and deploy the policy again with `--config FILE`"
        )
    }
}

iroh_raft_plugin_api::export_policy!(prepared Rbac);

#[cfg(test)]
mod tests {
    use super::*;
    use iroh_raft_access_types::{op, resource};

    const OPS: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
    const APP: &str = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0";
    const STRANGER: &str = "5555555555555555555555555555555555555555555555555555555555555555";

    fn config() -> String {
        format!(
            r#"{{"grants": [
                {{"name": "ops", "peer": "{OPS}", "role": "admin"}},
                {{"name": "app", "peer": "{APP}", "role": "admin",
                  "operations": ["data.read", "data.write"], "write_prefixes": ["app/"]}},
                {{"peer": "*", "role": "monitor"}}
            ]}}"#
        )
    }

    fn authorize(config: &str, peer: &str, operation: &str, resource: &str) -> Decision {
        let request = Request {
            peer: String::from(peer),
            operation: String::from(operation),
            resource: String::from(resource),
        };
        Rbac::authorize(&Rbac::prepare(config.as_bytes()), &request)
    }

    fn denial(decision: Decision) -> String {
        match decision {
            Decision::Deny(reason) => reason,
            Decision::Allow => panic!("allowed"),
        }
    }

    #[test]
    fn grants_decide_each_request() {
        let config = config();
        let app_write = |key: &[u8]| authorize(&config, APP, op::DATA_WRITE, &resource::key(key));
        assert_eq!(app_write(b"app/x"), Decision::Allow);
        assert_eq!(
            denial(app_write(b"sys/x")),
            r#"rbac: grant "app" (role admin) allows data.write only under write_prefixes ["app/"], and key/sys/x is outside them; grant "grant #3" (role monitor) does not allow data.write"#
        );
        assert_eq!(
            authorize(&config, APP, op::DATA_READ, resource::STATE_MACHINE),
            Decision::Allow
        );
        assert_eq!(
            authorize(&config, OPS, op::PLUGIN_DEPLOY, "plugin/policy"),
            Decision::Allow
        );
        assert_eq!(
            authorize(&config, STRANGER, op::METRICS_READ, ""),
            Decision::Allow
        );
        assert!(
            denial(authorize(&config, STRANGER, op::STATUS_READ, ""))
                .contains("(role monitor) does not allow status.read")
        );
    }

    #[test]
    fn escaped_strings_take_the_owned_parse() {
        let config = config().replace("\"app/\"", r#""app\u002f""#);
        assert!(RbacConfig::from_json_borrowed(config.as_bytes()).is_err());
        assert_eq!(
            authorize(&config, APP, op::DATA_WRITE, &resource::key(b"app/x")),
            Decision::Allow
        );
    }

    #[test]
    fn a_missing_configuration_denies_everything_and_says_how_to_fix_it() {
        for empty in ["", " \n"] {
            let reason = denial(authorize(empty, OPS, op::HEALTH_READ, ""));
            assert!(reason.contains("without a configuration"), "{reason}");
            assert!(reason.contains("--config FILE"), "{reason}");
        }
    }

    #[test]
    fn an_invalid_configuration_denies_everything_naming_the_fault() {
        let config = config().replace("monitor", "root");
        let reason = denial(authorize(&config, OPS, op::HEALTH_READ, ""));
        assert!(
            reason.starts_with("rbac: the configuration is invalid"),
            "{reason}"
        );
        assert!(reason.contains("unknown variant `root`"), "{reason}");
        assert!(reason.contains("--config FILE"), "{reason}");

        let config = format!(
            r#"{{"grants": [{{"name": "typo", "peer": "{}", "role": "admin"}}]}}"#,
            &OPS[1..]
        );
        let reason = denial(authorize(&config, OPS, op::HEALTH_READ, ""));
        assert!(reason.contains(r#"grant "typo": peer"#), "{reason}");
    }
}
