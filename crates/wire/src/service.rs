//! The contract between the one dispatch ([`crate::Dispatch`]) and each AWS API Stevedore
//! serves: what a service is called, how its requests are recognised and signed, its
//! operation table, and the handler that runs one operation.

use crate::allowed::Allowed;
use crate::query::QueryParams;
use crate::{AwsError, JsonVersion};
use std::future::Future;
use std::sync::Arc;

/// The request body limit of an operation that declares none: the largest ECS requests
/// (task definitions) are well under it.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// A protocol a service speaks, with what names the service in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// AWS JSON 1.0 or 1.1: `X-Amz-Target: <target_prefix>.<Operation>`, a JSON body.
    AwsJson {
        /// Decides the content type of responses.
        version: JsonVersion,
        /// The part of `X-Amz-Target` before the dot, e.g. `AmazonEC2ContainerServiceV20141113`.
        target_prefix: &'static str,
    },
    /// AWS query: a form body with `Action=<Operation>&Version=<version>`, XML answers.
    AwsQuery {
        /// The API version that names the service, e.g. `2015-12-01`.
        version: &'static str,
    },
    /// EC2's own query dialect (botocore's `ec2` protocol): the same form body as
    /// [`Protocol::AwsQuery`], lists flattened as `Name.N`, answers without a Result
    /// wrapper and errors as `<Response><Errors><Error>…</Errors><RequestID>`.
    Ec2Query {
        /// The API version that names the service (`2016-11-15`).
        version: &'static str,
    },
    /// Smithy RPC v2 CBOR: `POST /service/<service>/operation/<Operation>`, CBOR bodies
    /// (one of the ways clients speak CloudWatch).
    RpcV2Cbor {
        /// The Smithy service shape name in the path.
        service: &'static str,
    },
}

/// What the dispatch needs to know of a service before it runs anything.
#[derive(Clone, Copy, Debug)]
pub struct ServiceSpec {
    /// The name in logs and metrics, e.g. `ecs`.
    pub name: &'static str,
    /// The name people know it by, used in error messages, e.g. `Amazon ECS`.
    pub title: &'static str,
    /// The SigV4 signing name a request's credential scope must carry, e.g. `ecs`.
    pub signing_name: &'static str,
    /// Every protocol it accepts requests in.
    pub protocols: &'static [Protocol],
}

/// A service's operation table as data: every operation its botocore model lists (the
/// generated `Operation` enum), its wire names and modelled error codes.
#[derive(Clone, Copy, Debug)]
pub struct OperationTable<Op: 'static> {
    /// Every operation.
    pub all: &'static [Op],
    /// The operation with a wire name.
    pub from_name: fn(&str) -> Option<Op>,
    /// An operation's wire name.
    pub name: fn(Op) -> &'static str,
    /// The error codes modelled for an operation, as sent on the wire.
    pub errors: fn(Op) -> &'static [&'static str],
}

