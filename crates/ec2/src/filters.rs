//! `Filter.N.Name` / `Filter.N.Value.M` as EC2 applies them: values of one filter are
//! ORed, filters are ANDed, values may use `*` and `?` wildcards, `tag:<key>`,
//! `tag-key` and `tag-value` work on every taggable resource, and a name the operation
//! does not know is refused (as AWS refuses it) rather than ignored.

use wire::query::QueryView;

use crate::error::Ec2Error;

/// What a filter reads of a resource.
pub trait Matcher {
    /// The resource's values for filter `name` (empty: none, so the filter fails).
    fn values(&self, name: &str) -> Vec<String>;
    /// Its tags.
    fn tags(&self) -> Vec<(&str, &str)>;
}

/// The filters of one request.
#[derive(Debug, Default)]
pub struct Filters {
    filters: Vec<(String, Vec<String>)>,
}

impl Filters {
    /// Reads the flattened list `name` (`Filter`), accepting the names in `known`, tag
    /// filters, and nothing else.
    pub fn parse(view: &QueryView<'_>, name: &str, known: &[&str]) -> Result<Self, Ec2Error> {
        let mut filters = Vec::new();
        for f in view.flat_members(name) {
            let Some(fname) = f.get("Name") else {
                return Err(Ec2Error::MissingParameter(format!("{}Name", f.prefix())));
            };
            let tag = fname.starts_with("tag:") || fname == "tag-key" || fname == "tag-value";
            if !tag && !known.contains(&fname) {
                return Err(Ec2Error::InvalidParameterValue(format!(
                    "The filter '{fname}' is invalid"
                )));
            }
            let values = f
                .flat_list("Value")
                .into_iter()
                .map(str::to_owned)
                .collect();
            filters.push((fname.to_owned(), values));
        }
        Ok(Self { filters })
    }

    /// Whether `item` passes every filter.
    pub fn matches(&self, item: &dyn Matcher) -> bool {
        self.filters.iter().all(|(name, wanted)| {
            let have: Vec<String> = if let Some(key) = name.strip_prefix("tag:") {
                item.tags()
                    .into_iter()
                    .filter(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_owned())
                    .collect()
            } else if name == "tag-key" {
                item.tags().into_iter().map(|(k, _)| k.to_owned()).collect()
            } else if name == "tag-value" {
                item.tags().into_iter().map(|(_, v)| v.to_owned()).collect()
            } else {
                item.values(name)
            };
            wanted.iter().any(|w| have.iter().any(|h| glob(w, h)))
        })
    }
}

/// `*` (any run) and `?` (one character) wildcards; `\` escapes the next character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point for the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let (lit, step) = match p.get(pi) {
            Some('\\') => (p.get(pi + 1).copied(), 2),
            Some(&c) => (Some(c), 1),
            None => (None, 0),
        };
        if p.get(pi) == Some(&'*') {
            star = Some((pi, ti));
            pi += 1;
        } else if p.get(pi) == Some(&'?') || (lit.is_some() && lit == Some(t[ti]) && step > 0) {
            pi += step.max(1);
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn wildcards_match_as_ec2_filters_do() {
        assert!(glob("web", "web"));
        assert!(!glob("web", "webs"));
        assert!(glob("web*", "webserver"));
        assert!(glob("*server", "webserver"));
        assert!(glob("w?b", "wab"));
        assert!(glob("*", ""));
        assert!(!glob("a*c", "abd"));
        assert!(glob("a\\*", "a*"));
        assert!(!glob("a\\*", "ab"));
    }
}
