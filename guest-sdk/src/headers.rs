//! Request headers as the gateway passes them: `(name, value)` pairs, names in lowercase.

/// The first value of header `name` (compared case-insensitively), if present.
///
/// ```
/// let headers = vec![("x-auth-token".to_string(), "t0k".to_string())];
/// assert_eq!(gatehouse_sdk::headers::get(&headers, "X-Auth-Token"), Some("t0k"));
/// assert_eq!(gatehouse_sdk::headers::get(&headers, "authorization"), None);
/// ```
pub fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Every value of header `name` (compared case-insensitively), in request order.
pub fn get_all<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn lookup_ignores_the_case_of_the_name() {
        let h = headers(&[("Content-Type", "application/sdp")]);
        assert_eq!(get(&h, "content-type"), Some("application/sdp"));
        assert_eq!(get(&h, "CONTENT-TYPE"), Some("application/sdp"));
    }

    #[test]
    fn lookup_returns_the_first_of_repeated_headers_and_get_all_returns_all() {
        let h = headers(&[("x-a", "1"), ("x-b", "2"), ("x-a", "3")]);
        assert_eq!(get(&h, "x-a"), Some("1"));
        assert_eq!(get_all(&h, "x-a").collect::<Vec<_>>(), vec!["1", "3"]);
    }
}
