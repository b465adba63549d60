//! Building ATC expressions (Kong's expressions router) safely.
//!
//! Every piece is a [`Term`]: a single predicate or a parenthesised compound, so terms can be
//! combined with `&&` or `||` without relying on operator precedence. String literals are
//! escaped the way atc-router's grammar reads them (`\"`, `\\`, `\n`, `\r`, `\t`; every other
//! character stands for itself). A NUL character cannot be sent at all: Kong hands the
//! expression to atc-router as a C string, which would end at the NUL; such values are
//! refused with a message instead.
//!
//! Fields (Kong 3.9 `kong/router/fields.lua`):
//! - `net.dst.port`: the listener port. Kong takes it from the `Host` header when that header
//!   carries a port (`atc.lua` `split_host_port` → `params.port`), else from the socket (or
//!   `KONG_PORT_MAPS`).
//! - `http.host`: the `Host` header without its port, as sent (compared through `lower()`,
//!   since host names are case-insensitive and Gateway API hostnames are lower-case).
//! - `http.path`: the request path without the query string.
//! - `http.headers.<name>`: name lower-cased with `-` → `_` (nginx's header table answers both
//!   spellings). One value per header line: Kong adds every value of a repeated header.
//! - `http.queries.<name>`: exact name; one value per repetition (`?a=1&a=2`), `""` for `?a`.
//!
//! Multi-valued fields: a plain predicate holds only when **all** values satisfy it
//! (atc-router `interpreter.rs`); `any(field)` holds when one does. Headers use the plain form:
//! RFC 7230 §3.2.2 makes repeated lines equivalent to one comma-joined value, which equals
//! none of the parts, and the all-values rule is the closest atc-router gets to that (a request
//! repeating a header with different values matches no exact header match). Query parameters
//! use `any()`: Gateway API recommends matching the first value, and `any()` accepts a request
//! whose first value matches (it also accepts a later one).
//!
//! Regular expressions are Rust `regex` syntax (atc-router compiles them with the `regex`
//! crate) and are anchored here to match the whole value, as Envoy-based implementations do.

use std::fmt::Write;

/// Why a value cannot be written as an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Result<T> = std::result::Result<T, Unsupported>;

/// A self-contained piece of expression: safe to combine with `&&` or `||`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(String);

impl Term {
    fn predicate(lhs: &str, op: &str, rhs: &str, what: &str) -> Result<Term> {
        let mut s = String::with_capacity(lhs.len() + op.len() + rhs.len() + 6);
        s.push_str(lhs);
        s.push(' ');
        s.push_str(op);
        s.push(' ');
        push_literal(&mut s, rhs, what)?;
        Ok(Term(s))
    }
}

/// Appends `value` as an ATC string literal.
pub fn push_literal(out: &mut String, value: &str, what: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Unsupported(format!("{what} contains a NUL character")));
    }
    out.reserve(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}

fn join(terms: Vec<Term>, op: &str) -> Option<Term> {
    let mut terms = terms.into_iter();
    let first = terms.next()?;
    let Some(second) = terms.next() else {
        return Some(first);
    };
    let mut s = String::with_capacity(first.0.len() * 3);
    s.push('(');
    s.push_str(&first.0);
    for term in std::iter::once(second).chain(terms) {
        s.push(' ');
        s.push_str(op);
        s.push(' ');
        s.push_str(&term.0);
    }
    s.push(')');
    Some(Term(s))
}

/// `(a && b && …)`; the term itself when alone; `None` when there is none.
pub fn all(terms: Vec<Term>) -> Option<Term> {
    join(terms, "&&")
}

/// `(a || b || …)`; the term itself when alone; `None` when there is none.
pub fn any(terms: Vec<Term>) -> Option<Term> {
    join(terms, "||")
}

/// The terms joined by `&&` without outer parentheses: a whole route expression.
pub fn expression<'a>(terms: impl IntoIterator<Item = &'a Term> + Clone) -> String {
    let mut s = String::with_capacity(terms.clone().into_iter().map(|t| t.0.len() + 4).sum());
    for (i, term) in terms.into_iter().enumerate() {
        if i > 0 {
            s.push_str(" && ");
        }
        s.push_str(&term.0);
    }
    s
}

