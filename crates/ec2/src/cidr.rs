//! IPv4 blocks (`10.0.0.0/16`) as EC2 takes them: parsed strictly, canonicalised (host
//! bits cleared, as AWS stores `100.68.0.18/18` as `100.68.0.0/18`), compared for
//! containment and overlap.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 block with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: Ipv4Addr,
    len: u8,
}

/// Why a CIDR did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadCidr;

impl Cidr {
    /// `addr/len`, canonicalised; `len` is clamped to 32.
    pub fn new(addr: Ipv4Addr, len: u8) -> Self {
        let len = len.min(32);
        Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask(len)),
            len,
        }
    }

    /// The network address.
    pub fn addr(self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length.
    pub fn len(self) -> u8 {
        self.len
    }

    /// Whether the block is the whole space (`/0`).
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The first and last addresses.
    pub fn range(self) -> (u32, u32) {
        let first = u32::from(self.addr);
        (first, first | !mask(self.len))
    }

    /// Whether `other` lies wholly inside this block.
    pub fn contains(self, other: Cidr) -> bool {
        let (a, b) = self.range();
        let (c, d) = other.range();
        a <= c && d <= b
    }

    /// Whether the blocks share an address.
    pub fn overlaps(self, other: Cidr) -> bool {
        let (a, b) = self.range();
        let (c, d) = other.range();
        a <= d && c <= b
    }

    /// How many addresses it holds.
    pub fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.len))
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

impl FromStr for Cidr {
    type Err = BadCidr;
    /// `a.b.c.d/n` with `n` in 0..=32; host bits are cleared.
    fn from_str(s: &str) -> Result<Self, BadCidr> {
        let (addr, len) = s.split_once('/').ok_or(BadCidr)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| BadCidr)?;
        if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadCidr);
        }
        let len: u8 = len.parse().map_err(|_| BadCidr)?;
        if len > 32 {
            return Err(BadCidr);
        }
        Ok(Self::new(addr, len))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|_| serde::de::Error::custom(format!("not an IPv4 CIDR: {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().expect("cidr")
    }

    #[test]
    fn parses_strictly_and_canonicalises() {
        assert_eq!(c("100.68.0.18/18").to_string(), "100.68.0.0/18");
        assert_eq!(c("0.0.0.0/0").to_string(), "0.0.0.0/0");
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::/0",
            "10.0.0.0/008",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn containment_and_overlap() {
        assert!(c("10.0.0.0/16").contains(c("10.0.1.0/24")));
        assert!(!c("10.0.0.0/16").contains(c("10.1.0.0/24")));
        assert!(c("10.0.0.0/24").overlaps(c("10.0.0.128/25")));
        assert!(!c("10.0.0.0/25").overlaps(c("10.0.0.128/25")));
        assert_eq!(c("10.0.0.0/28").size(), 16);
    }
}
