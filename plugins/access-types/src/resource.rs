//! How a data request names what it touches, for the policy: `key/<key>` for one key,
//! `prefix/<prefix>` for every key under a prefix, and [`STATE_MACHINE`] when the state machine
//! cannot narrow the request.
//!
//! Keys are bytes, names are strings: [`escape`] keeps the printable ASCII bytes except `%` and
//! writes every other byte as `%XX` (uppercase hex). It is a per-byte prefix code, so a name's
//! escaped key starts with `escape(p)` exactly when the key starts with `p`: a policy can judge
//! prefixes on the names alone ([`DataResource::is_under`]).

use alloc::string::String;
use alloc::vec::Vec;

/// The resource of a data request the state machine cannot narrow: it is judged as a whole.
pub const STATE_MACHINE: &str = "state-machine";

const KEY: &str = "key/";
const PREFIX: &str = "prefix/";
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether `byte` stands for itself in an escaped name.
fn is_plain(byte: u8) -> bool {
    (0x21..=0x7e).contains(&byte) && byte != b'%'
}

/// Escapes `bytes`: printable ASCII except `%` as itself, every other byte as `%XX`.
///
/// ```
/// use iroh_raft_access_types::resource::escape;
/// assert_eq!(escape(b"app/x"), "app/x");
/// assert_eq!(escape(b"a b%\xff"), "a%20b%25%FF");
/// ```
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(&mut out, bytes);
    out
}

