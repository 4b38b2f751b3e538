//! EC2's dialect of the query protocol (botocore's `ec2` protocol), response side: the
//! `<OpResponse xmlns=…><requestId>…` document with the output members directly inside
//! (no Result wrapper), lists as `<item>` elements (empty ones still written), and the
//! error document `<Response><Errors><Error><Code/><Message/></Error></Errors>
//! <RequestID/></Response>`. Requests are the query protocol's form bodies with every
//! list flattened (`Name.N`), read with [`crate::query::QueryView::flat_list`] and
//! [`crate::query::QueryView::flat_members`]. Every EC2 API (networking, launch
//! templates) shares this module.

use crate::envelope::xml_escape;
use crate::xml::Xml;
use crate::AwsError;

/// The `Version` every EC2 request carries.
pub const API_VERSION: &str = "2016-11-15";

/// The XML namespace of EC2 answers.
pub const XML_NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The whole answer to `operation`: its output members (`body`, already XML) after the
/// request id.
pub fn envelope(operation: &str, request_id: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{operation}Response xmlns=\"{XML_NAMESPACE}\"><requestId>{}</requestId>{body}</{operation}Response>",
        xml_escape(request_id)
    )
}

/// The error document EC2 answers with (note `RequestID`, not `RequestId`).
pub fn error_body(err: &AwsError, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        xml_escape(err.query_code.as_deref().unwrap_or(&err.code)),
        xml_escape(&err.message),
        xml_escape(request_id),
    )
}

/// A list as EC2 writes it: `<tag><item>…</item>…</tag>`, written even when empty.
pub fn items<T>(
    x: &mut Xml,
    tag: &str,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut Xml, T),
) {
    x.el(tag, |x| {
        for item in items {
            x.el("item", |x| each(x, item));
        }
    });
}

/// A `tagSet` (or other `tag`) of `<item><key/><value/></item>`.
pub fn tags<'a>(x: &mut Xml, tag: &str, tags: impl IntoIterator<Item = (&'a str, &'a str)>) {
    items(x, tag, tags, |x, (k, v)| {
        x.leaf("key", k).leaf("value", v);
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn errors_use_the_ec2_document_with_request_id_spelled_as_ec2_spells_it() {
        let body = error_body(
            &AwsError::client(
                "InvalidGroup.NotFound",
                "The security group 'sg-1' does not exist",
            ),
            "r-1",
        );
        assert!(body.ends_with("<Response><Errors><Error><Code>InvalidGroup.NotFound</Code><Message>The security group 'sg-1' does not exist</Message></Error></Errors><RequestID>r-1</RequestID></Response>"), "{body}");
        assert!(body.contains("<RequestID>r-1</RequestID>"));
    }

    #[test]
    fn answers_have_no_result_wrapper_and_lists_are_items() {
        let mut x = Xml::new();
        items(&mut x, "securityGroupInfo", ["a", "b"], |x, g| {
            x.leaf("groupId", g);
        });
        tags(&mut x, "tagSet", []);
        let doc = envelope("DescribeSecurityGroups", "r", &x.finish());
        assert!(doc.contains("<DescribeSecurityGroupsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId><securityGroupInfo><item><groupId>a</groupId></item><item><groupId>b</groupId></item></securityGroupInfo><tagSet></tagSet></DescribeSecurityGroupsResponse>"), "{doc}");
    }
}