/// The body of a request, decoded as far as the protocol goes.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// An AWS JSON body (not yet decoded into the operation's shape).
    Json(&'a [u8]),
    /// The form parameters of an AWS query request (`Action` and `Version` included).
    Query(&'a QueryParams),
    /// A Smithy RPC v2 CBOR body.
    Cbor(&'a [u8]),
}

/// Who is calling, as established by SigV4: the authenticated principal, its unique id,
/// and the identity policies it holds (already compiled). The account root (the admin
/// key) holds none and is unrestricted; authorization evaluates the others with
/// `policy::evaluate`.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Shared with every policy request the caller makes, so authorizing copies nothing.
    principal: Arc<policy::Principal>,
    user_id: Arc<str>,
    access: Standing,
    /// The agent instance (`i-…`) whose instance credentials signed the request.
    instance_id: Option<Arc<str>>,
    /// When the temporary (session) credentials that signed the request expire, in Unix
    /// seconds; `None` for long-term keys.
    session_expiry: Option<i64>,
}

/// What a caller may do before any policy is looked at.
#[derive(Clone, Debug)]
enum Standing {
    /// The account root: everything (only a resource policy's Deny could stop it).
    Root,
    /// What these identity policies allow, and the allows remembered when they are
    /// decided by the principal alone (see [`crate::allowed`]).
    Policies(Option<Arc<Allowed>>, Arc<[policy::Policy]>),
}

impl Caller {
    /// The root user of `account` (`arn:aws:iam::<account>:root`); its unique id is the
    /// account id, as STS answers.
    pub fn root(account: &str) -> Self {
        Self {
            principal: Arc::new(policy::Principal::root(account).with_userid(account)),
            user_id: account.into(),
            access: Standing::Root,
            instance_id: None,
            session_expiry: None,
        }
    }

    /// A user or role session with its unique id (`AIDA…`, `AROA…:session`) and the
    /// identity policies it holds (for a session: its role's).
    pub fn new(
        principal: policy::Principal,
        user_id: &str,
        policies: Arc<[policy::Policy]>,
    ) -> Self {
        Self {
            principal: Arc::new(principal.with_userid(user_id)),
            user_id: user_id.into(),
            access: Standing::Policies(Allowed::for_policies(&policies).map(Arc::new), policies),
            instance_id: None,
            session_expiry: None,
        }
    }

    /// The same caller, acting as the agent instance `id` (set only from a session
    /// token whose sealed claims name that instance).
    #[must_use]
    pub fn with_instance_id(mut self, id: &str) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// The same caller, known to have signed with temporary credentials (a session
    /// token) expiring at `unix_secs`: some operations refuse them (STS GetSessionToken),
    /// and what is issued on their strength expires no later (registry tokens).
    #[must_use]
    pub fn with_session_expiry(mut self, unix_secs: i64) -> Self {
        self.session_expiry = Some(unix_secs);
        self
    }

    /// Whether the caller signed with temporary credentials.
    pub fn is_temporary(&self) -> bool {
        self.session_expiry.is_some()
    }

    /// When the caller's temporary credentials expire (Unix seconds); `None` for
    /// long-term keys.
    pub fn session_expiry(&self) -> Option<i64> {
        self.session_expiry
    }

    /// The agent instance (`i-…`) the caller's instance credentials were issued to;
    /// `None` for every other caller, including a role session merely named `i-…`.
    pub fn instance_id(&self) -> Option<&str> {
        self.instance_id.as_deref()
    }

    /// The principal's ARN (the account root for the admin key).
    pub fn principal_arn(&self) -> &str {
        self.principal.arn()
    }

    /// The 12-digit account the principal belongs to.
    pub fn account(&self) -> &str {
        self.principal.account()
    }

    /// The authenticated principal, as policy evaluation takes it.
    pub fn principal(&self) -> &policy::Principal {
        &self.principal
    }

    /// The principal, shared: what a `policy::Request` holds.
    pub fn shared_principal(&self) -> Arc<policy::Principal> {
        Arc::clone(&self.principal)
    }

    /// The principal's unique id: the account id for root, `AIDA…` for a user,
    /// `AROA…:session` for a role session (STS `GetCallerIdentity`'s `UserId`).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Whether the caller is the account root, which no identity policy restricts.
    pub fn is_root(&self) -> bool {
        matches!(self.access, Standing::Root)
    }

    /// The caller's identity policies (none for root: see [`Caller::is_root`]).
    pub fn policies(&self) -> &[policy::Policy] {
        match &self.access {
            Standing::Root => &[],
            Standing::Policies(_, p) => p,
        }
    }

    /// Whether a policy evaluated for this caller's calls reads a resource's tags
    /// (`aws:ResourceTag/KEY`). Never true when allows are remembered: such policies are
    /// decided by the principal alone, so the hot path pays nothing.
    pub(crate) fn reads_resource_tags(&self) -> bool {
        match &self.access {
            Standing::Policies(None, p) => p.iter().any(policy::Policy::reads_resource_tags),
            _ => false,
        }
    }

    /// The caller's remembered allows, when its policies let them be remembered.
    pub(crate) fn allowed(&self) -> Option<&Allowed> {
        match &self.access {
            Standing::Policies(Some(memo), _) => Some(memo),
            _ => None,
        }
    }
}

/// One operation to run, with what the handler may need of the request around it.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// The body.
    pub input: Input<'a>,
    /// Who signed the request.
    pub caller: &'a Caller,
    /// The request id, which query-protocol responses carry in their document.
    pub request_id: &'a str,
}

