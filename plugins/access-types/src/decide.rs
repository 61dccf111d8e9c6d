//! [`RbacConfig::decide`]: the RBAC decision, a pure function of the configuration and one
//! request. Allowing allocates nothing; only a denial builds its message.

use alloc::format;
use alloc::string::String;
use core::fmt::{self, Write};

use crate::config::Label;
use crate::resource::DataResource;
use crate::{Grant, RbacConfig, op};

/// The outcome of [`RbacConfig::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request is refused; the reason names the rule, for the caller.
    Deny(String),
}

/// How many refusing grants a denial describes before it only counts the rest.
const DESCRIBED: usize = 3;

/// Why one grant that names the caller does not allow a request.
enum Refusal<'a, S> {
    /// Its role does not allow the operation.
    Role,
    /// Its `operations` narrowing leaves the operation out.
    Operations(&'a [S]),
    /// The resource is outside its prefix rule for the operation.
    Prefixes {
        field: &'static str,
        prefixes: &'a [S],
    },
}

impl<S: AsRef<str>> RbacConfig<S> {
    /// Decides whether `peer` may run `operation` on `resource`: allowed if any grant naming the
    /// peer (or `*`) allows it, denied otherwise.
    ///
    /// A grant allows a request if its role allows the operation, its `operations` (if set) list
    /// it, and, for `data.read` and `data.write`, the resource is under one of its
    /// `read_prefixes` / `write_prefixes` (if set): `key/K` with `K` under a prefix, or
    /// `prefix/P` with `P` extending one. A resource that names no keys (`state-machine`) passes
    /// only a grant with no prefix rule for the operation.
    pub fn decide(&self, peer: &str, operation: &str, resource: &str) -> Decision {
        let mut named = false;
        for grant in self.grants.iter().filter(|grant| grant.applies_to(peer)) {
            named = true;
            if refusal(grant, operation, resource).is_none() {
                return Decision::Allow;
            }
        }
        if !named {
            return Decision::Deny(format!(
                "rbac: no grant names caller {}… (rbac denies by default); an admin can add one \
                 with `plugin deploy --kind policy --config FILE`",
                peer.get(..10).unwrap_or(peer)
            ));
        }
        Decision::Deny(self.explain(peer, operation, resource))
    }

    /// The denial message: why each grant naming `peer` refused, the first few of them.
    fn explain(&self, peer: &str, operation: &str, resource: &str) -> String {
        let mut message = String::from("rbac: ");
        let mut refused = 0;
        for (index, grant) in self.grants.iter().enumerate() {
            if !grant.applies_to(peer) {
                continue;
            }
            let Some(why) = refusal(grant, operation, resource) else {
                continue;
            };
            refused += 1;
            if refused > DESCRIBED {
                continue;
            }
            if refused > 1 {
                message.push_str("; ");
            }
            let reason = Reason {
                label: Label { grant, index },
                operation,
                resource,
                why,
            };
            // Writing to a String cannot fail.
            let _ = write!(message, "{reason}");
        }
        if refused > DESCRIBED {
            let _ = write!(
                message,
                "; {} more grants do not allow it either",
                refused - DESCRIBED
            );
        }
        message
    }
}

/// One grant's refusal, as the denial words it.
struct Reason<'a, S> {
    label: Label<'a, S>,
    operation: &'a str,
    resource: &'a str,
    why: Refusal<'a, S>,
}

impl<S: AsRef<str>> fmt::Display for Reason<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Reason {
            label,
            operation,
            resource,
            ..
        } = self;
        let role = label.grant.role;
        match &self.why {
            Refusal::Role => write!(f, "{label} (role {role}) does not allow {operation}"),
            Refusal::Operations(listed) => write!(
                f,
                "{label} (role {role}) allows only the operations {}, not {operation}",
                List(listed)
            ),
            Refusal::Prefixes { field, prefixes } => {
                write!(
                    f,
                    "{label} (role {role}) allows {operation} only under {field} {}, and \
                     {resource} is outside them",
                    List(prefixes)
                )?;
                match DataResource::parse(resource) {
                    Some(DataResource::Whole) => f.write_str(
                        " (the state machine does not name the keys this request touches)",
                    ),
                    None => f.write_str(" (it is not a key/… or prefix/… name)"),
                    Some(_) => Ok(()),
                }
            }
        }
    }
}

/// A list of strings as JSON writes it: `["a", "b"]`.
struct List<'a, S>(&'a [S]);

impl<S: AsRef<str>> fmt::Display for List<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(AsRef::as_ref))
            .finish()
    }
}

/// Why `grant` does not allow `operation` on `resource`; `None` if it allows it.
fn refusal<'a, S: AsRef<str>>(
    grant: &'a Grant<S>,
    operation: &str,
    resource: &str,
) -> Option<Refusal<'a, S>> {
    if !grant.role.allows(operation) {
        return Some(Refusal::Role);
    }
    if let Some(listed) = &grant.operations
        && !listed.iter().any(|name| name.as_ref() == operation)
    {
        return Some(Refusal::Operations(listed));
    }
    let (field, prefixes) = match operation {
        op::DATA_READ => ("read_prefixes", grant.read_prefixes.as_deref()),
        op::DATA_WRITE => ("write_prefixes", grant.write_prefixes.as_deref()),
        _ => return None,
    };
    let prefixes = prefixes?;
    let parsed = DataResource::parse(resource);
    let fits = parsed.is_some_and(|parsed| {
        prefixes
            .iter()
            .any(|prefix| parsed.is_under(prefix.as_ref().as_bytes()))
    });
    if fits {
        None
    } else {
        Some(Refusal::Prefixes { field, prefixes })
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
