//! The AWS query protocol's request side: decoding an `application/x-www-form-urlencoded`
//! body (`Action=...&Version=...&Name.member.1=...`) into [`QueryParams`], and reading the
//! lists, structures and maps botocore flattens into dotted names.
//!
//! Names are unique (a repeated name is an error, since AWS's serializers never repeat
//! one and a repeat would make "which value?" ambiguous). Lookups are binary searches
//! over the names sorted once at parse time, so prefix scans for lists stay cheap.

/// Most parameters one request may carry; a bound on work per request.
pub const MAX_PARAMS: usize = 10_000;

/// Why a form body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A `%` is not followed by two hex digits. Percent-encode a literal `%` as `%25`.
    #[error("Malformed query string: '%' at byte {position} is not followed by two hex digits; encode a literal '%' as %25.")]
    InvalidEscape {
        /// Byte offset of the `%` in the body.
        position: usize,
    },
    /// A name or value does not decode to UTF-8 text.
    #[error(
        "Malformed query string: the parameter at byte {position} does not decode to UTF-8 text."
    )]
    InvalidUtf8 {
        /// Byte offset in the body of the `name=value` pair.
        position: usize,
    },
    /// A `=value` pair has no name.
    #[error("Malformed query string: the parameter at byte {position} has an empty name.")]
    EmptyName {
        /// Byte offset in the body of the pair.
        position: usize,
    },
    /// A parameter name appears more than once.
    #[error(
        "Malformed query string: parameter '{name}' appears more than once; send each name once."
    )]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// The body has more parameters than [`MAX_PARAMS`].
    #[error("Malformed query string: more than {limit} parameters; split the request.")]
    TooManyParams {
        /// The limit, [`MAX_PARAMS`].
        limit: usize,
    },
}

impl QueryError {
    /// The AWS error code (`__type` / `Code`) this failure is reported as.
    pub fn aws_code(&self) -> &'static str {
        "MalformedQueryString"
    }
}

/// Decoded form parameters, in the order received, with unique names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// `(name, value)` in the order received.
    entries: Vec<(String, String)>,
    /// Indexes into `entries`, sorted by name.
    sorted: Vec<u32>,
}

/// Decodes an `application/x-www-form-urlencoded` body: `&`-separated `name=value` pairs,
/// `+` for space, `%XX` escapes, UTF-8 text. A pair without `=` has an empty value; empty
/// pairs (`a=1&&b=2`) are skipped.
pub fn parse_form(body: &[u8]) -> Result<QueryParams, QueryError> {
    let mut entries = Vec::new();
    let mut position = 0;
    for pair in body.split(|&b| b == b'&') {
        let start = position;
        position += pair.len() + 1;
        if pair.is_empty() {
            continue;
        }
        if entries.len() == MAX_PARAMS {
            return Err(QueryError::TooManyParams { limit: MAX_PARAMS });
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        if name.is_empty() {
            return Err(QueryError::EmptyName { position: start });
        }
        let value_start = start + name.len() + 1;
        let name = decode(name, start)?;
        let value = decode(value, value_start)?;
        entries.push((name, value));
    }
    let mut sorted: Vec<u32> = (0..entries.len() as u32).collect();
    sorted.sort_unstable_by(|&a, &b| entries[a as usize].0.cmp(&entries[b as usize].0));
    for w in sorted.windows(2) {
        if entries[w[0] as usize].0 == entries[w[1] as usize].0 {
            return Err(QueryError::DuplicateName {
                name: entries[w[0] as usize].0.clone(),
            });
        }
    }
    Ok(QueryParams { entries, sorted })
}

/// Decodes one name or value. `offset` is where `raw` starts in the body, for messages.
fn decode(raw: &[u8], offset: usize) -> Result<String, QueryError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |j: usize| raw.get(j).and_then(|&c| (c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(QueryError::InvalidEscape {
                        position: offset + i,
                    });
                };
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError::InvalidUtf8 { position: offset })
}

