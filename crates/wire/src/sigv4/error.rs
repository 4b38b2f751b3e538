//! Why a request failed SigV4 authentication, worded as AWS words it, and the AWS
//! error code (`__type`) each failure is reported under.

/// A request that failed Signature Version 4 authentication.
///
/// `Display` is the message AWS would send; [`SigV4Error::aws_code`] is the error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor an `X-Amz-Algorithm` query parameter was sent:
    /// the request is anonymous. Sign it with SigV4.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,

    /// Both an `Authorization` header and presigned-URL query parameters were sent, or the
    /// `Authorization` header was sent more than once.
    #[error(
        "Only one authentication mechanism is allowed: send either one Authorization header \
         or the X-Amz-Algorithm query parameters, not both."
    )]
    ConflictingAuthentication,

    /// The `Authorization` header names an algorithm other than `AWS4-HMAC-SHA256`
    /// (or is not text at all).
    #[error("Unsupported AWS 'algorithm': '{algorithm}'. Sign the request with AWS4-HMAC-SHA256.")]
    UnsupportedAlgorithm {
        /// The algorithm the request named.
        algorithm: String,
    },

    /// The `Authorization` header lacks one or more of its required parameters.
    #[error("{}Authorization={authorization}", requires(.missing))]
    MissingAuthorizationParameters {
        /// The parameters that are missing, e.g. `Credential`.
        missing: Vec<&'static str>,
        /// The header as received.
        authorization: String,
    },

    /// A comma-separated element of the `Authorization` header is not `key=value`.
    #[error(
        "Invalid key=value pair (missing equal-sign) in Authorization header: '{pair}'. \
         Authorization={authorization}"
    )]
    MalformedAuthorizationPair {
        /// The offending element.
        pair: String,
        /// The header as received.
        authorization: String,
    },

    /// A parameter of the `Authorization` header appears twice.
    #[error("Authorization header has parameter '{parameter}' more than once. Authorization={authorization}")]
    DuplicateAuthorizationParameter {
        /// The repeated parameter.
        parameter: &'static str,
        /// The header as received.
        authorization: String,
    },

    /// `SignedHeaders` is empty or holds a name that is not a lowercase header name.
    #[error(
        "SignedHeaders must be a ';'-separated list of lowercase header names, got '{signed_headers}'."
    )]
    MalformedSignedHeaders {
        /// The value as received.
        signed_headers: String,
    },

    /// The credential is not `<AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request`.
    #[error("{reason}")]
    MalformedCredential {
        /// What is wrong with it, in AWS's words.
        reason: String,
    },

    /// Neither `X-Amz-Date` nor `Date` was sent with a header-signed request.
    #[error(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
         Authorization={authorization}"
    )]
    MissingDate {
        /// The header as received.
        authorization: String,
    },

    /// The request timestamp is not in the form SigV4 requires.
    #[error("Invalid {source_name} '{value}': expected {expected}.")]
    InvalidDate {
        /// Where the timestamp came from: `X-Amz-Date` header, `Date` header or query parameter.
        source_name: &'static str,
        /// The value as received.
        value: String,
        /// The form that was expected.
        expected: &'static str,
    },

    /// The credential scope's date is not the date of the request timestamp.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '{scope_date}' != '{request_date}', from '{timestamp}'."
    )]
    ScopeDateMismatch {
        /// The date in the credential scope.
        scope_date: String,
        /// The `YYYYMMDD` part of the request timestamp.
        request_date: String,
        /// The request timestamp, ISO 8601 basic form.
        timestamp: String,
    },

    /// A presigned URL lacks a required query parameter, or one of them is invalid.
    #[error("{reason} Re-examine the query-string parameters.")]
    MalformedPresignedQuery {
        /// What is wrong, e.g. "AWS query-string parameters must include 'X-Amz-Credential'."
        reason: String,
    },

    /// `host` is not among the signed headers; AWS requires it to be signed.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,

    /// A header that decides how the request is routed and how much body is read
    /// (`x-amz-target`, `content-type`) was sent but left out of the signature: it could
    /// be changed in flight without breaking the signature, so it must be signed.
    #[error(
        "'{header}' must be a 'SignedHeader' in the AWS Authorization when the request carries it."
    )]
    HeaderNotSigned {
        /// The header, as AWS writes it (e.g. `X-Amz-Target`).
        header: &'static str,
    },

    /// `x-amz-content-sha256` is neither `UNSIGNED-PAYLOAD` nor a hex SHA-256 digest.
    #[error(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or the hex SHA-256 digest of the body, \
         got '{value}'."
    )]
    InvalidContentSha256 {
        /// The header as received.
        value: String,
    },

    /// `x-amz-content-sha256` names a digest other than that of the body received.
    #[error(
        "The provided 'x-amz-content-sha256' header does not match what was computed: \
         client sent {provided}, body hashes to {computed}."
    )]
    ContentSha256Mismatch {
        /// The digest the client sent.
        provided: String,
        /// The digest of the body received.
        computed: String,
    },

    /// The access key id is not known to this server.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,

    /// The session token sent with temporary credentials was not issued by this server, was
    /// altered, or does not belong to the access key id (or a session key id came without
    /// its token).
    #[error("The security token included in the request is invalid.")]
    InvalidSecurityToken,

    /// The session token sent with temporary credentials has expired: ask STS for new ones.
    #[error("The security token included in the request is expired")]
    ExpiredSecurityToken,

    /// The signature does not match the one computed with the secret key.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details."
    )]
    SignatureMismatch,

    /// The request timestamp is more than 15 minutes before the server's clock, or a
    /// presigned URL's `X-Amz-Expires` has run out. Re-sign the request, and check the
    /// client's clock.
    #[error("Signature expired: {timestamp} is now earlier than {limit} ({now} - {allowance}.)")]
    SignatureExpired {
        /// The request timestamp.
        timestamp: String,
        /// The earliest timestamp still accepted.
        limit: String,
        /// The server's clock.
        now: String,
        /// How far back timestamps are accepted, e.g. `15 min` or `3600 sec` for a URL.
        allowance: String,
    },

    /// The request timestamp is more than 15 minutes after the server's clock. Check the
    /// client's clock.
    #[error(
        "Signature not yet current: {timestamp} is still later than {limit} ({now} + 15 min.)"
    )]
    SignatureNotYetCurrent {
        /// The request timestamp.
        timestamp: String,
        /// The latest timestamp accepted.
        limit: String,
        /// The server's clock.
        now: String,
    },
}