/// `net.dst.port == N`.
pub fn port(port: u16) -> Term {
    let mut s = String::with_capacity(20);
    let _ = write!(s, "net.dst.port == {port}");
    Term(s)
}

/// A Gateway API hostname: exact (`lower(http.host) == "a.example.com"`) or wildcard
/// (`*.example.com` → `lower(http.host) =^ ".example.com"`: any depth, never the apex).
pub fn host(hostname: &str) -> Result<Term> {
    let lower = hostname.to_ascii_lowercase();
    match lower.strip_prefix('*') {
        Some(suffix) if suffix.starts_with('.') => Term::predicate("lower(http.host)", "=^", suffix, "hostname"),
        _ => Term::predicate("lower(http.host)", "==", &lower, "hostname"),
    }
}

/// `!(term)`: holds when `term` does not (atc-router's `not_op` before a parenthesised
/// expression). A predicate on a field the request lacks is false, so its negation holds.
pub fn not(term: Term) -> Term {
    let mut s = String::with_capacity(term.0.len() + 3);
    s.push_str("!(");
    s.push_str(&term.0);
    s.push(')');
    Term(s)
}

/// A hostname (`None`: any) minus the hostnames of more specific listeners (listener
/// isolation): `(lower(http.host) =^ ".example.com" && !(lower(http.host) == "a.example.com"))`.
/// `None` for any hostname with nothing excluded.
pub fn host_except(hostname: Option<&str>, except: &[&str]) -> Result<Option<Term>> {
    let mut terms = Vec::with_capacity(except.len() + 1);
    if let Some(hostname) = hostname {
        terms.push(host(hostname)?);
    }
    for claimed in except {
        terms.push(not(host(claimed)?));
    }
    Ok(all(terms))
}

/// `http.path == "/p"`.
pub fn path_exact(path: &str) -> Result<Term> {
    Term::predicate("http.path", "==", path, "path")
}

/// The prefix a `PathPrefix` value matches, element-wise: a trailing `/` is ignored, so `/foo`
/// and `/foo/` both become `/foo`. `None` for `/`, which matches every path.
pub fn normalized_prefix(prefix: &str) -> Option<&str> {
    let trimmed = prefix.trim_end_matches('/');
    (!trimmed.is_empty()).then_some(trimmed)
}

/// `PathPrefix` element by element: `/foo` matches `/foo` and `/foo/…`, never `/foobar`:
/// `(http.path == "/foo" || http.path ^= "/foo/")`. `None` for `/` (every path).
pub fn path_prefix(prefix: &str) -> Result<Option<Term>> {
    let Some(prefix) = normalized_prefix(prefix) else {
        return Ok(None);
    };
    let exact = Term::predicate("http.path", "==", prefix, "path")?;
    let mut below = String::with_capacity(prefix.len() + 1);
    below.push_str(prefix);
    below.push('/');
    let below = Term::predicate("http.path", "^=", &below, "path")?;
    Ok(any(vec![exact, below]))
}

/// Name of the capture holding what follows the matched prefix (see [`path_prefix_capturing`]).
pub const REST_CAPTURE: &str = "kongress_rest";

/// `PathPrefix` as a regex whose named capture [`REST_CAPTURE`] holds the rest of the path
/// (empty or starting with `/`). Kong hands the captures of the matched route to plugins
/// (`uri_captures` in request-transformer templates), which is how a prefix is replaced.
/// The capture always participates, so a capture of another regex of the route never
/// shows through.
pub fn path_prefix_capturing(prefix: &str) -> Result<Term> {
    let pattern = match normalized_prefix(prefix) {
        Some(prefix) => format!("^{}(?P<{REST_CAPTURE}>(?:/.*)?)$", escape_regex(prefix)),
        None => format!("^(?P<{REST_CAPTURE}>/.*)$"),
    };
    Term::predicate("http.path", "~", &pattern, "path")
}