/// Why a handler did not answer with a body.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceError {
    /// The operation is in botocore's model but Stevedore does not serve it.
    NotImplemented,
    /// The operation failed or was refused: the AWS error to send.
    Aws(AwsError),
}

impl From<AwsError> for ServiceError {
    fn from(e: AwsError) -> Self {
        Self::Aws(e)
    }
}

/// One permission a request needs, as the Service Authorization Reference lists it: an
/// IAM action (`ecs:RunTask`) on a resource (an ARN, or `*` for actions without a
/// resource type), with the service's condition keys (`ecs:cluster`), the tags the
/// request sets, and the resource's own policy where it has one (an ECR repository
/// policy). The dispatch evaluates each with [`policy::evaluate`].
#[derive(Clone, Debug)]
pub struct Access {
    prefix: &'static str,
    action: &'static str,
    resource: String,
    keys: Vec<(&'static str, policy::ContextValue)>,
    /// Needs no permission at all (see [`Access::public`]).
    public: bool,
    request_tags: Vec<(String, String)>,
    /// Filled by the service, or by the dispatch through [`Service::resource_tags`].
    pub(crate) resource_tags: Vec<(String, String)>,
    resource_policy: Option<Arc<policy::Policy>>,
}

impl Access {
    /// `prefix:action` (e.g. `ecs`, `RunTask`) on `resource`.
    pub fn new(prefix: &'static str, action: &'static str, resource: impl Into<String>) -> Self {
        Self {
            prefix,
            action,
            resource: resource.into(),
            keys: Vec::new(),
            public: false,
            request_tags: Vec::new(),
            resource_tags: Vec::new(),
            resource_policy: None,
        }
    }

    /// `prefix:action` on every resource (`*`): actions without a resource type.
    pub fn any(prefix: &'static str, action: &'static str) -> Self {
        Self::new(prefix, action, "*")
    }

    /// `prefix:action`, which AWS answers whatever the caller's policies say (e.g.
    /// `sts:GetCallerIdentity`): the dispatch does not evaluate it. Explicit, so that an
    /// operation needing nothing is a decision and never an omission.
    pub fn public(prefix: &'static str, action: &'static str) -> Self {
        Self {
            public: true,
            ..Self::any(prefix, action)
        }
    }

    /// Whether the resource's own policy is evaluated with this access.
    pub(crate) fn has_resource_policy(&self) -> bool {
        self.resource_policy.is_some()
    }

    /// Whether this access needs no permission ([`Access::public`]).
    pub fn is_public(&self) -> bool {
        self.public
    }

    /// Adds a service condition key (e.g. `ecs:cluster`) and its value.
    #[must_use]
    pub fn with_key(mut self, key: &'static str, value: impl Into<policy::ContextValue>) -> Self {
        self.keys.push((key, value.into()));
        self
    }

    /// The tags the request sets (`aws:RequestTag/KEY`, `aws:TagKeys`).
    #[must_use]
    pub fn with_request_tags(mut self, tags: Vec<(String, String)>) -> Self {
        self.request_tags = tags;
        self
    }

    /// The tags of the resource acted on (`aws:ResourceTag/KEY`).
    #[must_use]
    pub fn with_resource_tags(mut self, tags: Vec<(String, String)>) -> Self {
        self.resource_tags = tags;
        self
    }

    /// The resource's own policy, evaluated beside the caller's identity policies.
    #[must_use]
    pub fn with_resource_policy(mut self, policy: Arc<policy::Policy>) -> Self {
        self.resource_policy = Some(policy);
        self
    }

    /// The action's service prefix, e.g. `ecs`.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// The action's name without prefix, e.g. `RunTask`.
    pub fn action_name(&self) -> &'static str {
        self.action
    }