fn requires(missing: &[&'static str]) -> String {
    missing
        .iter()
        .map(|name| format!("Authorization header requires '{name}' parameter. "))
        .collect()
}

impl SigV4Error {
    /// The AWS error code this failure is reported as by a query-protocol service (IAM,
    /// STS, ELBv2), which names the key and token failures differently.
    pub fn aws_query_code(&self) -> &'static str {
        match self {
            SigV4Error::UnrecognizedClient | SigV4Error::InvalidSecurityToken => {
                "InvalidClientTokenId"
            }
            SigV4Error::ExpiredSecurityToken => "ExpiredToken",
            // Query services (STS, IAM, EC2, ELB, Auto Scaling, CloudWatch) name every
            // failure to match the signature (what JSON services call
            // InvalidSignatureException) so, with 403, as a wrong region already is.
            other if other.aws_code() == "InvalidSignatureException" => "SignatureDoesNotMatch",
            other => other.aws_code(),
        }
    }

    /// The HTTP status this failure is answered with; `query` for query-protocol
    /// services, which answer key and token failures with 403.
    pub fn status(&self, query: bool) -> u16 {
        match self {
            SigV4Error::MissingAuthenticationToken | SigV4Error::InvalidSecurityToken => 403,
            SigV4Error::UnrecognizedClient | SigV4Error::ExpiredSecurityToken if query => 403,
            _ if query && self.aws_query_code() == "SignatureDoesNotMatch" => 403,
            _ => 400,
        }
    }

    /// The AWS error code (`__type`) this failure is reported as (JSON protocols).
    pub fn aws_code(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            SigV4Error::ConflictingAuthentication
            | SigV4Error::UnsupportedAlgorithm { .. }
            | SigV4Error::MissingAuthorizationParameters { .. }
            | SigV4Error::MalformedAuthorizationPair { .. }
            | SigV4Error::DuplicateAuthorizationParameter { .. }
            | SigV4Error::MalformedSignedHeaders { .. }
            | SigV4Error::MalformedCredential { .. }
            | SigV4Error::MissingDate { .. }
            | SigV4Error::InvalidDate { .. }
            | SigV4Error::ScopeDateMismatch { .. }
            | SigV4Error::MalformedPresignedQuery { .. } => "IncompleteSignatureException",
            SigV4Error::UnrecognizedClient => "UnrecognizedClientException",
            SigV4Error::InvalidSecurityToken => "InvalidClientTokenId",
            SigV4Error::ExpiredSecurityToken => "ExpiredTokenException",
            SigV4Error::HostNotSigned
            | SigV4Error::HeaderNotSigned { .. }
            | SigV4Error::InvalidContentSha256 { .. }
            | SigV4Error::ContentSha256Mismatch { .. }
            | SigV4Error::SignatureMismatch
            | SigV4Error::SignatureExpired { .. }
            | SigV4Error::SignatureNotYetCurrent { .. } => "InvalidSignatureException",
        }
    }
}