/// `http.path ~ "^(?:re)$"`.
pub fn path_regex(pattern: &str) -> Result<Term> {
    Term::predicate("http.path", "~", &anchored(pattern), "path regular expression")
}

/// `http.path ^= "p"` (plain string prefix, used for gRPC services).
pub fn path_starts_with(prefix: &str) -> Result<Term> {
    Term::predicate("http.path", "^=", prefix, "path")
}

/// `http.method == "GET"`.
pub fn method(method: &str) -> Result<Term> {
    Term::predicate("http.method", "==", method, "method")
}

/// How a header or query value is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueMatch<'a> {
    Exact(&'a str),
    Regex(&'a str),
}

impl ValueMatch<'_> {
    fn op_and_value(self) -> (&'static str, String) {
        match self {
            ValueMatch::Exact(v) => ("==", v.to_string()),
            ValueMatch::Regex(re) => ("~", anchored(re)),
        }
    }
}

/// The field of a header: lower-cased, `-` → `_`. atc-router identifiers allow only ASCII
/// letters, digits and `_` there (a `.` would make Kong's schema miss the `http.headers.*`
/// entry), so other header names cannot be matched.
pub fn header_field(name: &str) -> Result<String> {
    let mut field = String::with_capacity("http.headers.".len() + name.len());
    field.push_str("http.headers.");
    for c in name.chars() {
        match c {
            'a'..='z' | '0'..='9' | '_' => field.push(c),
            'A'..='Z' => field.push(c.to_ascii_lowercase()),
            '-' => field.push('_'),
            _ => {
                return Err(Unsupported(format!(
                    "header name {name:?}: Kong's router matches only header names of letters, digits, '-' and '_'"
                )));
            }
        }
    }
    if name.is_empty() {
        return Err(Unsupported("empty header name".to_string()));
    }
    Ok(field)
}

/// `http.headers.x_foo == "v"` or `http.headers.x_foo ~ "^(?:re)$"` (values case-sensitive).
pub fn header(name: &str, value: ValueMatch<'_>) -> Result<Term> {
    let field = header_field(name)?;
    let (op, value) = value.op_and_value();
    Term::predicate(&field, op, &value, "header value")
}

/// `any(http.queries.name) == "v"`: query names are exact and must be atc-router identifier
/// characters (ASCII letters, digits, `_`).
pub fn query(name: &str, value: ValueMatch<'_>) -> Result<Term> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Unsupported(format!(
            "query parameter name {name:?}: Kong's router matches only names of letters, digits and '_'"
        )));
    }
    let mut field = String::with_capacity("any(http.queries.)".len() + name.len());
    field.push_str("any(http.queries.");
    field.push_str(name);
    field.push(')');
    let (op, value) = value.op_and_value();
    Term::predicate(&field, op, &value, "query parameter value")
}

/// `^(?:re)$`: the whole value must match.
pub fn anchored(pattern: &str) -> String {
    let mut s = String::with_capacity(pattern.len() + 6);
    s.push_str("^(?:");
    s.push_str(pattern);
    s.push_str(")$");
    s
}

