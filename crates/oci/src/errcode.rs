//! The registered table of distribution error codes: each code's HTTP status and
//! default message, as the OCI distribution spec lists them. The registry maps its own
//! errors onto these in one place.

macro_rules! error_codes {
    ($($variant:ident => ($code:literal, $status:literal, $message:literal)),* $(,)?) => {
        /// A registry error code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $(
            #[doc = $message]
            $variant,
        )* }

        impl ErrorCode {
            /// The code as sent in `errors[].code`.
            pub fn code(self) -> &'static str {
                match self { $(Self::$variant => $code,)* }
            }
            /// The HTTP status it is answered with.
            pub fn status(self) -> u16 {
                match self { $(Self::$variant => $status,)* }
            }
            /// The default message.
            pub fn message(self) -> &'static str {
                match self { $(Self::$variant => $message,)* }
            }
            /// Every registered code.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant),*];
        }
    };
}

error_codes! {
    BlobUnknown => ("BLOB_UNKNOWN", 404, "blob unknown to registry"),
    BlobUploadInvalid => ("BLOB_UPLOAD_INVALID", 400, "blob upload invalid"),
    BlobUploadUnknown => ("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"),
    DigestInvalid => ("DIGEST_INVALID", 400, "provided digest did not match uploaded content"),
    ManifestBlobUnknown => ("MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry"),
    ManifestInvalid => ("MANIFEST_INVALID", 400, "manifest invalid"),
    ManifestUnknown => ("MANIFEST_UNKNOWN", 404, "manifest unknown to registry"),
    NameInvalid => ("NAME_INVALID", 400, "invalid repository name"),
    NameUnknown => ("NAME_UNKNOWN", 404, "repository name not known to registry"),
    SizeInvalid => ("SIZE_INVALID", 400, "provided length did not match content length"),
    Unauthorized => ("UNAUTHORIZED", 401, "authentication required"),
    Denied => ("DENIED", 403, "requested access to the resource is denied"),
    Unsupported => ("UNSUPPORTED", 405, "the operation is unsupported"),
    TooManyRequests => ("TOOMANYREQUESTS", 429, "too many requests"),
    TagInvalid => ("TAG_INVALID", 400, "manifest tag did not match URI"),
    RangeInvalid => ("RANGE_INVALID", 416, "invalid content range"),
    PaginationNumberInvalid => ("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested"),
    Internal => ("INTERNAL_ERROR", 500, "the registry failed; the request may be retried"),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let codes: HashSet<_> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert!(ErrorCode::ALL.iter().all(|c| c.status() >= 400));
    }
}