fn escape_into(out: &mut String, bytes: &[u8]) {
    for &byte in bytes {
        if is_plain(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

/// The bytes an [`escape`]d string stands for; `None` if it is not exactly what `escape` writes
/// (a byte that should be escaped, a lowercase or truncated `%XX`).
pub fn unescape(escaped: &str) -> Option<Vec<u8>> {
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'%' {
            let high = hex_digit(*bytes.get(at + 1)?)?;
            let low = hex_digit(*bytes.get(at + 2)?)?;
            let decoded = high << 4 | low;
            if is_plain(decoded) {
                return None;
            }
            out.push(decoded);
            at += 3;
        } else if is_plain(byte) {
            out.push(byte);
            at += 1;
        } else {
            return None;
        }
    }
    Some(out)
}

fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The name of one key: `key/` followed by the escaped key.
pub fn key(key: &[u8]) -> String {
    named(KEY, key)
}

/// The name of every key starting with `prefix`: `prefix/` followed by the escaped prefix
/// (`prefix/` alone is the whole keyspace).
pub fn prefix(prefix: &[u8]) -> String {
    named(PREFIX, prefix)
}

fn named(kind: &str, bytes: &[u8]) -> String {
    let mut out = String::with_capacity(kind.len() + bytes.len());
    out.push_str(kind);
    escape_into(&mut out, bytes);
    out
}

/// The smallest key greater than every key starting with `prefix`; `None` if there is none (the
/// prefix is empty or all `0xff`), so the range runs to the end of the keyspace.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The longest prefix `P` of `start` such that every key in `[start, end)` starts with `P`
/// (`end = None`: to the end of the keyspace).
///
/// The keys starting with `P` are `[P, succ(P))` (`succ` is [`prefix_end`], unbounded for an
/// empty or all-`0xff` prefix), and `start` starts with `P`, so `[start, end)` lies inside them
/// exactly when `end <= succ(P)`. A shorter `P` has a larger `succ`, so the longest fitting `P` is
/// found by bisection.
pub fn covering_prefix<'a>(start: &'a [u8], end: Option<&[u8]>) -> &'a [u8] {
    let covers = |len: usize| match (end, prefix_end(&start[..len])) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(end), Some(succ)) => end <= succ.as_slice(),
    };
    // `covers(lo)` holds (the empty prefix covers everything); `covers(hi)` does not, or `hi` is
    // past the end of `start`.
    let (mut lo, mut hi) = (0, start.len() + 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if covers(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    &start[..lo]
}

/// A data request's resource, parsed; the strings are still escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataResource<'a> {
    /// `key/K`: the one key `K`.
    Key(&'a str),
    /// `prefix/P`: every key starting with `P`.
    Prefix(&'a str),
    /// [`STATE_MACHINE`]: whatever the request touches, unnamed.
    Whole,
}

impl<'a> DataResource<'a> {
    /// Parses a resource; `None` if it is none of the three forms or its escaped part is not
    /// exactly what [`escape`] writes.
    pub fn parse(resource: &'a str) -> Option<DataResource<'a>> {
        if resource == STATE_MACHINE {
            return Some(DataResource::Whole);
        }
        let parsed = if let Some(key) = resource.strip_prefix(KEY) {
            DataResource::Key(key)
        } else if let Some(prefix) = resource.strip_prefix(PREFIX) {
            DataResource::Prefix(prefix)
        } else {
            return None;
        };
        is_escaped(parsed.escaped()).then_some(parsed)
    }

    /// The escaped key or prefix; empty for [`DataResource::Whole`].
    pub fn escaped(self) -> &'a str {
        match self {
            DataResource::Key(escaped) | DataResource::Prefix(escaped) => escaped,
            DataResource::Whole => "",
        }
    }

    /// Whether everything this resource names starts with the raw bytes `prefix`: a key under it,
    /// or a prefix at least as long that extends it. Never true for [`DataResource::Whole`].
    /// Allocates nothing.
    pub fn is_under(self, prefix: &[u8]) -> bool {
        match self {
            DataResource::Key(escaped) | DataResource::Prefix(escaped) => {
                escaped_starts_with(escaped, prefix)
            }
            DataResource::Whole => false,
        }
    }
}

/// Whether `escaped` is exactly what [`escape`] writes for some bytes. Allocates nothing.
fn is_escaped(escaped: &str) -> bool {
    let bytes = escaped.as_bytes();
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b'%' {
            let decoded = match (bytes.get(at + 1), bytes.get(at + 2)) {
                (Some(&high), Some(&low)) => hex_digit(high).zip(hex_digit(low)),
                _ => None,
            };
            match decoded {
                Some((high, low)) if !is_plain(high << 4 | low) => at += 3,
                _ => return false,
            }
        } else if is_plain(byte) {
            at += 1;
        } else {
            return false;
        }
    }
    true
}

/// Whether `escaped` starts with `escape(prefix)`, without building it.
fn escaped_starts_with(escaped: &str, prefix: &[u8]) -> bool {
    let mut rest = escaped.as_bytes();
    for &byte in prefix {
        let matched = if is_plain(byte) {
            rest.first() == Some(&byte)
        } else {
            rest.get(..3)
                == Some(&[
                    b'%',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ])
        };
        if !matched {
            return false;
        }
        rest = &rest[if is_plain(byte) { 1 } else { 3 }..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_escape_exactly_the_bytes_outside_printable_ascii_and_percent() {
        assert_eq!(key(b"app/x"), "key/app/x");
        assert_eq!(prefix(b""), "prefix/");
        assert_eq!(escape(b"~!"), "~!");
        assert_eq!(escape(b" %\x00\x7f\x80\xff"), "%20%25%00%7F%80%FF");
        assert_eq!(escape("é".as_bytes()), "%C3%A9");
    }

    #[test]
    fn resources_parse_into_their_escaped_part() {
        assert_eq!(
            DataResource::parse("key/app/x"),
            Some(DataResource::Key("app/x"))
        );
        assert_eq!(
            DataResource::parse("prefix/"),
            Some(DataResource::Prefix(""))
        );
        assert_eq!(
            DataResource::parse("prefix/a%20"),
            Some(DataResource::Prefix("a%20"))
        );
        assert_eq!(
            DataResource::parse(STATE_MACHINE),
            Some(DataResource::Whole)
        );
        for malformed in [
            "", "key", "keys/a", "member/3", "key/a b", "key/%2", "key/%2g", "key/%ff", "key/%41",
            "prefix/%", "key/é",
        ] {
            assert_eq!(DataResource::parse(malformed), None, "{malformed}");
        }
    }

    #[test]
    fn a_resource_is_under_a_prefix_when_all_it_names_starts_with_it() {
        let under = |resource: &str, prefix: &[u8]| {
            DataResource::parse(resource).is_some_and(|parsed| parsed.is_under(prefix))
        };
        assert!(under("key/app/x", b"app/"));
        assert!(under("key/app/", b"app/"));
        assert!(under("prefix/app/", b"app/"));
        assert!(under("prefix/app/deep", b"app/"));
        assert!(under("key/a%20b", b"a "));
        assert!(under("key/anything", b""));
        assert!(!under("key/sys/x", b"app/"));
        assert!(!under("prefix/ap", b"app/"));
        assert!(!under("prefix/", b"app/"));
        assert!(!under("key/a%20b", b"a%"));
        assert!(!under(STATE_MACHINE, b""));
    }

    proptest! {
        #[test]
        fn escape_preserves_prefixes_both_ways(a in proptest::collection::vec(any::<u8>(), 0..12), p in proptest::collection::vec(any::<u8>(), 0..6)) {
            let (ea, ep) = (escape(&a), escape(&p));
            prop_assert_eq!(ea.starts_with(&ep), a.starts_with(&p));
            prop_assert_eq!(escaped_starts_with(&ea, &p), a.starts_with(&p));
            // The same with `p` taken from `a`, which the random pairs above rarely hit.
            let cut = p.len().min(a.len());
            prop_assert!(ea.starts_with(&escape(&a[..cut])));
            prop_assert!(DataResource::parse(&key(&a)).is_some_and(|r| r.is_under(&a[..cut])));
        }

        #[test]
        fn escape_is_injective_and_unescape_inverts_it(a in proptest::collection::vec(any::<u8>(), 0..12), b in proptest::collection::vec(any::<u8>(), 0..12)) {
            prop_assert_eq!(escape(&a) == escape(&b), a == b);
            prop_assert_eq!(unescape(&escape(&a)), Some(a.clone()));
            prop_assert!(is_escaped(&escape(&a)));
        }

        #[test]
        fn only_what_escape_writes_parses(s in "[ -~]{0,8}") {
            let canonical = unescape(&s).is_some_and(|bytes| escape(&bytes) == s);
            prop_assert_eq!(is_escaped(&s), canonical);
        }
    }
}
