//! PEP 440 ordering (Python packages): `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`,
//! with the spellings PEP 440 normalises (`alpha`, `c`, `pre`, `-N` posts, `_`/`-`
//! separators, a leading `v`). Trailing zeros of the release are ignored; `.devN` sorts
//! before its pre-release (or release); a local version after its public one.

use std::cmp::Ordering;

/// A parsed version's sort key.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    epoch: u64,
    release: Vec<u64>,
    /// (phase, n): dev-only releases (-1), pre-releases (0 a, 1 b, 2 rc), finals (3).
    pre: (i8, u64),
    /// None sorts first.
    post: Option<u64>,
    /// Finals (no dev) sort last: (0, n) for a dev release, (1, 0) otherwise.
    dev: (u8, u64),
    /// Local segments: numbers beat strings; none sorts first.
    local: Vec<(u8, u64, String)>,
}

/// Orders two PEP 440 versions, or `None` when either is not one.
pub fn pep440_compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse(a)?.cmp(&parse(b)?))
}

fn number(s: &str) -> Option<(u64, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

/// An optional separator, then an optional number (implicit 0).
fn implicit_number(s: &str) -> (u64, &str) {
    let s = s.strip_prefix(['.', '-', '_']).unwrap_or(s);
    number(s).unwrap_or((0, s))
}

fn parse(v: &str) -> Option<Key> {
    let lower = v.trim().to_ascii_lowercase();
    let (public, local) = match lower.split_once('+') {
        Some((p, l)) => (p.to_owned(), Some(l.to_owned())),
        None => (lower, None),
    };
    let mut s = public.strip_prefix('v').unwrap_or(&public);
    let mut epoch = 0;
    if let Some((e, rest)) = s.split_once('!') {
        epoch = e.parse().ok()?;
        s = rest;
    }
    let (first, mut rest) = number(s)?;
    let mut release = vec![first];
    while let Some(r) = rest.strip_prefix('.') {
        match number(r) {
            Some((n, r2)) => {
                release.push(n);
                rest = r2;
            }
            None => break,
        }
    }
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let mut pre = None;
    let body = rest.trim_start_matches(['.', '-', '_']);
    for (spelling, phase) in [
        ("alpha", 0),
        ("beta", 1),
        ("preview", 2),
        ("pre", 2),
        ("rc", 2),
        ("a", 0),
        ("b", 1),
        ("c", 2),
    ] {
        if let Some(r) = body.strip_prefix(spelling) {
            let (n, r) = implicit_number(r);
            pre = Some((phase, n));
            rest = r;
            break;
        }
    }
    let mut post = None;
    let body = rest.trim_start_matches(['.', '_']);
    if let Some(r) = ["post", "rev", "r"]
        .iter()
        .find_map(|p| body.strip_prefix(p))
    {
        let (n, r) = implicit_number(r);
        post = Some(n);
        rest = r;
    } else if let Some((n, r)) = rest.strip_prefix('-').and_then(number) {
        post = Some(n);
        rest = r;
    }
    let mut dev = None;
    let body = rest.trim_start_matches(['.', '-', '_']);
    if let Some(r) = body.strip_prefix("dev") {
        let (n, r) = implicit_number(r);
        dev = Some(n);
        rest = r;
    }
    if !rest.is_empty() {
        return None;
    }
    let pre_key = match (pre, post, dev) {
        (Some((p, n)), _, _) => (p, n),
        (None, None, Some(_)) => (-1, 0),
        _ => (3, 0),
    };
    let local = local
        .map(|l| {
            l.split(['.', '-', '_'])
                .map(|seg| match seg.parse::<u64>() {
                    Ok(n) => (1, n, String::new()),
                    Err(_) => (0, 0, seg.to_owned()),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Key {
        epoch,
        release,
        pre: pre_key,
        post,
        dev: dev.map_or((1, 0), |n| (0, n)),
        local,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep440_orders_as_the_spec_lists() {
        // PEP 440's own example ordering, lowest first.
        let ordered = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        for w in ordered.windows(2) {
            assert_eq!(
                pep440_compare(w[0], w[1]),
                Some(Ordering::Less),
                "{} < {}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn normal_forms_and_epochs() {
        for (a, b) in [
            ("1.0", "1.0.0"),
            ("v1.0", "1.0"),
            ("1.0-1", "1.0.post1"),
            ("1.0alpha1", "1.0a1"),
            ("1.0c1", "1.0rc1"),
            ("1.0-dev", "1.0.dev0"),
            ("1.0RC1", "1.0rc1"),
        ] {
            assert_eq!(pep440_compare(a, b), Some(Ordering::Equal), "{a} == {b}");
        }
        assert_eq!(pep440_compare("1!0.1", "2.0"), Some(Ordering::Greater));
        assert_eq!(pep440_compare("not a version", "1.0"), None);
        assert_eq!(pep440_compare("1.0-", "1.0"), None);
    }
}
