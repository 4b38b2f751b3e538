//! Arbitrary bodies of `POST /stevedore/elb/target-health` (the health reports a
//! standalone data plane sends the server) through their wire form,
//! `model::lb::health_reports`: decoding must never panic, a refused report must say why,
//! and an accepted one must encode and decode back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::lb::health_reports::{Report, Reports};

fuzz_target!(|data: &[u8]| {
    let Ok(reports) = serde_json::from_slice::<Reports>(data) else {
        return;
    };
    for report in reports.reports {
        match report.into_health_report() {
            Ok(health) => {
                let again = serde_json::to_vec(&Reports {
                    reports: vec![Report::from(&health)],
                })
                .expect("a report encodes");
                let decoded: Reports = serde_json::from_slice(&again).expect("and decodes");
                let back = decoded
                    .reports
                    .into_iter()
                    .next()
                    .expect("one report")
                    .into_health_report()
                    .expect("still valid");
                assert_eq!(back, health);
            }
            Err(why) => assert!(!why.is_empty()),
        }
    }
});