/// Escapes the characters the `regex` crate gives a meaning, so `text` matches itself.
pub fn escape_regex(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' | '#' | '&' | '-' | '~'
        ) {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Term {
        Term(s.to_string())
    }

    #[test]
    fn literals_escape_quotes_backslashes_and_line_breaks() {
        let cases = [
            ("plain", r#""plain""#),
            (r#"say "hi""#, r#""say \"hi\"""#),
            (r"C:\dir\", r#""C:\\dir\\""#),
            ("a\nb\rc\td", r#""a\nb\rc\td""#),
            ("r#\"raw\"#", r##""r#\"raw\"#""##),
            ("ünï", "\"ünï\""),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            push_literal(&mut out, value, "v").expect("no NUL");
            assert_eq!(out, expected, "{value:?}");
        }
    }

    #[test]
    fn nul_characters_are_refused_because_kong_passes_a_c_string() {
        let mut out = String::new();
        assert!(push_literal(&mut out, "a\0b", "header value").is_err());
    }

    #[test]
    fn compounds_are_parenthesised_single_terms_are_not() {
        assert_eq!(all(vec![]), None);
        assert_eq!(all(vec![t("a == 1")]), Some(t("a == 1")));
        assert_eq!(all(vec![t("a == 1"), t("b == 2")]), Some(t("(a == 1 && b == 2)")));
        assert_eq!(
            any(vec![t("a == 1"), t("(b == 2 && c == 3)")]),
            Some(t("(a == 1 || (b == 2 && c == 3))"))
        );
        assert_eq!(
            expression(&[t("a == 1"), t("(b == 2 || c == 3)")]),
            "a == 1 && (b == 2 || c == 3)"
        );
    }

    #[test]
    fn wildcard_hosts_are_suffix_matches_of_the_dot_and_never_the_apex() {
        assert_eq!(
            host("*.Example.com").map(|t| t.0),
            Ok(r#"lower(http.host) =^ ".example.com""#.into())
        );
        assert_eq!(
            host("a.example.com").map(|t| t.0),
            Ok(r#"lower(http.host) == "a.example.com""#.into())
        );
    }

    #[test]
    fn hosts_claimed_by_more_specific_listeners_are_negated() {
        assert_eq!(
            host_except(Some("*.example.com"), &["a.example.com", "*.b.example.com"]).map(|t| t.map(|t| t.0)),
            Ok(Some(
                r#"(lower(http.host) =^ ".example.com" && !(lower(http.host) == "a.example.com") && !(lower(http.host) =^ ".b.example.com"))"#
                    .into()
            ))
        );
        assert_eq!(
            host_except(None, &["a.example.com"]).map(|t| t.map(|t| t.0)),
            Ok(Some(r#"!(lower(http.host) == "a.example.com")"#.into()))
        );
        assert_eq!(host_except(None, &[]), Ok(None));
    }

    #[test]
    fn prefixes_match_whole_path_elements_and_ignore_a_trailing_slash() {
        let expected = r#"(http.path == "/foo" || http.path ^= "/foo/")"#;
        assert_eq!(path_prefix("/foo").map(|t| t.map(|t| t.0)), Ok(Some(expected.into())));
        assert_eq!(path_prefix("/foo/").map(|t| t.map(|t| t.0)), Ok(Some(expected.into())));
        assert_eq!(path_prefix("/"), Ok(None));
    }

    #[test]
    fn header_fields_are_lower_case_with_underscores() {
        let cases = [
            ("X-Request-Id", Ok("http.headers.x_request_id".to_string())),
            ("version", Ok("http.headers.version".to_string())),
            ("a_b", Ok("http.headers.a_b".to_string())),
        ];
        for (name, expected) in cases {
            assert_eq!(
                header_field(name).map_err(|_| ()),
                expected.map_err(|_: ()| ()),
                "{name}"
            );
        }
        for odd in ["x.y", "x!y", "x~y", "x'y", "x|y", "", "é"] {
            assert!(header_field(odd).is_err(), "{odd:?} must be refused");
        }
    }

    #[test]
    fn header_and_query_values_are_exact_or_anchored_regexes() {
        assert_eq!(
            header("Version", ValueMatch::Exact("v\"2")).map(|t| t.0),
            Ok(r#"http.headers.version == "v\"2""#.into())
        );
        assert_eq!(
            header("Version", ValueMatch::Regex(r"v\d+")).map(|t| t.0),
            Ok(r#"http.headers.version ~ "^(?:v\\d+)$""#.into())
        );
        assert_eq!(
            query("page", ValueMatch::Exact("2")).map(|t| t.0),
            Ok(r#"any(http.queries.page) == "2""#.into())
        );
        assert!(query("page-size", ValueMatch::Exact("2")).is_err());
    }

    #[test]
    fn escaped_regex_text_matches_only_itself() {
        assert_eq!(escape_regex("/a.b(c)-$"), r"/a\.b\(c\)\-\$");
    }
}