impl QueryParams {
    /// The value of `name`, if sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.view().get(name)
    }

    /// The `Action` parameter: the operation called.
    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    /// The `Version` parameter: the API version the client speaks, e.g. `2010-05-08`.
    pub fn version(&self) -> Option<&str> {
        self.get("Version")
    }

    /// How many parameters were sent.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no parameters were sent.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All `(name, value)` pairs in the order received.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The whole parameter set as a [`QueryView`], for code that also reads nested members.
    pub fn view(&self) -> QueryView<'_> {
        QueryView {
            params: self,
            prefix: String::new(),
        }
    }

    /// The scalar list `prefix.member.N`, in N order. See [`QueryView::list`].
    pub fn list(&self, prefix: &str) -> Vec<&str> {
        self.view().list(prefix)
    }

    /// The structure list `prefix.member.N.Field`, one view per N. See [`QueryView::members`].
    pub fn members(&self, prefix: &str) -> Vec<QueryView<'_>> {
        self.view().members(prefix)
    }

    /// The map `prefix.entry.N.key` / `prefix.entry.N.value`. See [`QueryView::map`].
    pub fn map(&self, prefix: &str) -> Vec<(&str, &str)> {
        self.view().map(prefix)
    }

    /// Sorted `(name, value)` pairs whose name starts with `prefix`: one contiguous run
    /// of the sorted names.
    fn with_prefix<'s>(&'s self, prefix: &str) -> impl Iterator<Item = (&'s str, &'s str)> + 's {
        let name = |i: &u32| self.entries[*i as usize].0.as_str();
        let start = self.sorted.partition_point(|i| name(i) < prefix);
        let len = self.sorted[start..].partition_point(|i| name(i).starts_with(prefix));
        self.sorted[start..start + len].iter().map(move |&i| {
            let (k, v) = &self.entries[i as usize];
            (k.as_str(), v.as_str())
        })
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        self.sorted
            .binary_search_by(|&i| self.entries[i as usize].0.as_str().cmp(name))
            .ok()
            .map(|pos| self.entries[self.sorted[pos] as usize].1.as_str())
    }
}

/// The parameters under one dotted prefix, e.g. the structure `Tags.member.2.` whose
/// fields are `Key` and `Value`. Names passed to its methods are relative to the prefix.
#[derive(Debug, Clone)]
pub struct QueryView<'a> {
    params: &'a QueryParams,
    /// Empty, or ends with `.`.
    prefix: String,
}

