//! Decodes arbitrary bytes as a form body and reads lists, structures and maps from it:
//! must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = wire::query::parse_form(data) else {
        return;
    };
    assert!(q.len() <= wire::query::MAX_PARAMS);
    let _ = (q.action(), q.version());
    for (name, value) in q.iter() {
        assert_eq!(q.get(name), Some(value));
        // Treat every name's first dotted part as a possible list / structure / map.
        let head = name.split('.').next().unwrap_or(name);
        let _ = q.list(head);
        let _ = q.map(head);
        for member in q.members(head) {
            let _ = member.get("Key");
            let _ = member.list("Values");
            let _ = member.members("Tags");
        }
    }
});
