//! Arbitrary text as the agent's shared credentials file (`~/.aws/credentials` INI) for a
//! fuzzed profile, and as the agent's config file and durations (`agent.conf`, `KEY=VALUE`
//! in the style of ECS's `ecs.config`): each parses or is refused with an error, never a
//! panic; a parsed config file keeps only trimmed keys.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = stevedore_fuzz::fields(data, 2);
    let (Ok(profile), Ok(text)) = (std::str::from_utf8(parts[0]), std::str::from_utf8(parts[1])) else { return };
    if let Ok(c) = agent::Credentials::from_shared_file(text, profile) {
        assert!(!c.access_key_id().is_empty());
    }
    let lookup = |k: &str| (k == "AWS_REGION").then(|| profile.to_owned());
    let _ = agent::credentials::region_from_lookup(&lookup);
    if let Ok(map) = agent::config_file::parse_config_file(text) {
        for (k, v) in &map {
            assert_eq!(k.trim(), k);
            let _ = agent::config_file::parse_duration(v);
        }
    }
    let _ = agent::config_file::parse_duration(profile);
});
