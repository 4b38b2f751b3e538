//! AWS region names: the one syntax every service checks a region against (a request's
//! credential scope, a replication destination).

/// Whether `name` has the syntax of an AWS region: lowercase words joined by dashes,
/// ending in a number (`us-east-1`, `us-gov-west-1`, `ap-southeast-5`). Regions AWS has
/// not announced are accepted: Stevedore is not bound to AWS's list, a new AWS region
/// should not need a new Stevedore, and a self-hosted operator may name their own; the
/// syntax keeps names safe as store prefixes and directory names.
pub fn valid(name: &str) -> bool {
    let mut parts = name.split('-');
    let Some(area) = parts.next() else {
        return false;
    };
    let rest: Vec<&str> = parts.collect();
    let Some((number, words)) = rest.split_last() else {
        return false;
    };
    name.len() <= 32
        && area.len() == 2
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && !words.is_empty()
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.len() <= 3
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_follow_aws_syntax() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-5",
            "xx-local-12",
        ] {
            assert!(valid(ok), "{ok}");
        }
        for bad in [
            "",
            "useast1",
            "US-EAST-1",
            "us-east",
            "us--1",
            "us-east-x",
            "u-east-1",
            "us-east-1-",
            "us-east-1/x",
            "us-east-1234",
            "eu-1",
            "../etc-x-1",
        ] {
            assert!(!valid(bad), "{bad}");
        }
    }
}