impl<'a> QueryView<'a> {
    /// The prefix this view reads under (empty for the root, else ending in `.`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn full(&self, name: &str) -> String {
        let mut full = String::with_capacity(self.prefix.len() + name.len());
        full.push_str(&self.prefix);
        full.push_str(name);
        full
    }

    /// The view of the structure `name`, whose fields are `name.Field` (e.g.
    /// `RedirectConfig` → `RedirectConfig.StatusCode`).
    pub fn structure(&self, name: &str) -> QueryView<'a> {
        QueryView {
            params: self.params,
            prefix: self.full(&format!("{name}.")),
        }
    }

    /// The value of `name` under this view's prefix.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            self.params.lookup(name)
        } else {
            self.params.lookup(&self.full(name))
        }
    }

    /// Whether any parameter lies under `name.` (or is `name` itself): tells an absent
    /// structure from an empty one.
    pub fn has(&self, name: &str) -> bool {
        let full = self.full(name);
        self.params.lookup(&full).is_some()
            || self
                .params
                .with_prefix(&format!("{full}."))
                .next()
                .is_some()
    }

    /// A scalar list as botocore sends it: `name.member.1=a&name.member.2=b`, values
    /// returned in numeric N order. An empty list is sent as `name=` and reads as empty.
    /// Names under the prefix whose N is not a positive integer, or that go deeper
    /// (`name.member.1.Field`), are not list items and are left out.
    pub fn list(&self, name: &str) -> Vec<&'a str> {
        let prefix = self.full(&format!("{name}.member."));
        let mut items: Vec<(u64, &'a str)> = self
            .params
            .with_prefix(&prefix)
            .filter_map(|(k, v)| index(&k[prefix.len()..]).map(|n| (n, v)))
            .collect();
        items.sort_unstable_by_key(|&(n, _)| n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// A list of structures: `name.member.N.Field=...`. Returns one view per N, in numeric
    /// N order, each reading the fields of that member (`view.get("Field")`).
    pub fn members(&self, name: &str) -> Vec<QueryView<'a>> {
        let prefix = self.full(&format!("{name}.member."));
        let mut indexes: Vec<u64> = self
            .params
            .with_prefix(&prefix)
            .filter_map(|(k, _)| {
                let rest = &k[prefix.len()..];
                let (n, field) = rest.split_once('.')?;
                if field.is_empty() {
                    return None;
                }
                index(n)
            })
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
            .into_iter()
            .map(|n| QueryView {
                params: self.params,
                prefix: format!("{prefix}{n}."),
            })
            .collect()
    }

    /// A map as botocore sends it: `name.entry.N.key=k&name.entry.N.value=v`, as `(key,
    /// value)` in numeric N order. An entry without a key is left out; one without a value
    /// has the empty value.
    pub fn map(&self, name: &str) -> Vec<(&'a str, &'a str)> {
        self.members_named(name, "entry")
            .into_iter()
            .filter_map(|entry| Some((entry.get("key")?, entry.get("value").unwrap_or(""))))
            .collect()
    }

    /// A flattened scalar list, as the EC2 protocol sends every list (`name.1=a&name.2=b`,
    /// no `.member`), values in numeric N order; deeper names (`name.1.Field`) are left out.
    pub fn flat_list(&self, name: &str) -> Vec<&'a str> {
        let prefix = self.full(&format!("{name}."));
        let mut items: Vec<(u64, &'a str)> = self
            .params
            .with_prefix(&prefix)
            .filter_map(|(k, v)| index(&k[prefix.len()..]).map(|n| (n, v)))
            .collect();
        items.sort_unstable_by_key(|&(n, _)| n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// A flattened list of structures, as the EC2 protocol sends them
    /// (`name.N.Field=...`): one view per N, in numeric N order.
    pub fn flat_members(&self, name: &str) -> Vec<QueryView<'a>> {
        let prefix = self.full(&format!("{name}."));
        let mut indexes: Vec<u64> = self
            .params
            .with_prefix(&prefix)
            .filter_map(|(k, _)| index(k[prefix.len()..].split_once('.')?.0))
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
            .into_iter()
            .map(|n| QueryView {
                params: self.params,
                prefix: format!("{prefix}{n}."),
            })
            .collect()
    }

    fn members_named(&self, name: &str, member: &str) -> Vec<QueryView<'a>> {
        let prefix = self.full(&format!("{name}.{member}."));
        let mut indexes: Vec<u64> = self
            .params
            .with_prefix(&prefix)
            .filter_map(|(k, _)| index(k[prefix.len()..].split_once('.')?.0))
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
            .into_iter()
            .map(|n| QueryView {
                params: self.params,
                prefix: format!("{prefix}{n}."),
            })
            .collect()
    }
}

