//! Request headers as the gateway passes them: one string, a `name: value` line per header
//! (each ending in `\n`), names in lowercase, in request order. Lookups scan it in place.

/// Every `(name, value)` pair, in request order.
///
/// ```
/// let headers = "host: gw.example\nx-a: 1\n";
/// let pairs: Vec<_> = gatehouse_sdk::headers::pairs(headers).collect();
/// assert_eq!(pairs, vec![("host", "gw.example"), ("x-a", "1")]);
/// ```
pub fn pairs(headers: &str) -> impl Iterator<Item = (&str, &str)> {
    headers.lines().filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        Some((name.trim(), value.trim()))
    })
}

/// The first value of header `name` (compared case-insensitively), if present.
///
/// ```
/// let headers = "x-auth-token: t0k\n";
/// assert_eq!(gatehouse_sdk::headers::get(headers, "X-Auth-Token"), Some("t0k"));
/// assert_eq!(gatehouse_sdk::headers::get(headers, "authorization"), None);
/// ```
pub fn get<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.split('\n').find_map(|line| value_of(line, name))
}

/// Every value of header `name` (compared case-insensitively), in request order.
pub fn get_all<'a>(headers: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .split('\n')
        .filter_map(move |line| value_of(line, name))
}

/// The value of `line` when it is header `name`'s. Only the name's length is compared before
/// anything is trimmed: policies look up two or three headers among a dozen, per call.
fn value_of<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (head, rest) = (line.get(..name.len())?, line.get(name.len()..)?);
    let value = rest.strip_prefix(':')?;
    head.eq_ignore_ascii_case(name)
        .then(|| value.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r'))
}

/// The block of `pairs` (names lowercased), as the gateway builds it: for requests made in
/// tests of a policy.
///
/// ```
/// let block = gatehouse_sdk::headers::block([("Authorization", "Bearer t")]);
/// assert_eq!(block, "authorization: Bearer t\n");
/// ```
pub fn block<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        out.push_str(&name.to_ascii_lowercase());
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_the_case_of_the_name() {
        let h = "Content-Type: application/sdp\n";
        assert_eq!(get(h, "content-type"), Some("application/sdp"));
        assert_eq!(get(h, "CONTENT-TYPE"), Some("application/sdp"));
    }

    #[test]
    fn lookup_returns_the_first_of_repeated_headers_and_get_all_returns_all() {
        let h = block([("x-a", "1"), ("x-b", "2"), ("x-a", "3")]);
        assert_eq!(get(&h, "x-a"), Some("1"));
        assert_eq!(get_all(&h, "x-a").collect::<Vec<_>>(), vec!["1", "3"]);
    }

    #[test]
    fn values_keep_their_colons_and_lines_without_one_are_skipped() {
        let h = "origin: https://app.example:8443\ngarbage\nx-b:2";
        assert_eq!(get(h, "origin"), Some("https://app.example:8443"));
        assert_eq!(get(h, "x-b"), Some("2"));
        assert_eq!(pairs(h).count(), 2);
    }
}
