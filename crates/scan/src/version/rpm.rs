//! rpm's version ordering (`rpmvercmp`): `[epoch:]version[-release]`, epochs numeric
//! (missing = 0), then version and release compared segment by segment — digit runs
//! numerically (a number beats letters), letter runs as strings, `~` sorts before
//! anything (even the end), `^` after the end but before anything else.

use std::cmp::Ordering;

/// Orders two rpm EVRs.
pub fn rpm_compare(a: &str, b: &str) -> Ordering {
    let (ea, va, ra) = split(a);
    let (eb, vb, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| rpmvercmp(va, vb))
        .then_with(|| rpmvercmp(ra, rb))
}

/// `(epoch, version, release)`; an unreadable epoch counts as 0.
fn split(evr: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match evr.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), r)
        }
        _ => (0, evr),
    };
    match rest.rsplit_once('-') {
        Some((v, r)) => (epoch, v, r),
        None => (epoch, rest, ""),
    }
}

/// rpm's segment comparison of one version or release string.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    let skip = |s: &[u8]| -> usize {
        s.iter()
            .take_while(|c| !c.is_ascii_alphanumeric() && **c != b'~' && **c != b'^')
            .count()
    };
    loop {
        x = &x[skip(x)..];
        y = &y[skip(y)..];
        match (x.first(), y.first()) {
            (Some(b'~'), Some(b'~')) => {
                x = &x[1..];
                y = &y[1..];
                continue;
            }
            (Some(b'~'), _) => return Ordering::Less,
            (_, Some(b'~')) => return Ordering::Greater,
            _ => {}
        }
        if x.first() == Some(&b'^') || y.first() == Some(&b'^') {
            match (x.first(), y.first()) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(b'^'), Some(b'^')) => {
                    x = &x[1..];
                    y = &y[1..];
                    continue;
                }
                (Some(b'^'), _) => return Ordering::Less,
                _ => return Ordering::Greater,
            }
        }
        if x.is_empty() || y.is_empty() {
            break;
        }
        let numeric = x[0].is_ascii_digit();
        let run = |s: &[u8]| -> usize {
            s.iter()
                .take_while(|c| {
                    if numeric {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        let (nx, ny) = (run(x), run(y));
        let (sx, sy) = (&x[..nx], &y[..ny]);
        if sy.is_empty() {
            // Segments of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ord = if numeric {
            let tx = trim_zeros(sx);
            let ty = trim_zeros(sy);
            tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
        } else {
            sx.cmp(sy)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        x = &x[nx..];
        y = &y[ny..];
    }
    match (x.is_empty(), y.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| **c == b'0').count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn rpmvercmp_matches_rpms_own_table() {
        // Cases from rpm's documented behaviour (rpmvercmp tests).
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "2.0", Less),
            ("2.0.1", "2.0", Greater),
            ("5.5p1", "5.5p2", Less),
            ("5.5p10", "5.5p1", Greater),
            ("10xyz", "10.1xyz", Less),
            ("xyz10", "xyz10.1", Less),
            ("1.0", "1.0a", Less),
            ("1.0a", "1.0", Greater),
            ("2.0", "2_0", Equal),
            ("2a", "2.0", Less),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~rc1~git123", "1.0~rc1", Less),
            ("1.0^", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("1.0^git1", "1.0^git2", Less),
            ("1.0~rc1^git1", "1.0~rc1", Greater),
            ("00010", "10", Equal),
            ("a", "1", Less),
        ] {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn epochs_then_versions_then_releases() {
        assert_eq!(rpm_compare("1:1.0-1", "2.0-1"), Greater);
        assert_eq!(rpm_compare("0:1.0-1", "1.0-1"), Equal);
        assert_eq!(rpm_compare("3.0.7-24.el9", "3.0.7-25.el9"), Less);
        assert_eq!(rpm_compare("3.0.7-24.el9_2", "3.0.7-24.el9"), Greater);
        assert_eq!(rpm_compare("1.2", "1.2-1"), Less);
    }
}