/// A list position: a positive integer without sign or leading zeros.
fn index(text: &str) -> Option<u64> {
    let valid = !text.is_empty()
        && text.len() <= 9
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    valid.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_form() {
        let q = parse_form(b"Action=CreateUser&Version=2010-05-08&UserName=J+Doe%21&Path=%2Fa%2Fb%2f&flag&empty=&&").unwrap();
        assert_eq!(q.action(), Some("CreateUser"));
        assert_eq!(q.version(), Some("2010-05-08"));
        assert_eq!(q.get("UserName"), Some("J Doe!"));
        assert_eq!(q.get("Path"), Some("/a/b/"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("empty"), Some(""));
        assert_eq!(q.get("missing"), None);
        assert_eq!(q.len(), 6);
        let names: Vec<&str> = q.iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            ["Action", "Version", "UserName", "Path", "flag", "empty"]
        );
        assert!(parse_form(b"").unwrap().is_empty());
        assert_eq!(
            parse_form(b"a=%E2%9C%93%2B").unwrap().get("a"),
            Some("\u{2713}+")
        );
        assert_eq!(parse_form(b"a=b=c").unwrap().get("a"), Some("b=c"));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            parse_form(b"a=1&b=%zz"),
            Err(QueryError::InvalidEscape { position: 6 })
        );
        assert_eq!(
            parse_form(b"a=%4"),
            Err(QueryError::InvalidEscape { position: 2 })
        );
        assert_eq!(
            parse_form(b"a=%"),
            Err(QueryError::InvalidEscape { position: 2 })
        );
        assert_eq!(
            parse_form(b"a=1&b=%FF"),
            Err(QueryError::InvalidUtf8 { position: 6 })
        );
        assert_eq!(
            parse_form(b"a=\xff"),
            Err(QueryError::InvalidUtf8 { position: 2 })
        );
        assert_eq!(
            parse_form(b"a=1&=2"),
            Err(QueryError::EmptyName { position: 4 })
        );
        let err = parse_form(b"a=1&b=2&a=3").unwrap_err();
        assert_eq!(err, QueryError::DuplicateName { name: "a".into() });
        assert!(err.to_string().contains("'a' appears more than once"));
        assert_eq!(err.aws_code(), "MalformedQueryString");
        // Duplicates are compared after decoding.
        assert!(parse_form(b"a%20b=1&a+b=2").is_err());
    }

    #[test]
    fn limits_parameter_count() {
        let body: Vec<String> = (0..MAX_PARAMS).map(|i| format!("p{i}=v")).collect();
        let body = body.join("&");
        assert_eq!(parse_form(body.as_bytes()).unwrap().len(), MAX_PARAMS);
        let over = format!("{body}&extra=1");
        assert_eq!(
            parse_form(over.as_bytes()),
            Err(QueryError::TooManyParams { limit: MAX_PARAMS })
        );
    }

    #[test]
    fn lists_structures_and_maps() {
        let q = parse_form(
            b"Action=X&Names.member.2=b&Names.member.10=j&Names.member.1=a&Names.member.x=no\
              &Names.member.01=no&Names.member.1.Deep=no\
              &Tags.member.2.Key=k2&Tags.member.1.Key=k1&Tags.member.1.Value=v1\
              &Tags.member.2.Value=v2&Tags.member.2.Sub.member.1=s\
              &Attrs.entry.1.key=color&Attrs.entry.1.value=red&Attrs.entry.2.key=size\
              &Attrs.entry.3.value=orphan&Empty=",
        )
        .unwrap();
        assert_eq!(q.list("Names"), ["a", "b", "j"]);
        assert!(q.list("Empty").is_empty());
        assert!(q.list("Absent").is_empty());
        let tags = q.members("Tags");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].prefix(), "Tags.member.1.");
        assert_eq!(
            (tags[0].get("Key"), tags[0].get("Value")),
            (Some("k1"), Some("v1"))
        );
        assert_eq!(
            (tags[1].get("Key"), tags[1].get("Value")),
            (Some("k2"), Some("v2"))
        );
        assert_eq!(tags[1].list("Sub"), ["s"]);
        assert_eq!(q.view().structure("Tags.member.2").get("Key"), Some("k2"));
        assert!(tags[0].list("Sub").is_empty());
        assert!(tags[1].has("Sub"));
        assert!(!tags[0].has("Sub"));
        assert!(q.view().has("Empty"));
        assert_eq!(q.map("Attrs"), [("color", "red"), ("size", "")]);
        // The structure list of Names only has member 1 (with field Deep).
        assert_eq!(q.members("Names").len(), 1);
    }

    fn encode(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b' ' => out.push('+'),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    out.push(b as char)
                }
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn round_trips(params in proptest::collection::btree_map("\\PC{1,12}", "\\PC{0,12}", 0..20)) {
            // Shuffle-free but non-sorted order: reversed map order.
            let ordered: Vec<(&String, &String)> = params.iter().rev().collect();
            let body: Vec<String> = ordered.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            let q = parse_form(body.join("&").as_bytes()).unwrap();
            prop_assert_eq!(q.len(), params.len());
            for (k, v) in &params {
                prop_assert_eq!(q.get(k), Some(v.as_str()));
            }
            let got: Vec<(&str, &str)> = q.iter().collect();
            let want: Vec<(&str, &str)> = ordered.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn lists_round_trip(items in proptest::collection::vec("\\PC{0,12}", 0..30)) {
            let body: Vec<String> = items
                .iter()
                .enumerate()
                .rev()
                .map(|(i, v)| format!("L.member.{}={}", i + 1, encode(v)))
                .collect();
            let q = parse_form(body.join("&").as_bytes()).unwrap();
            prop_assert_eq!(q.list("L"), items.iter().map(String::as_str).collect::<Vec<_>>());
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_form(&body);
        }
    }
}