    /// The full action, e.g. `ecs:RunTask`.
    pub fn action(&self) -> String {
        format!("{}:{}", self.prefix, self.action)
    }

    /// The resource ARN, or `*`.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The service condition keys this access carries.
    pub fn keys(&self) -> &[(&'static str, policy::ContextValue)] {
        &self.keys
    }

    /// The value of condition key `key`, if this access carries it.
    pub fn key(&self, key: &str) -> Option<&policy::ContextValue> {
        self.keys.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The tags the request sets.
    pub fn request_tags(&self) -> &[(String, String)] {
        &self.request_tags
    }

    /// The tags of the resource acted on, as the service filled them.
    pub fn resource_tags(&self) -> &[(String, String)] {
        &self.resource_tags
    }

    /// Whether the dispatch should ask the service for this access's resource tags: it
    /// names one resource (not `*` or a pattern), the service has not filled them, and the
    /// caller's policies or the resource's own read them.
    pub(crate) fn wants_resource_tags(&self, caller_reads: bool) -> bool {
        self.resource_tags.is_empty()
            && !self.public
            && !self.resource.contains('*')
            && (caller_reads
                || self
                    .resource_policy
                    .as_deref()
                    .is_some_and(policy::Policy::reads_resource_tags))
    }

    /// The resource's own policy, if any.
    pub fn resource_policy(&self) -> Option<&policy::Policy> {
        self.resource_policy.as_deref()
    }

    /// Builds the policy request for `principal`, consuming what it carries.
    pub(crate) fn into_request(
        self,
        principal: Arc<policy::Principal>,
    ) -> (policy::Request, Option<Arc<policy::Policy>>) {
        let mut req = policy::Request::new(principal, &self.action(), &self.resource);
        for (k, v) in self.keys {
            req.set(k, v);
        }
        if !self.request_tags.is_empty() {
            req = req.request_tags(
                self.request_tags
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
        if !self.resource_tags.is_empty() {
            req = req.resource_tags(
                self.resource_tags
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
        }
        (req, self.resource_policy)
    }
}

/// An AWS API served through the one dispatch.
pub trait Service: Send + Sync + 'static {
    /// The generated operation enum.
    type Operation: Copy + Send + Sync + std::fmt::Debug + 'static;

    /// The service's name, signing name and protocols.
    const SPEC: ServiceSpec;

    /// The operation table.
    const OPERATIONS: OperationTable<Self::Operation>;

    /// The largest request body `op` accepts, in bytes.
    fn body_limit(&self, op: Self::Operation) -> usize {
        let _ = op;
        DEFAULT_BODY_LIMIT
    }

    /// What `op` with this call's input needs permission for: at least one [`Access`]
    /// (an empty list is refused, so nothing is silently allowed). Called before
    /// [`Service::handle`] for every caller but the account root; input that does not
    /// decode should still map (to `*` or what can be read) and leave the error to the
    /// handler. It may read the store (a resource's tags or policy).
    fn authorize<'a>(
        &'a self,
        op: Self::Operation,
        call: Call<'a>,
    ) -> impl Future<Output = Result<Vec<Access>, ServiceError>> + Send + 'a;

    /// The tags of `resource`, an ARN [`Service::authorize`] named, for the
    /// `aws:ResourceTag/KEY` condition keys. The dispatch asks only when a policy evaluated
    /// for the call reads a resource tag, so the store read is spared every other call. A
    /// resource that does not exist (yet) or carries no tags: an empty list.
    fn resource_tags<'a>(
        &'a self,
        resource: &'a str,
    ) -> impl Future<Output = Vec<(String, String)>> + Send + 'a {
        let _ = resource;
        std::future::ready(Vec::new())
    }

    /// Runs `op`; the answer is the response body in the call's protocol (JSON bytes or
    /// the query protocol's XML document).
    fn handle<'a>(
        &'a self,
        op: Self::Operation,
        call: Call<'a>,
    ) -> impl Future<Output = Result<Vec<u8>, ServiceError>> + Send + 'a;
}
