//! Go binaries' embedded build info: the Go linker writes a `\xff Go buildinf:` header
//! followed (Go ≥ 1.18, flag bit 2) by two length-prefixed strings: the toolchain
//! version (`go1.21.3`) and the module info (`path`, `mod`, `dep` and `=>` replacement
//! lines between two 16-byte sentinels). Binaries built before Go 1.18 store pointers
//! instead and are reported, not read.
//!
//! The layer reader extracts the two strings from each executable it meets (see
//! [`extract`]) and keeps them as a small virtual file `<binary>/.go-buildinfo`
//! ([`VIRTUAL_NAME`]), so a whole binary is never kept.

use super::Package;
use crate::version::Ecosystem;

/// The base name of the virtual file holding a binary's build info.
pub const VIRTUAL_NAME: &str = ".go-buildinfo";
const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Longest version or module info string read.
const MAX_STRING: u64 = 4 * 1024 * 1024;

/// The build info of an executable's bytes as `version\nmodinfo`; `None` when it holds
/// none, an error when it holds one this reader cannot read.
pub fn extract(bin: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let at = find(bin, MAGIC)?;
    let header = bin.get(at..at + 32)?;
    let flags = header[15];
    if flags & 2 == 0 {
        return Some(Err(
            "a Go binary built before Go 1.18, whose build info is not read".into(),
        ));
    }
    let mut rest = bin.get(at + 32..)?;
    let mut strings = Vec::new();
    for _ in 0..2 {
        let Some((len, used)) = uvarint(rest) else {
            return Some(Err("truncated Go build info".into()));
        };
        if len > MAX_STRING {
            return Some(Err("oversized Go build info".into()));
        }
        let end = used + usize::try_from(len).ok()?;
        let Some(s) = rest.get(used..end) else {
            return Some(Err("truncated Go build info".into()));
        };
        strings.push(s);
        rest = &rest[end..];
    }
    let (version, mut modinfo) = (strings[0], strings[1]);
    if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        modinfo = &modinfo[16..modinfo.len() - 16];
    }
    let mut out = version.to_vec();
    out.push(b'\n');
    out.extend_from_slice(modinfo);
    Some(Ok(out))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Go's unsigned varint: value and bytes used.
fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x: u64 = 0;
    for (i, byte) in b.iter().enumerate().take(10) {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((x, i + 1));
        }
    }
    None
}

/// The modules (and the standard library, as `stdlib`) of an extracted build info.
pub fn packages(text: &str) -> Vec<Package> {
    let mut lines = text.lines();
    let mut out: Vec<Package> = Vec::new();
    let pkg = |name: &str, version: &str| Package {
        ecosystem: Ecosystem::Go,
        name: name.to_owned(),
        source: None,
        version: version.to_owned(),
        release: None,
    };
    if let Some(v) = lines.next().and_then(|l| l.split_whitespace().next()) {
        if let Some(v) = v
            .strip_prefix("go")
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        {
            out.push(pkg("stdlib", v));
        }
    }
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod" | "dep", path, version, ..] if *version != "(devel)" => {
                out.push(pkg(path, version));
            }
            // A replacement stands in for the module on the line before it.
            ["=>", path, version, ..] => {
                if let Some(last) = out.last_mut().filter(|p| p.name != "stdlib") {
                    *last = pkg(path, version);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake executable with a Go ≥ 1.18 build info for `version` and `modinfo`.
    pub(crate) fn binary(version: &str, modinfo: &str) -> Vec<u8> {
        let mut b = vec![0x7f, b'E', b'L', b'F'];
        b.resize(64, 0);
        b.extend_from_slice(MAGIC);
        b.push(8);
        b.push(2);
        b.resize(64 + 32, 0);
        let sentinel = [0x30u8; 16];
        let mut info = sentinel.to_vec();
        info.extend_from_slice(modinfo.as_bytes());
        info.extend_from_slice(&[0x31; 16]);
        for s in [version.as_bytes(), &info[..]] {
            let mut n = s.len();
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    b.push(byte);
                    break;
                }
                b.push(byte | 0x80);
            }
            b.extend_from_slice(s);
        }
        b.extend_from_slice(&[0; 32]);
        b
    }

    #[test]
    fn build_info_gives_modules_replacements_and_stdlib() {
        let modinfo = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n\
dep\tgolang.org/x/net\tv0.17.0\th1:abc=\n\
dep\tgithub.com/old/thing\tv1.0.0\th1:x=\n=>\tgithub.com/new/thing\tv1.2.0\th1:y=\n\
build\t-compiler=gc\n";
        let bin = binary("go1.21.3", modinfo);
        let text = extract(&bin).expect("found").expect("read");
        let got = packages(std::str::from_utf8(&text).expect("utf8"));
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("stdlib", "1.21.3"),
                ("golang.org/x/net", "v0.17.0"),
                ("github.com/new/thing", "v1.2.0")
            ]
        );
    }

    #[test]
    fn other_files_and_old_or_broken_build_info() {
        assert!(extract(b"#!/bin/sh\necho hi\n").is_none());
        let mut old = binary("go1.17", "");
        let at = find(&old, MAGIC).expect("magic");
        old[at + 15] = 0;
        assert!(matches!(extract(&old), Some(Err(_))));
        let whole = binary("go1.21.3", "dep\ta\tv1.0.0\n");
        for cut in 0..whole.len() {
            let _ = extract(&whole[..cut]);
        }
        assert!(packages("").is_empty());
    }
}
