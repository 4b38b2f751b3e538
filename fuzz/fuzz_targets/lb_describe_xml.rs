//! Arbitrary ELBv2 answers to `stevedore lb`'s reader (`lb::describe::fetch_config`): each
//! Describe* call the reader makes is answered from the input, either as raw text or as
//! the operation's `<OpResponse><OpResult>…` envelope around fuzzed XML (so most runs get
//! past the envelope into the members), or as an AWS error document; the reader must
//! never panic and must end (pagination is bounded), and a failure must render.
//!
//! Input: a sequence of answers, each introduced by a selector byte (0: raw text, 1:
//! error, otherwise enveloped) and ended by a 0xFF byte.
#![no_main]

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use lb::describe::{fetch_config, parse_error, LbRoleError, QueryApi};
use libfuzzer_sys::fuzz_target;

struct Answers {
    parts: Mutex<std::vec::IntoIter<Vec<u8>>>,
}

#[async_trait::async_trait]
impl QueryApi for Answers {
    async fn call(
        &self,
        operation: &'static str,
        _params: &[(&str, &str)],
    ) -> Result<String, LbRoleError> {
        let next = self.parts.lock().map_err(|_| LbRoleError::Decode {
            operation,
            reason: "poisoned".to_owned(),
        })?
        .next();
        // Out of input: an empty result, which ends every pagination.
        let Some(part) = next else {
            return Ok(format!(
                "<{operation}Response><{operation}Result></{operation}Result></{operation}Response>"
            ));
        };
        let (selector, body) = part.split_first().map_or((2, &[][..]), |(s, b)| (*s, b));
        let body = String::from_utf8_lossy(body);
        match selector {
            0 => Ok(body.into_owned()),
            1 => Err(parse_error(operation, 400, &body)),
            _ => Ok(format!(
                "<{operation}Response xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><{operation}Result>{body}</{operation}Result></{operation}Response>"
            )),
        }
    }

    async fn instance_addresses(&self) -> Result<HashMap<String, String>, LbRoleError> {
        Ok(HashMap::from([("i-0123456789abcdef0".to_owned(), "127.0.0.1".to_owned())]))
    }
}

fuzz_target!(|data: &[u8]| {
    let parts: Vec<Vec<u8>> = data.split(|b| *b == 0xFF).map(<[u8]>::to_vec).collect();
    let api = Answers {
        parts: Mutex::new(parts.into_iter()),
    };
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let rt = RT.get_or_init(stevedore_fuzz::runtime);
    match rt.block_on(fetch_config(&api, None)) {
        Ok(config) => {
            // Whatever was read is a configuration the data plane can index.
            let _ = format!("{config:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
